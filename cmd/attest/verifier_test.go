//go:build !lean

package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// TestVerifiersPerTrustConfiguration: one verifier per trust configuration, rebuilt when it changes (a reload),
// kept when only other parts of the configuration change (a Policy resource layered over the file).
func TestVerifiersPerTrustConfiguration(t *testing.T) {
	o := verifyOptions{}
	o.addFlags(pflag.NewFlagSet("serve", pflag.ContinueOnError)) // the flag defaults
	vs, err := newVerifiers(o, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	trust, err := attestation.NewTrustPolicies(attestation.TrustConfig{NoMatch: "audit"}, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &config.Config{Trust: trust}
	b := &config.Config{Trust: trust} // same trust, other settings
	if vs.For(a) != vs.For(b) {
		t.Fatal("a configuration with the same trust policies got a new verifier")
	}
	first := vs.For(a).(*attestation.Verifier)
	if first.Policies() != trust {
		t.Fatal("verifier not built for the configuration's trust policies")
	}
	reloaded := &config.Config{}
	if v := vs.For(reloaded).(*attestation.Verifier); v == first || v.Policies() != nil {
		t.Fatal("a reloaded trust configuration kept the old verifier")
	}
	if _, err := newVerifiers(verifyOptions{}, prometheus.NewRegistry()); err == nil {
		t.Fatal("zero durations accepted")
	}
}

// TestPodKeychain reads a pod's imagePullSecrets and its service account's through go-containerregistry's
// Kubernetes keychain.
func TestPodKeychain(t *testing.T) {
	dockerConfig := func(host, user, pass string) []byte {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		return []byte(`{"auths":{"` + host + `":{"auth":"` + auth + `"}}}`)
	}
	client := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig("registry.company.com", "ci", "s3cret")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "mirror"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig("mirror.company.com", "sa", "m1rror")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "builder"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "mirror"}}},
	)
	kc, err := podKeychain(client)(context.Background(), "shop", []string{"regcred"}, "builder")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]authn.AuthConfig{
		"registry.company.com": {Username: "ci", Password: "s3cret"},
		"mirror.company.com":   {Username: "sa", Password: "m1rror"},
		"gcr.io":               {},
	} {
		reg, err := name.NewRegistry(host)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != want.Username || got.Password != want.Password {
			t.Errorf("%s: %+v, want %+v", host, got, want)
		}
	}
}

// TestCheckVerification: what `attest policy check` gets — verified facts online, "not checked (--offline)"
// offline — judged by require-attestation through the admission pipeline.
func TestCheckVerification(t *testing.T) {
	reg, signed, unsigned, cfgPath, _ := imageFixture(t)
	engine, err := compileLibrary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, engine)
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Policies["require-attestation"]
	pol.Mode = policies.ModeEnforce
	cfg.Policies["require-attestation"] = pol
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	check := func(offline bool, image string) admission.Decision {
		t.Helper()
		verifier, keychain, err := checkVerification(cfg, offline, 10*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg), Verifier: verifier, Keychain: keychain})
		if err != nil {
			t.Fatal(err)
		}
		obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web"},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}}}
		return ev.Evaluate(context.Background(), admission.ObjectInput(obj, "shop", now))
	}
	if d := check(false, signed); verifyDeniedBy(d, "require-attestation") {
		t.Fatalf("signed image denied: %s", d.Message)
	}
	if d := check(false, unsigned); !verifyDeniedBy(d, "require-attestation") {
		t.Fatalf("unsigned image not denied: %s", d.Message)
	}
	reg.ResetRequests()
	d := check(true, signed)
	want := `[require-attestation] spec.containers[0] (app): image "` + signed + `" could not be verified against trust policy release: not checked (--offline); ATTEST denies what it could not verify: retry when the registry answers`
	if !verifyHasLine(d.Message, want) {
		t.Fatalf("offline: message lacks\n%s\ngot\n%s", want, d.Message)
	}
	if reg.Requests() != 0 {
		t.Fatalf("offline check made %d registry requests", reg.Requests())
	}
}

func verifyDeniedBy(d admission.Decision, policy string) bool {
	for _, v := range d.Violations {
		if v.Policy == policy && v.Denied {
			return true
		}
	}
	return false
}

func verifyHasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
