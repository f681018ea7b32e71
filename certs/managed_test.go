package certs_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/continuums/attest/certs"
)

// The rotation itself runs against a real API server in the e2e suite (TestRotatedCertificateIsServedWithoutRestart);
// here: options that cannot work are refused before anything starts.
func TestNewManagedRefusesIncompleteOptions(t *testing.T) {
	good := certs.ManagedOptions{
		Secret: types.NamespacedName{Namespace: "attest-system", Name: "attest-tls"}, Hosts: []string{"attest.attest-system.svc"},
		CertDir: t.TempDir(), ValidatingWebhook: "attest", MutatingWebhook: "attest",
	}
	tests := []struct {
		name   string
		modify func(*certs.ManagedOptions)
		want   string
	}{
		{"no secret namespace", func(o *certs.ManagedOptions) { o.Secret.Namespace = "" }, "needs a namespace and a name"},
		{"no secret name", func(o *certs.ManagedOptions) { o.Secret.Name = "" }, "needs a namespace and a name"},
		{"no hosts", func(o *certs.ManagedOptions) { o.Hosts = nil }, "at least one host name"},
		{"no directory", func(o *certs.ManagedOptions) { o.CertDir = "" }, "certificate directory"},
		{"no webhook", func(o *certs.ManagedOptions) { o.ValidatingWebhook, o.MutatingWebhook = "", "" }, "at least one webhook configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.modify(&o)
			_, err := certs.NewManaged(&rest.Config{Host: "https://127.0.0.1:1"}, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	if _, err := certs.NewManaged(&rest.Config{Host: "https://127.0.0.1:1"}, good); err != nil {
		t.Fatalf("complete options refused: %v", err)
	}
}
