package config_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

func TestFindFiles(t *testing.T) {
	root := t.TempDir()
	configHome := filepath.Join(root, "home", ".config")
	project := filepath.Join(root, "src", "shop")
	sub := filepath.Join(project, "deploy", "prod")
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(sub)
	mkdir(filepath.Join(project, ".git"))
	global := filepath.Join(configHome, "attest", "policies.yaml")
	projectPolicies := filepath.Join(project, ".attest", "policies.yaml")
	projectGov := filepath.Join(project, ".attest", "governance.yaml")
	outside := filepath.Join(root, "src", ".attest", "policies.yaml")
	write := func(p string) {
		mkdir(filepath.Dir(p))
		if err := os.WriteFile(p, []byte("policies: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	find := func(dir string) []string {
		t.Helper()
		got, err := config.FindFiles(dir, configHome)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	write(outside)
	if got := find(sub); len(got) != 0 {
		t.Errorf("nothing in the project: found %v (the search must stop at the repository root)", got)
	}
	write(global)
	if got := find(sub); !reflect.DeepEqual(got, []string{global}) {
		t.Errorf("global only: %v", got)
	}
	write(projectGov)
	if got := find(sub); !reflect.DeepEqual(got, []string{global, projectGov}) {
		t.Errorf("global and governance: %v", got)
	}
	write(projectPolicies)
	if got := find(sub); !reflect.DeepEqual(got, []string{global, projectPolicies, projectGov}) {
		t.Errorf("all three: %v", got)
	}
	if got := find(project); !reflect.DeepEqual(got, []string{global, projectPolicies, projectGov}) {
		t.Errorf("from the project root: %v", got)
	}
	if got, err := config.FindFiles(sub, ""); err != nil || !reflect.DeepEqual(got, []string{projectPolicies, projectGov}) {
		t.Errorf("without a configuration home: %v, %v", got, err)
	}
	nearer := filepath.Join(project, "deploy", ".attest", "governance.yaml")
	write(nearer)
	if got := find(sub); !reflect.DeepEqual(got, []string{global, nearer}) {
		t.Errorf("the nearest .attest wins, as the nearest .git does: %v", got)
	}
}

func TestLoadFilesLayers(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	global := writeFile(t, dir, "global.yaml", globalSettingsYAML+`policies:
  - name: no-privileged
    enforcement: strict
  - name: disallow-latest-tag
    enforcement: strict
`)
	project := writeFile(t, dir, "policies.yaml", `policy:
  fail_on_violation: false
policies:
  - name: disallow-latest-tag
    enabled: false
`)
	gov := writeFile(t, dir, "governance.yaml", governanceYAML)
	cfg, err := config.LoadFiles([]string{global, project, gov}, e, config.Options{Now: func() time.Time { return loadedAt }})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]policies.Mode{}
	for _, n := range []string{"require-team-label", noPrivileged, "disallow-latest-tag"} {
		modes[n] = cfg.Policies[n].Mode
	}
	// The project's fail_on_violation: false audits what the global file enforces; its entry replaces the global
	// file's for disallow-latest-tag; the global file's custom policy stays.
	want := map[string]policies.Mode{"require-team-label": policies.ModeAudit, noPrivileged: policies.ModeAudit, "disallow-latest-tag": policies.ModeOff}
	if !reflect.DeepEqual(modes, want) {
		t.Errorf("modes %v, want %v", modes, want)
	}
	if cfg.Governance.RequiredApprovers != 2 {
		t.Errorf("governance.yaml's required_approvers: %d", cfg.Governance.RequiredApprovers)
	}
	if !reflect.DeepEqual(cfg.Files, []string{global, project, gov}) {
		t.Errorf("Files %v", cfg.Files)
	}
	var wantWarnings []string
	if !reflect.DeepEqual(cfg.Warnings, wantWarnings) {
		t.Errorf("warnings:\n got %q\nwant %q", cfg.Warnings, wantWarnings)
	}
}

func TestLoadFilesErrorsNameTheFile(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	global := writeFile(t, dir, "global.yaml", "policies:\n  - name: no-privileged\n  - name: disallow-latest-tag\n")
	tests := []struct {
		name, project, wantErr string
	}{
		{"a type error", "policy:\n  fail_on_violation: \"no\"\n", "config " + dir + "/project.yaml: policy.fail_on_violation: got string, want boolean"},
		{"a parameter error, indexed as in the file", "policies:\n  - name: disallow-latest-tag\n  - name: trusted-registries\n    parameters:\n      trusted_registries: [1]\n",
			"config " + dir + "/project.yaml: policies[1].parameters.trusted_registries[0]: got number, want string"},
		{"an unknown policy", "policies:\n  - name: no-root\n", "config " + dir + "/project.yaml: policies[0].name: unknown policy \"no-root\" (see `attest policy list`)"},
		{"a governance error", "exemptions:\n  maxDuration: forever\n", "config " + dir + "/project.yaml: exemptions.maxDuration: \"forever\" is not a duration (want e.g. 30d, 72h or 2w)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := writeFile(t, dir, "project.yaml", tt.project)
			_, err := config.LoadFiles([]string{global, project}, e, config.Options{})
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error:\n got %v\nwant %s", err, tt.wantErr)
			}
		})
	}
}

func TestOverlayKeepsCustomPolicies(t *testing.T) {
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseAt(t, globalSettingsYAML)
	custom := v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "from-cluster"}, Spec: v1alpha1.PolicySpec{Rego: "package attest.custom.from_cluster\n\nviolation[{\"msg\": \"x\"}] { false }\n"}}
	out := config.Overlay(context.Background(), lib, cfg, nil, config.Resources{Policies: []v1alpha1.Policy{custom}})
	for _, name := range []string{"require-team-label", "from-cluster", noPrivileged} {
		if _, ok := out.Engine.Lookup(name); !ok {
			t.Errorf("after a custom Policy resource, %s is not in the engine (statuses %+v)", name, out.Resources)
		}
	}
	audit := parseAt(t, "policy:\n  fail_on_violation: false\n")
	pol := v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: noPrivileged}, Spec: v1alpha1.PolicySpec{Mode: "enforce"}}
	out = config.Overlay(context.Background(), lib, audit, nil, config.Resources{Policies: []v1alpha1.Policy{pol}})
	if got := out.Policies[noPrivileged].Mode; got != policies.ModeAudit {
		t.Errorf("a Policy set to enforce under fail_on_violation: false: mode %q, want audit", got)
	}
}
