package config_test

import (
	"context"
	"path"
	"reflect"
	"sync"
	"testing"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// engine compiles the foundation policies of the embedded library once for the whole package's tests.
var engine = sync.OnceValues(func() (*policies.Engine, error) {
	all, _, err := policies.Library()
	var srcs []policies.Source
	for _, s := range all {
		if base := path.Base(s.Name); base == "no-privileged.rego" || base == "trusted-registries.rego" {
			srcs = append(srcs, s)
		}
	}
	if err != nil {
		return nil, err
	}
	return policies.Compile(context.Background(), srcs)
})

func newEngine(t *testing.T) *policies.Engine {
	t.Helper()
	e, err := engine()
	if err != nil {
		t.Fatalf("compile the policy library: %v", err)
	}
	return e
}

// The library's two policies, as their METADATA ships them.
const (
	noPrivileged      = "no-privileged"
	trustedRegistries = "trusted-registries"
)

func TestLibraryDefaults(t *testing.T) {
	// Guards the assumptions the other tests make about the library's METADATA.
	e := newEngine(t)
	for _, name := range []string{noPrivileged, trustedRegistries} {
		p, ok := e.Lookup(name)
		if !ok {
			t.Fatalf("policy %s is not in the library", name)
		}
		if p.DefaultMode != policies.ModeEnforce {
			t.Errorf("policy %s: default mode %q, the tests assume %q", name, p.DefaultMode, policies.ModeEnforce)
		}
	}
}

func TestParseModes(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name string
		yaml string
		want map[string]policies.Mode
	}{
		{
			name: "empty file",
			yaml: "",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "only blanks and a comment",
			yaml: "\n  \n# nothing configured\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "empty policies list",
			yaml: "policies: []\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "entry with a name only keeps the default mode",
			yaml: "policies:\n- name: no-privileged\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "enforcement strict",
			yaml: "policies:\n- name: no-privileged\n  enforcement: strict\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "enforcement warn",
			yaml: "policies:\n- name: no-privileged\n  enforcement: warn\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeAudit, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "mode enforce",
			yaml: "policies:\n- name: trusted-registries\n  mode: enforce\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "mode audit",
			yaml: "policies:\n- name: trusted-registries\n  mode: audit\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeAudit},
		},
		{
			name: "mode off",
			yaml: "policies:\n- name: trusted-registries\n  mode: \"off\"\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeOff},
		},
		{
			name: "mode off unquoted (YAML 1.1 false)",
			yaml: "policies:\n- name: trusted-registries\n  mode: off\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeEnforce, trustedRegistries: policies.ModeOff},
		},
		{
			name: "enabled false",
			yaml: "policies:\n- name: no-privileged\n  enabled: false\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeOff, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "enabled false wins over enforcement strict",
			yaml: "policies:\n- name: no-privileged\n  enabled: false\n  enforcement: strict\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeOff, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "enabled true keeps mode audit",
			yaml: "policies:\n- name: no-privileged\n  enabled: true\n  mode: audit\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeAudit, trustedRegistries: policies.ModeEnforce},
		},
		{
			name: "two policies configured",
			yaml: "policies:\n- name: no-privileged\n  mode: audit\n- name: trusted-registries\n  enforcement: warn\n",
			want: map[string]policies.Mode{noPrivileged: policies.ModeAudit, trustedRegistries: policies.ModeAudit},
		},
		{
			name: "JSON",
			yaml: `{"policies": [{"name": "no-privileged", "mode": "audit"}]}`,
			want: map[string]policies.Mode{noPrivileged: policies.ModeAudit, trustedRegistries: policies.ModeEnforce},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), e)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := map[string]policies.Mode{}
			for name, s := range cfg.Policies {
				got[name] = s.Mode
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("modes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{
			name:    "both mode and enforcement",
			yaml:    "policies:\n- name: no-privileged\n  mode: audit\n  enforcement: strict\n",
			wantErr: "policies[0].mode: set either mode or enforcement, not both",
		},
		{
			name:    "unknown mode",
			yaml:    "policies:\n- name: no-privileged\n  mode: block\n",
			wantErr: `policies[0].mode: unknown mode "block" (want enforce, audit or off; strict and warn are accepted too)`,
		},
		{
			name:    "mode on unquoted is YAML 1.1 true",
			yaml:    "policies:\n- name: no-privileged\n  mode: on\n",
			wantErr: `config is not valid: mode: true is not a mode (YAML reads an unquoted on or yes as true): want enforce, audit or off`,
		},
		{
			name:    "unknown enforcement",
			yaml:    "policies:\n- name: no-privileged\n  enforcement: audit\n",
			wantErr: `policies[0].enforcement: unknown value "audit" (want strict or warn)`,
		},
		{
			name:    "unknown policy",
			yaml:    "policies:\n- name: no-privileged\n- name: no-latest-tag\n",
			wantErr: "policies[1].name: unknown policy \"no-latest-tag\" (see `attest policy list`)",
		},
		{
			name:    "duplicate policy",
			yaml:    "policies:\n- name: no-privileged\n- name: trusted-registries\n- name: no-privileged\n  mode: audit\n",
			wantErr: `policies[2].name: policy "no-privileged" is already configured at policies[0]`,
		},
		{
			name:    "missing name",
			yaml:    "policies:\n- name: no-privileged\n- mode: audit\n",
			wantErr: "policies[1].name: required",
		},
		{
			name:    "unknown top-level field",
			yaml:    "policies: []\nwebhook:\n  port: 8443\n",
			wantErr: `unknown field "webhook"`,
		},
		{
			name:    "unknown field in a policy entry",
			yaml:    "policies:\n- name: no-privileged\n  severity: low\n",
			wantErr: `unknown field "policies[0].severity"`,
		},
		{
			name:    "unknown field in productionNamespaces",
			yaml:    "productionNamespaces:\n  labels:\n    env: prod\n",
			wantErr: `unknown field "productionNamespaces.labels"`,
		},
		{
			name:    "policies is not a list",
			yaml:    "policies:\n  no-privileged:\n    mode: audit\n",
			wantErr: "config is not valid: json: cannot unmarshal object into Go struct field File.policies of type []config.PolicyEntry",
		},
		{
			name:    "parameter is a string instead of a list",
			yaml:    "policies:\n- name: trusted-registries\n  parameters:\n    trusted_registries: gcr.io\n",
			wantErr: "policies[0].parameters.trusted_registries: got string, want array",
		},
		{
			name:    "parameter item is a number instead of a string",
			yaml:    "policies:\n- name: trusted-registries\n  parameters:\n    trusted_registries: [1]\n",
			wantErr: "policies[0].parameters.trusted_registries[0]: got number, want string",
		},
		{
			name:    "parameter item has blanks",
			yaml:    "policies:\n- name: trusted-registries\n  parameters:\n    trusted_registries: [gcr.io/company, \"gcr.io/a b\"]\n",
			wantErr: `policies[0].parameters.trusted_registries[1]: 'gcr.io/a b' does not match pattern '^[^\\s]+$'`,
		},
		{
			name:    "parameter error in the second entry",
			yaml:    "policies:\n- name: no-privileged\n- name: trusted-registries\n  parameters:\n    trusted_registries: {gcr.io: true}\n",
			wantErr: "policies[1].parameters.trusted_registries: got object, want array",
		},
		{
			name:    "trusted registry without a host",
			yaml:    "policies:\n- name: no-privileged\n- name: trusted-registries\n  parameters:\n    trusted_registries: [gcr.io/company, /team]\n",
			wantErr: `policies[1].parameters.trusted_registries[1]: "/team" does not start with a registry host`,
		},
		{
			name:    "trusted registry with an upper-case repository",
			yaml:    "policies:\n- name: trusted-registries\n  parameters:\n    trusted_registries: [gcr.io/Team]\n",
			wantErr: "policies[0].parameters.trusted_registries[0]: \"gcr.io/Team\": repository path \"Team\" is not valid: the path segment \"Team\" has upper-case letters: repositories are lower case",
		},
		{
			name:    "unknown parameter",
			yaml:    "policies:\n- name: trusted-registries\n  parameters:\n    registries: [gcr.io]\n",
			wantErr: "policies[0].parameters.registries: unknown parameter (this policy takes trusted_registries)",
		},
		{
			name:    "parameter of a policy that declares none",
			yaml:    "policies:\n- name: no-privileged\n  parameters:\n    allow: [debug]\n",
			wantErr: "policies[0].parameters.allow: unknown parameter (this policy takes none)",
		},
		{
			name:    "invalid selector operator",
			yaml:    "productionNamespaces:\n  selector:\n    matchExpressions:\n    - {key: environment, operator: Equals, values: [production]}\n",
			wantErr: `productionNamespaces.selector: "Equals" is not a valid label selector operator`,
		},
		{
			name:    "selector In without values",
			yaml:    "productionNamespaces:\n  selector:\n    matchExpressions:\n    - {key: environment, operator: In}\n",
			wantErr: "productionNamespaces.selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), e)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", cfg, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its error: %+v", cfg)
			}
		})
	}
}

