//go:build !lean

package config_test

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// mixedBundle is bundlestest.Mixed (the Cedar set no-host-network, the constraint
// AcmeRequiredLabels/pods-have-owner) written to a directory, with extra files.
func mixedBundle(t *testing.T, extra map[string]string) string {
	t.Helper()
	files := maps.Clone(extra)
	maps.Copy(files, bundlestest.Mixed())
	return bundlestest.WriteDir(t, files)
}

// mfaCedar forbids changing a Pod without MFA, where cedar.mfa says what MFA is.
const mfaCedar = `@id("mfa") @message("pods change with MFA only")
forbid (principal, action, resource is core::v1::Pod) unless { context.mfa };
`

// judge runs one policy of the configuration on a hostNetwork Pod without labels, created by alice with the
// given userInfo.extra, and returns its findings' messages.
func judge(t *testing.T, cfg *config.Config, name string, extra map[string][]string) []string {
	t.Helper()
	p, ok := cfg.Engine.Lookup(name)
	if !ok {
		t.Fatalf("no policy %s", name)
	}
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "shop"},
		"spec": map[string]any{"hostNetwork": true, "containers": []any{map[string]any{"name": "app", "image": "app:1"}}}}
	doc, err := policies.NewDocument(policies.Input{Request: policies.Request{UID: "u", Operation: "CREATE", Version: "v1", Kind: "Pod",
		Namespace: "shop", Name: "web", Username: "alice", Extra: extra}, Resource: pod, Namespace: policies.Namespace{Name: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := p.Evaluator().Evaluate(context.Background(), doc, cfg.Policies[name])
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.Message)
	}
	return out
}

