//go:build !lean

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/bundles/bundlestest"
)

// bundleDir writes a bundle directory; failing makes one of its tests fail.
func bundleDir(t *testing.T, failing bool) string {
	t.Helper()
	test := bundlestest.TeamLabelTest
	if failing {
		test = strings.Replace(test, "count(team_label.violation) == 0", "count(team_label.violation) == 3", 1)
	}
	return bundlestest.WriteDir(t, map[string]string{
		".manifest":                 `{"revision": "r1", "roots": ["acme"]}`,
		"acme/team_label.rego":      bundlestest.TeamLabelPolicy,
		"acme/team_label_test.rego": test,
	})
}

func TestBundleBuild(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	stdout, errOut, code := attest(t, "", "policy", "bundle", "build", bundleDir(t, false), "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, errOut)
	}
	for _, want := range []string{"wrote " + out + ": sha256:", "revision: r1\n", "policies: 1\n  acme-team-label (high, enforce)\tacme/team_label.rego\n", "tests: 2 passed\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Built again from a fresh copy: the same bytes.
	out2 := filepath.Join(t.TempDir(), "again.tar.gz")
	if _, _, code := attest(t, "", "policy", "bundle", "build", bundleDir(t, false), "-o", out2); code != 0 {
		t.Fatal(code)
	}
	second, _ := os.ReadFile(out2)
	if string(first) != string(second) {
		t.Error("two builds of the same files differ")
	}

	failed := filepath.Join(t.TempDir(), "failed.tar.gz")
	stdout, errOut, code = attest(t, "", "policy", "bundle", "build", bundleDir(t, true), "-o", failed)
	if code != 1 || !strings.Contains(errOut, "1 of 2 bundle tests failed: acme/team_label_test.rego:11 data.acme.team_label_test.test_allows_with_label") {
		t.Fatalf("failing test: exit %d\n%s%s", code, stdout, errOut)
	}
	if _, err := os.Stat(failed); !os.IsNotExist(err) {
		t.Errorf("a bundle whose tests fail was written: %v", err)
	}
	if _, errOut, code = attest(t, "", "policy", "bundle", "build", bundleDir(t, false)); code != 2 || !strings.Contains(errOut, "-o FILE is required") {
		t.Errorf("no -o: exit %d %s", code, errOut)
	}

	// Cedar and Gatekeeper files are checked and listed beside the Rego policies.
	mixed := bundlestest.WriteDir(t, bundlestest.Mixed())
	stdout, errOut, code = attest(t, "", "policy", "bundle", "build", mixed, "-o", filepath.Join(t.TempDir(), "mixed.tar.gz"))
	if code != 0 || !strings.Contains(stdout, "policies: 2\n  no-host-network (high, enforce)\tcedar/no-host-network.cedar\n"+
		"  AcmeRequiredLabels/pods-have-owner (medium, enforce)\tgatekeeper/required-labels.yaml:32\n") {
		t.Errorf("mixed bundle: exit %d\n%s%s", code, stdout, errOut)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, ".manifest"), []byte(`{"revision": "r1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "pods.cedar"), []byte("forbid (principal, action, resource)\nwhen { };"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = attest(t, "", "policy", "bundle", "build", broken, "-o", filepath.Join(t.TempDir(), "b.tar.gz")); code != 1 || !strings.Contains(errOut, "parse error at pods.cedar:2:") {
		t.Errorf("broken Cedar: exit %d %s", code, errOut)
	}
}

// bundleFixture is a registry, a key, and a policies.yaml whose trust section trusts bundles under
// <registry>/policies signed by the key.
func bundleFixture(t *testing.T) (reg *attestationtest.Registry, key *attestationtest.Signer, cfgPath string) {
	t.Helper()
	reg = attestationtest.NewRegistry(t)
	key = attestationtest.NewKey(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy-ci.pub"), []byte(key.PublicKeyPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "policies.yaml")
	yaml := `trust:
  policies:
    - name: policy-bundles
      images: ["` + reg.Host() + `/policies/**"]
      authorities:
        - name: policy-ci
          key: {pemFile: policy-ci.pub}
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return reg, key, cfgPath
}

func TestBundlePushSignValidatePull(t *testing.T) {
	reg, key, cfg := bundleFixture(t)
	ref := reg.Tagged("policies/acme", "v1")
	stdout, errOut, code := attest(t, "", "policy", "bundle", "push", bundleDir(t, false), ref)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s%s", code, stdout, errOut)
	}
	first := strings.SplitN(stdout, "\n", 2)[0]
	d, err := name.NewDigest(strings.TrimPrefix(first, "pushed "))
	if err != nil {
		t.Fatalf("push output %q: %v", first, err)
	}

	// Unsigned: refused.
	stdout, errOut, code = attest(t, "", "policy", "validate-bundle", "--config", cfg, ref)
	if code != 1 || !strings.Contains(errOut, "bundle not trusted: no signature from authority 'policy-ci'") {
		t.Fatalf("unsigned: exit %d\n%s%s", code, stdout, errOut)
	}
	// Signed by another key: refused.
	other := attestationtest.NewKey(t)
	other.Sign(t, d)
	if _, errOut, code = attest(t, "", "policy", "validate-bundle", "--config", cfg, ref); code != 1 || !strings.Contains(errOut, "signature by a different key") {
		t.Fatalf("other key: exit %d\n%s", code, errOut)
	}
	// Signed by the key: valid, with digest and signer.
	key.Sign(t, d)
	stdout, errOut, code = attest(t, "", "policy", "validate-bundle", "--config", cfg, "--format", "json", ref)
	if code != 0 {
		t.Fatalf("signed: exit %d\n%s%s", code, stdout, errOut)
	}
	var rep validateBundleReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Digest != d.DigestStr() || !rep.Verified || rep.Signer != key.KeyID(t) || rep.TrustPolicy != "policy-bundles" ||
		rep.Revision != "r1" || rep.Tests != 2 || len(rep.Policies) != 1 || rep.Policies[0] != "acme-team-label" {
		t.Errorf("report = %+v", rep)
	}
	if _, errOut, code = attest(t, "", "policy", "validate-bundle", ref); code != 2 || !strings.Contains(errOut, "--config is required") {
		t.Errorf("no config: exit %d %s", code, errOut)
	}

	// Pull, verified, into a directory, and build it again: the same digest of the bundle layer.
	out := filepath.Join(t.TempDir(), "pulled")
	stdout, errOut, code = attest(t, "", "policy", "bundle", "pull", "--config", cfg, ref, "-o", out)
	if code != 0 || !strings.Contains(stdout, "verified "+d.String()+": signed by "+key.KeyID(t)) {
		t.Fatalf("pull: exit %d\n%s%s", code, stdout, errOut)
	}
	if _, err := os.Stat(filepath.Join(out, "acme", "team_label_test.rego")); err != nil {
		t.Error(err)
	}

	// A signed bundle whose tests fail is refused by validate-bundle; push refuses to push one at all.
	failing := bundleDir(t, true)
	if _, errOut, code = attest(t, "", "policy", "bundle", "push", failing, reg.Tagged("policies/acme", "bad")); code != 1 || !strings.Contains(errOut, "bundle tests failed") {
		t.Fatalf("push failing: exit %d %s", code, errOut)
	}
	// A signed one pushed by other means (here bundles.Push, which checks nothing) is refused at validation.
	bundlestest.PushSignedDir(t, reg, key, failing, "policies/acme:bad")
	if _, errOut, code = attest(t, "", "policy", "validate-bundle", "--config", cfg, reg.Tagged("policies/acme", "bad")); code != 1 || !strings.Contains(errOut, "1 of 2 bundle tests failed") {
		t.Fatalf("signed failing bundle: exit %d %s", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "b.tar.gz")
	if _, _, code = attest(t, "", "policy", "bundle", "build", bundleDir(t, false), "-o", file); code != 0 {
		t.Fatal(code)
	}
	stdout, _, code = attest(t, "", "policy", "validate-bundle", file)
	if code != 0 || !strings.Contains(stdout, "signer: not verified (a file carries no signature") {
		t.Errorf("file: exit %d\n%s", code, stdout)
	}
	if _, errOut, code = attest(t, "", "policy", "validate-bundle", failing); code != 1 || !strings.Contains(errOut, "bundle tests failed") {
		t.Errorf("failing dir: exit %d %s", code, errOut)
	}
}

// TestServeLoadsPolicySources: `attest serve` with a policySources entry loads the signed bundle, denies with its
// policy, picks up a new signed version at the next interval without a restart, and keeps the last good bundle when
// the tag moves to a signed bundle whose tests fail.
func TestServeLoadsPolicySources(t *testing.T) {
	reg, key, cfg := bundleFixture(t)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Tagged("policies/acme", "prod")
	data = append(data, []byte("policySources:\n  - {name: acme, oci: \""+ref+"\", interval: 10s, trustPolicy: policy-bundles}\n")...)
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	push := func(dir string) { t.Helper(); bundlestest.PushSignedDir(t, reg, key, dir, "policies/acme:prod") }
	push(bundleDir(t, false))
	sv := startServe(t, "--config", cfg)
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "default"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "gcr.io/company/app:1"}}}}
	verdict := func() string {
		resp := postReview(t, sv.client, sv.webhookURL+"/validate", admission.ObjectInput(pod, "default", time.Now()), pod)
		if resp.Allowed || resp.Result == nil {
			return "" // admitted: the bundle's policy (enforce) did not deny
		}
		return resp.Result.Message
	}
	waitFor := func(what, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := verdict()
			if strings.Contains(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the verdict %q never said %q", what, got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("first sync", "[acme-team-label] metadata.labels.team: workloads carry a team label", 10*time.Second)

	v2 := bundleDir(t, false)
	p := filepath.Join(v2, "acme", "team_label.rego")
	if err := os.WriteFile(p, []byte(strings.Replace(bundlestest.TeamLabelPolicy, "workloads carry a team label", "workloads carry a team label (v2)", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	push(v2)
	waitFor("a new signed version", "workloads carry a team label (v2)", 25*time.Second)

	// A signed version whose tests fail never loads: after the next interval the verdict is still v2's.
	push(bundleDir(t, true))
	time.Sleep(12 * time.Second)
	waitFor("a failing version", "workloads carry a team label (v2)", time.Second)
}

// TestServeLoadsCedarAndGatekeeperFromPolicySource: a signed bundle holding a Cedar policy set and a Gatekeeper
// template with its constraint, pulled by `attest serve` from a registry, denies through the webhook with both.
func TestServeLoadsCedarAndGatekeeperFromPolicySource(t *testing.T) {
	reg, key, cfg := bundleFixture(t)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("policySources:\n  - {name: acme, oci: \""+reg.Tagged("policies/acme", "prod")+"\", interval: 10s, trustPolicy: policy-bundles}\n")...)
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	bundlestest.PushSignedDir(t, reg, key, bundlestest.WriteDir(t, bundlestest.Mixed()), "policies/acme:prod")
	sv := startServe(t, "--config", cfg)
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "default"},
		"spec": map[string]any{"hostNetwork": true, "containers": []any{map[string]any{"name": "app", "image": "gcr.io/company/app:1"}}}}
	want := []string{"[no-host-network] spec.hostNetwork: pods do not share the node's network", "[AcmeRequiredLabels/pods-have-owner]", "Pod web lacks the label owner"}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := postReview(t, sv.client, sv.webhookURL+"/validate", admission.ObjectInput(pod, "default", time.Now()), pod)
		msg := ""
		if !resp.Allowed && resp.Result != nil {
			msg = resp.Result.Message
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(msg, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the verdict %q never said %q", msg, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A labelled pod on the pod network passes both (the library's image policies still judge it).
	pod["metadata"].(map[string]any)["labels"] = map[string]any{"owner": "shop"}
	delete(pod["spec"].(map[string]any), "hostNetwork")
	resp := postReview(t, sv.client, sv.webhookURL+"/validate", admission.ObjectInput(pod, "default", time.Now()), pod)
	if resp.Result != nil && (strings.Contains(resp.Result.Message, "[no-host-network]") || strings.Contains(resp.Result.Message, "[AcmeRequiredLabels/")) {
		t.Errorf("a compliant pod was denied by the bundle: %s", resp.Result.Message)
	}
}