func TestParseParameters(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name        string
		yaml        string
		want        map[string]map[string]any
		wantTrusted int // entries of Config.TrustedRegistries
	}{
		{
			name: "defaults when not configured",
			yaml: "",
			want: map[string]map[string]any{
				noPrivileged:      {},
				trustedRegistries: {"trusted_registries": []any{}},
			},
		},
		{
			name: "default when the entry has no parameters",
			yaml: "policies:\n- name: trusted-registries\n  mode: audit\n",
			want: map[string]map[string]any{
				noPrivileged:      {},
				trustedRegistries: {"trusted_registries": []any{}},
			},
		},
		{
			name: "default when parameters is empty",
			yaml: "policies:\n- name: trusted-registries\n  parameters: {}\n",
			want: map[string]map[string]any{
				noPrivileged:      {},
				trustedRegistries: {"trusted_registries": []any{}},
			},
		},
		{
			name: "configured list",
			yaml: "policies:\n- name: trusted-registries\n  parameters:\n    trusted_registries:\n    - gcr.io/company\n    - registry.example.com/\n",
			want: map[string]map[string]any{
				noPrivileged:      {},
				trustedRegistries: {"trusted_registries": []any{"gcr.io/company", "registry.example.com/"}},
			},
			wantTrusted: 2,
		},
		{
			name: "configured empty list",
			yaml: "policies:\n- name: trusted-registries\n  parameters:\n    trusted_registries: []\n",
			want: map[string]map[string]any{
				noPrivileged:      {},
				trustedRegistries: {"trusted_registries": []any{}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), e)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := map[string]map[string]any{}
			for name, s := range cfg.Policies {
				got[name] = s.Params
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("params = %#v\nwant %#v", got, tt.want)
			}
			if n := cfg.TrustedRegistries.Len(); n != tt.wantTrusted {
				t.Errorf("TrustedRegistries has %d entries, want %d", n, tt.wantTrusted)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	e := newEngine(t)
	parse := func(s string) string {
		t.Helper()
		cfg, err := config.Parse([]byte(s), e)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		return cfg.Digest
	}
	tests := []struct {
		name     string
		a, b     string
		wantSame bool
	}{
		{name: "same content", a: "policies: []\n", b: "policies: []\n", wantSame: true},
		{name: "different content", a: "policies: []\n", b: "policies:\n- name: no-privileged\n", wantSame: false},
		{name: "a comment changes the digest", a: "policies: []\n", b: "# v2\npolicies: []\n", wantSame: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			da, db := parse(tt.a), parse(tt.b)
			if len(da) != 16 {
				t.Errorf("digest %q: want 16 hex digits", da)
			}
			if (da == db) != tt.wantSame {
				t.Errorf("digests %q and %q: same = %v, want %v", da, db, da == db, tt.wantSame)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	e := newEngine(t)
	cfg := config.Default(e)
	want, err := config.Parse(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policies) != len(e.Policies()) {
		t.Errorf("Default configures %d policies, the engine has %d", len(cfg.Policies), len(e.Policies()))
	}
	for _, p := range e.Policies() {
		if got := cfg.Policies[p.Name].Mode; got != p.DefaultMode {
			t.Errorf("%s: mode %q, want the METADATA default %q", p.Name, got, p.DefaultMode)
		}
	}
	if cfg.Digest != want.Digest {
		t.Errorf("Default digest %q, Parse(nil) digest %q", cfg.Digest, want.Digest)
	}
}

func TestProductionMatches(t *testing.T) {
	e := newEngine(t)
	const (
		defaults  = ""
		namesOnly = "productionNamespaces:\n  names: [prod-eu, prod-us]\n"
		labels    = "productionNamespaces:\n  selector:\n    matchLabels:\n      tier: prod\n"
		exprs     = "productionNamespaces:\n  names: [payments]\n  selector:\n    matchLabels:\n      tier: prod\n    matchExpressions:\n    - {key: region, operator: In, values: [eu, us]}\n    - {key: sandbox, operator: DoesNotExist}\n"
		none      = "productionNamespaces: {}\n"
		emptySel  = "productionNamespaces:\n  selector: {}\n"
	)
	tests := []struct {
		name   string
		yaml   string
		ns     string
		labels map[string]string
		want   bool
	}{
		{name: "default: name production", yaml: defaults, ns: "production", want: true},
		{name: "default: label environment=production", yaml: defaults, ns: "shop", labels: map[string]string{"environment": "production"}, want: true},
		{name: "default: other label value", yaml: defaults, ns: "shop", labels: map[string]string{"environment": "staging"}, want: false},
		{name: "default: neither", yaml: defaults, ns: "staging", labels: map[string]string{"team": "shop"}, want: false},
		{name: "default: nil labels", yaml: defaults, ns: "shop", labels: nil, want: false},
		{name: "default: nil labels but name matches", yaml: defaults, ns: "production", labels: nil, want: true},
		{name: "default: name is matched exactly", yaml: defaults, ns: "production-eu", want: false},
		{name: "names only: listed name", yaml: namesOnly, ns: "prod-us", want: true},
		{name: "names only: default name no longer production", yaml: namesOnly, ns: "production", want: false},
		{name: "names only: default label no longer production", yaml: namesOnly, ns: "shop", labels: map[string]string{"environment": "production"}, want: false},
		{name: "matchLabels: label match", yaml: labels, ns: "shop", labels: map[string]string{"tier": "prod", "team": "shop"}, want: true},
		{name: "matchLabels: no names, so production is not production", yaml: labels, ns: "production", labels: map[string]string{}, want: false},
		{name: "matchLabels: nil labels", yaml: labels, ns: "shop", labels: nil, want: false},
		{name: "matchExpressions: all match", yaml: exprs, ns: "shop", labels: map[string]string{"tier": "prod", "region": "eu"}, want: true},
		{name: "matchExpressions: region not in set", yaml: exprs, ns: "shop", labels: map[string]string{"tier": "prod", "region": "ap"}, want: false},
		{name: "matchExpressions: DoesNotExist violated", yaml: exprs, ns: "shop", labels: map[string]string{"tier": "prod", "region": "us", "sandbox": "1"}, want: false},
		{name: "matchExpressions: matchLabels missing", yaml: exprs, ns: "shop", labels: map[string]string{"region": "us"}, want: false},
		{name: "matchExpressions: name match without labels", yaml: exprs, ns: "payments", labels: nil, want: true},
		{name: "empty productionNamespaces: nothing is production", yaml: none, ns: "production", labels: map[string]string{"environment": "production"}, want: false},
		{name: "empty selector matches nothing", yaml: emptySel, ns: "shop", labels: map[string]string{"environment": "production"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), e)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := cfg.Production.Matches(tt.ns, tt.labels); got != tt.want {
				t.Errorf("Matches(%q, %v) = %v, want %v", tt.ns, tt.labels, got, tt.want)
			}
		})
	}
}

func TestZeroProductionMatchesNothing(t *testing.T) {
	var p config.Production
	if p.Matches("production", map[string]string{"environment": "production"}) {
		t.Error("the zero Production matches a namespace")
	}
}

func TestLoad(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", "policies:\n- name: no-privileged\n  mode: audit\n")
	bad := writeFile(t, dir, "bad.yaml", "policies:\n- name: nope\n")
	tests := []struct {
		name     string
		path     string
		wantErr  string
		wantMode policies.Mode
	}{
		{name: "good file", path: good, wantMode: policies.ModeAudit},
		{name: "bad file names the path", path: bad, wantErr: "config " + bad + ": policies[0].name: unknown policy \"nope\" (see `attest policy list`)"},
		{name: "missing file", path: dir + "/missing.yaml", wantErr: "read config: open " + dir + "/missing.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(tt.path, e)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := cfg.Policies[noPrivileged].Mode; got != tt.wantMode {
				t.Errorf("mode %q, want %q", got, tt.wantMode)
			}
		})
	}
}