// TestBundlePathLanguages: policy.policy_bundle_path's Cedar sets and Gatekeeper constraints join the engine as
// the cedar directories' and --gatekeeper's do: named alike, configured under policies:, given the config's
// cedar.mfa, switched off by gatekeeper_enabled: false, kept when a custom Policy recompiles the Rego.
func TestBundlePathLanguages(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	dir := mixedBundle(t, map[string]string{"cedar/mfa.cedar": mfaCedar})
	archive := bundlestest.ArchiveDir(t, dir)
	const gk = "AcmeRequiredLabels/pods-have-owner"
	cfg, err := config.ParseWith([]byte("policy: {policy_bundle_path: "+dir+"}\ncedar: {mfa: {extraKey: acr, value: hardware}}\n"+
		"policies: [{name: no-host-network, mode: audit}, {name: "+gk+", mode: audit}]\n"), e, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Engine.Lookup("no-host-network")
	if !ok || p.File != "bundle@"+bundles.Digest(archive)+"/cedar/no-host-network.cedar" {
		t.Fatalf("cedar policy %+v", p)
	}
	for _, name := range []string{"no-host-network", gk} {
		if got := cfg.Policies[name].Mode; got != policies.ModeAudit {
			t.Errorf("%s: mode %s, want the policies: entry's audit", name, got)
		}
	}
	if got := judge(t, cfg, "no-host-network", nil); strings.Join(got, ";") != "pods do not share the node's network" {
		t.Errorf("cedar findings %q", got)
	}
	if got := judge(t, cfg, gk, nil); strings.Join(got, ";") != "Pod web lacks the label owner" {
		t.Errorf("constraint findings %q", got)
	}
	// cedar.mfa is the configuration's: acr=hardware is MFA, the default amr=mfa is not.
	if got := judge(t, cfg, "mfa", map[string][]string{"acr": {"hardware"}}); len(got) != 0 {
		t.Errorf("with the configured MFA: %q", got)
	}
	if got := judge(t, cfg, "mfa", map[string][]string{"amr": {"mfa"}}); strings.Join(got, ";") != "pods change with MFA only" {
		t.Errorf("with the default MFA key: %q", got)
	}
	// A custom Policy recompiles the Rego; the bundle's other languages stay, once.
	out := config.Overlay(context.Background(), librarySources(t), cfg, nil, config.Resources{Policies: []v1alpha1.Policy{customPolicy("other-policy")}})
	if st := out.Resources["Policy/other-policy"]; !st.Valid {
		t.Fatalf("custom Policy: %+v", st)
	}
	for _, name := range []string{"no-host-network", gk, "mfa"} {
		if _, ok := out.Engine.Lookup(name); !ok {
			t.Errorf("a custom Policy dropped the bundle's %s", name)
		}
	}
	// gatekeeper_enabled: false turns the bundle's constraint off, not its Cedar set.
	off, err := config.ParseWith([]byte("policy: {policy_bundle_path: "+dir+", gatekeeper_enabled: false}\n"), e, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if off.Policies[gk].Mode != policies.ModeOff || off.Policies["no-host-network"].Mode != policies.ModeEnforce {
		t.Errorf("gatekeeper_enabled false: %s %s, %s %s", gk, off.Policies[gk].Mode, "no-host-network", off.Policies["no-host-network"].Mode)
	}
	// A Cedar directory's set of the same name: the configuration is refused, naming both files.
	cedarDir := filepath.Join(t.TempDir(), "cedar")
	writeCedarFile(t, filepath.Join(cedarDir, "no-host-network.cedar"), forbidHostNetwork)
	_, err = config.ParseWith([]byte("cedar: {directories: ["+cedarDir+"]}\npolicy: {policy_bundle_path: "+dir+"}\n"), e, config.Options{})
	if err == nil || !strings.Contains(err.Error(), "policy.policy_bundle_path: "+dir+": policy no-host-network of bundle@") ||
		!strings.Contains(err.Error(), "the name is taken by the policy of "+filepath.Join(cedarDir, "no-host-network.cedar")) {
		t.Errorf("clash with a cedar directory: %v", err)
	}
}

// TestLayeredBundleLanguages: a policy source's Cedar sets and constraints join the live configuration, with the
// configuration's cedar.mfa; a clash with a Cedar Policy resource refuses the bundle whole; the last good one
// of another source stays.
func TestLayeredBundleLanguages(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundles.ReadDir(mixedBundle(t, map[string]string{"cedar/mfa.cedar": mfaCedar}), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checked, err := b.Check(context.Background(), lib, "PolicySource/acme@sha256:1")
	if err != nil {
		t.Fatal(err)
	}
	file, err := config.ParseWith([]byte("cedar: {mfa: {extraKey: acr, value: hardware}}\n"), e, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := config.NewLayered(func() *config.Config { return file }, lib)
	l.SetBundles([]config.LoadedBundle{{Source: "acme", Digest: "sha256:1", Policies: checked.Policies}})
	cur := l.Current()
	if st := cur.Resources["PolicySource/acme"]; !st.Valid {
		t.Fatalf("status %+v", st)
	}
	const gk = "AcmeRequiredLabels/pods-have-owner"
	if got := judge(t, cur, gk, nil); strings.Join(got, ";") != "Pod web lacks the label owner" {
		t.Errorf("constraint findings %q", got)
	}
	if cur.Policies[gk].Mode != policies.ModeEnforce || cur.Policies["no-host-network"].Mode != policies.ModeEnforce {
		t.Errorf("modes %+v", cur.Policies)
	}
	if got := judge(t, cur, "mfa", map[string][]string{"acr": {"hardware"}}); len(got) != 0 {
		t.Errorf("the bundle's Cedar set ignores cedar.mfa: %q", got)
	}
	// A Cedar Policy resource takes the name: the bundle is refused whole, its constraint too.
	l.SetResources(config.Resources{Policies: []v1alpha1.Policy{{ObjectMeta: objectMeta("no-host-network"),
		Spec: v1alpha1.PolicySpec{Cedar: forbidHostNetwork}}}})
	cur = l.Current()
	if st := cur.Resources["PolicySource/acme"]; st.Valid || !strings.Contains(st.Message, "bundle sha256:1 not loaded: policy no-host-network of PolicySource/acme@sha256:1/cedar/no-host-network.cedar: the name is taken by the policy of Policy/no-host-network") {
		t.Errorf("clash status %+v", st)
	}
	if _, ok := cur.Engine.Lookup(gk); ok {
		t.Error("a refused bundle's constraint loaded")
	}
}
