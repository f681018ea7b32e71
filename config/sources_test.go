package config_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// bundleTrust is a trust section with the trust policy policy-bundles, its key made for the run.
var bundleTrust = func() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	pemText := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n", "\\n")
	return `trust:
  policies:
    - name: policy-bundles
      images: ["registry.company.com/policies/**"]
      authorities:
        - name: policy-ci
          key: {pem: "` + pemText + `"}
`
}()

func TestPolicySources(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	parse := func(yaml string) (*config.Config, error) {
		return config.ParseWith([]byte(yaml), e, config.Options{})
	}
	cfg, err := parse(`policySources:
  - name: acme
    oci: registry.company.com/policies/acme:prod
    interval: 1m
    trustPolicy: policy-bundles
    pullSecret: {namespace: attest-system, name: regcred}
policy:
  policy_bundle_url: registry.company.com/policies/base@sha256:` + strings.Repeat("a", 64) + `
` + bundleTrust)
	if err != nil {
		t.Fatal(err)
	}
	want := []config.PolicySource{
		{Name: "acme", OCI: "registry.company.com/policies/acme:prod", Interval: time.Minute, TrustPolicy: "policy-bundles",
			PullSecret: &config.PullSecretRef{Namespace: "attest-system", Name: "regcred"}},
		{Name: config.BundleURLSource, OCI: "registry.company.com/policies/base@sha256:" + strings.Repeat("a", 64), Interval: config.DefaultSourceInterval},
	}
	if !reflect.DeepEqual(cfg.PolicySources, want) {
		t.Errorf("sources:\n got %+v\nwant %+v", cfg.PolicySources, want)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"no trust policy", "policySources: [{name: a, oci: r.io/p:1}]\n" + bundleTrust, "policySources[0].trustPolicy: required: name the trust policy whose authorities must have signed the bundle (an unsigned bundle never loads)"},
		{"unknown trust policy", "policySources: [{name: a, oci: r.io/p:1, trustPolicy: images}]\n" + bundleTrust, `policySources[0].trustPolicy: "images" is not a policy of the trust section`},
		{"no oci", "policySources: [{name: a, trustPolicy: policy-bundles}]\n" + bundleTrust, "policySources[0].oci: required"},
		{"bad oci", "policySources: [{name: a, oci: 'R.io/P:1:2', trustPolicy: policy-bundles}]\n" + bundleTrust, `policySources[0].oci: "R.io/P:1:2" is not a registry reference`},
		{"bad name", "policySources: [{name: A_b, oci: r.io/p:1, trustPolicy: policy-bundles}]\n" + bundleTrust, `policySources[0].name: "A_b" is not a source name`},
		{"short interval", "policySources: [{name: a, oci: r.io/p:1, trustPolicy: policy-bundles, interval: 1s}]\n" + bundleTrust, "policySources[0].interval: 1s is shorter than the minimum 10s"},
		{"bad interval", "policySources: [{name: a, oci: r.io/p:1, trustPolicy: policy-bundles, interval: soon}]\n" + bundleTrust, `policySources[0].interval: time: invalid duration "soon"`},
		{"duplicate", "policySources: [{name: a, oci: r.io/p:1, trustPolicy: policy-bundles}, {name: a, oci: r.io/p:2, trustPolicy: policy-bundles}]\n" + bundleTrust, `policySources[1].name: "a" is already the name of policySources[0]`},
		{"pull secret", "policySources: [{name: a, oci: r.io/p:1, trustPolicy: policy-bundles, pullSecret: {name: x}}]\n" + bundleTrust, "policySources[0].pullSecret: namespace and name are required"},
		{"unknown key", "policySources: [{name: a, oci: r.io/p:1, trustPolicy: policy-bundles, url: x}]\n" + bundleTrust, `unknown field "policySources[0].url"`},
		{"https url", "policy: {policy_bundle_url: 'https://policies.company.com/attest/bundle.tar.gz'}\n", "policy.policy_bundle_url: https://policies.company.com/attest/bundle.tar.gz: bundles are pulled from OCI registries"},
		{"bad url", "policy: {policy_bundle_url: 'not a ref'}\n", `policy.policy_bundle_url: "not a ref" is not a registry reference`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func writeBundle(t *testing.T, dir string, test string) {
	t.Helper()
	for p, text := range map[string]string{".manifest": `{"roots": ["acme"]}`, "acme/p.rego": bundlestest.TeamLabelPolicy, "acme/p_test.rego": test} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPolicyBundlePath(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeBundle(t, filepath.Join(dir, "bundle"), bundlestest.TeamLabelTest)
	// A directory, relative to the config file's directory, and its built archive.
	archive := bundlestest.ArchiveDir(t, filepath.Join(dir, "bundle"))
	if err := os.WriteFile(filepath.Join(dir, "bundle.tar.gz"), archive, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bundle", "bundle.tar.gz"} {
		cfg, err := config.ParseWith([]byte("policy: {policy_bundle_path: "+p+"}\npolicies: [{name: acme-team-label, mode: audit}]\n"), e, config.Options{Dir: dir})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		pol, ok := cfg.Engine.Lookup("acme-team-label")
		if !ok || pol.File != "bundle@"+bundles.Digest(archive)+"/acme/p.rego" {
			t.Fatalf("%s: policy %+v", p, pol)
		}
		if cfg.Policies["acme-team-label"].Mode != policies.ModeAudit {
			t.Errorf("%s: mode %s", p, cfg.Policies["acme-team-label"].Mode)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%s: warnings %q", p, cfg.Warnings)
		}
		// A custom Policy resource recompiles the engine; the bundle's policy stays.
		out := config.Overlay(context.Background(), librarySources(t), cfg, nil, config.Resources{Policies: []v1alpha1.Policy{customPolicy("other-policy")}})
		if _, ok := out.Engine.Lookup("acme-team-label"); !ok {
			t.Errorf("%s: a custom Policy dropped the bundle's policy", p)
		}
	}
	failing := filepath.Join(t.TempDir(), "failing")
	writeBundle(t, failing, strings.Replace(bundlestest.TeamLabelTest, "== 1", "== 0", 1))
	_, err = config.ParseWith([]byte("policy: {policy_bundle_path: "+failing+"}\n"), e, config.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "policy.policy_bundle_path: "+failing+": 1 of 2 bundle tests failed") {
		t.Fatalf("failing bundle: %v", err)
	}
	_, err = config.ParseWith([]byte("policy: {policy_bundle_path: missing}\n"), e, config.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "policy.policy_bundle_path: read bundle: stat "+filepath.Join(dir, "missing")) {
		t.Fatalf("missing bundle: %v", err)
	}
}

func TestLayeredBundles(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeBundle(t, dir, bundlestest.TeamLabelTest)
	b, err := bundles.ReadDir(dir, bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checked, err := b.Check(context.Background(), lib, "PolicySource/acme@sha256:1")
	if err != nil {
		t.Fatal(err)
	}
	file := config.Default(e)
	l := config.NewLayered(func() *config.Config { return file }, lib)
	if _, ok := l.Current().Engine.Lookup("acme-team-label"); ok {
		t.Fatal("loaded before SetBundles")
	}
	l.SetBundles([]config.LoadedBundle{{Source: "acme", Digest: "sha256:1", Policies: checked.Policies}})
	cur := l.Current()
	if _, ok := cur.Engine.Lookup("acme-team-label"); !ok {
		t.Fatal("bundle policy not loaded")
	}
	if st := cur.Resources["PolicySource/acme"]; !st.Valid {
		t.Errorf("status %+v", st)
	}
	if cur.Policies["acme-team-label"].Mode != policies.ModeEnforce {
		t.Errorf("mode %s, want the METADATA's enforce", cur.Policies["acme-team-label"].Mode)
	}
	// A Policy resource sets the bundle policy's mode, as for any policy.
	l.SetResources(config.Resources{Policies: []v1alpha1.Policy{{ObjectMeta: objectMeta("acme-team-label"), Spec: v1alpha1.PolicySpec{Mode: "audit"}}}})
	if got := l.Current().Policies["acme-team-label"].Mode; got != policies.ModeAudit {
		t.Errorf("Policy resource: mode %s", got)
	}
	// A second bundle with the same policy name is refused whole, with a clear status; the first stays.
	l.SetBundles([]config.LoadedBundle{
		{Source: "acme", Digest: "sha256:1", Policies: checked.Policies},
		{Source: "copy", Digest: "sha256:2", Policies: checked.Policies},
	})
	cur = l.Current()
	st := cur.Resources["PolicySource/copy"]
	if st.Valid || !strings.Contains(st.Message, "bundle sha256:2 not loaded: policy acme-team-label of PolicySource/acme@sha256:1/acme/p.rego: the name is taken") {
		t.Errorf("clash status %+v", st)
	}
	if !cur.Resources["PolicySource/acme"].Valid {
		t.Error("the first bundle was dropped by the clash")
	}
	// A custom Policy of the bundle policy's name: the bundle is refused, never silently shadowed.
	l.SetBundles([]config.LoadedBundle{{Source: "acme", Digest: "sha256:1", Policies: checked.Policies}})
	l.SetResources(config.Resources{Policies: []v1alpha1.Policy{customPolicy("acme-team-label")}})
	cur = l.Current()
	if st := cur.Resources["PolicySource/acme"]; st.Valid || !strings.Contains(st.Message, "the name is taken by the policy of Policy/acme-team-label") {
		t.Errorf("clash with a custom Policy: %+v", st)
	}
}

// customPolicy is a Policy resource with custom Rego, its policy named as the resource.
func customPolicy(name string) v1alpha1.Policy {
	return v1alpha1.Policy{ObjectMeta: objectMeta(name), Spec: v1alpha1.PolicySpec{
		Rego: "package attest.custom." + strings.ReplaceAll(name, "-", "_") + "\n\nviolation[{\"msg\": \"x\"}] { false }\n"}}
}

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func TestPolicySourceResources(t *testing.T) {
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	file, err := config.ParseWith([]byte("policySources: [{name: from-file, oci: registry.company.com/policies/f:1, trustPolicy: policy-bundles}]\n"+bundleTrust), e, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	source := func(name, oci, trust string) v1alpha1.PolicySource {
		return v1alpha1.PolicySource{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3},
			Spec: v1alpha1.PolicySourceSpec{OCI: oci, TrustPolicy: trust, Interval: &metav1.Duration{Duration: time.Minute}}}
	}
	out := config.Overlay(context.Background(), librarySources(t), file, nil, config.Resources{Sources: []v1alpha1.PolicySource{
		source("acme", "registry.company.com/policies/acme:prod", "policy-bundles"),
		source("from-file", "registry.company.com/policies/x:1", "policy-bundles"),
		source("other-trust", "registry.company.com/policies/y:1", "images"),
	}})
	var names []string
	for _, s := range out.PolicySources {
		names = append(names, fmt.Sprintf("%s:%v:%s", s.Name, s.Cluster, s.Interval))
	}
	if got, want := strings.Join(names, ","), "from-file:false:5m0s,acme:true:1m0s"; got != want {
		t.Errorf("sources %s, want %s", got, want)
	}
	for key, want := range map[string]string{
		"PolicySource/from-file":   `the config file's policySources has a source named "from-file"; rename one`,
		"PolicySource/other-trust": `spec.trustPolicy: "images" is not a policy of the trust section`,
	} {
		if st := out.Resources[key]; st.Valid || st.Message != want || st.Generation != 3 {
			t.Errorf("%s: %+v, want %q", key, st, want)
		}
	}
	if len(file.PolicySources) != 1 {
		t.Error("Overlay changed the file configuration's sources")
	}
}
