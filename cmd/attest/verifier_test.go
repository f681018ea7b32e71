package main

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
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
