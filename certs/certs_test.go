package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/continuums/attest/certs"
)

func TestIssueServingVerifiesForEachHost(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	ca, err := certs.NewCA("attest-ca", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hosts := append(certs.ServiceHosts("attest", "attest-system"), "127.0.0.1")
	kp, err := ca.IssueServing(hosts, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.PEM) {
		t.Fatal("CA PEM does not parse")
	}
	for _, h := range append(hosts, "evil.example.com") {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, CurrentTime: now.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != (h != "evil.example.com") {
			t.Errorf("verify for %s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: hosts[0], CurrentTime: now.Add(2 * time.Hour)}); err == nil {
		t.Error("an expired serving certificate verified")
	}
	if _, err := ca.IssueServing(nil, now, time.Hour); err == nil {
		t.Error("issued a certificate for no host")
	}
}

func TestWriteDir(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("attest-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServing([]string{"localhost"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	if err := certs.WriteDir(dir, kp, ca.PEM); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{certs.CertFile: kp.CertPEM, certs.KeyFile: kp.KeyPEM, certs.CAFile: ca.PEM} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %v (content equal: %v)", name, err, string(got) == string(want))
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CertFile), filepath.Join(dir, certs.KeyFile)); err != nil {
		t.Fatal(err)
	}
}
