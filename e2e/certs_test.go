package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/e2e/harness"
)

// TestCABundleIsInjectedFromTheSecret shows that the caBundle the API server uses is the CA ATTEST keeps in its
// Secret: the harness registers the webhooks without one, and every other test depends on this injection.
func TestCABundleIsInjectedFromTheSecret(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	v, m, err := cluster.CABundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := cluster.Client.CoreV1().Secrets(harness.Namespace).Get(ctx, harness.CertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 || !bytes.Equal(v, secret.Data["ca.crt"]) || !bytes.Equal(m, v) {
		t.Fatalf("caBundle (validating %d bytes, mutating %d bytes) is not the Secret's ca.crt (%d bytes)", len(v), len(m), len(secret.Data["ca.crt"]))
	}
	leaf, err := cluster.ServingCertificate(v)
	if err != nil {
		t.Fatalf("the served certificate does not verify against the injected CA: %v", err)
	}
	if !bytes.Equal(leaf.Raw, pemBlock(t, secret.Data["tls.crt"])) {
		t.Fatal("ATTEST does not serve the certificate in its Secret")
	}
}

// TestRotatedCertificateIsServedWithoutRestart wipes the Secret, as an expired or compromised CA would be
// replaced: ATTEST issues a new CA and certificate, injects the new CA, serves the new certificate from the same
// process, and the API server keeps reaching it.
func TestRotatedCertificateIsServedWithoutRestart(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	oldCA, _, err := cluster.CABundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldLeaf, err := cluster.ServingCertificate(oldCA)
	if err != nil {
		t.Fatal(err)
	}
	pid := cluster.AttestPID()
	secrets := cluster.Client.CoreV1().Secrets(harness.Namespace)
	secret, err := secrets.Get(ctx, harness.CertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret.Data = nil
	if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	newCA, err := cluster.WaitForCABundle(waitCtx, oldCA)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		leaf, err := cluster.ServingCertificate(newCA)
		if err != nil {
			return fmt.Errorf("served certificate does not verify against the new CA yet: %w", err)
		}
		if bytes.Equal(leaf.Raw, oldLeaf.Raw) {
			return fmt.Errorf("still serving the old certificate")
		}
		return nil
	})
	if got := cluster.AttestPID(); got != pid {
		t.Fatalf("attest restarted (pid %d → %d); a rotation must be picked up in place", pid, got)
	}
	ns := namespace(t, "e2e-rotated")
	eventually(t, 30*time.Second, func() error {
		_, errOut, ok := kubectl(t, privilegedPod(ns, "after-rotation"), "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(errOut, denied) {
			return fmt.Errorf("after rotation the API server did not get ATTEST's decision: %s", errOut)
		}
		return nil
	})
}

func pemBlock(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		t.Fatal(err)
	}
	return b.Bytes
}
