package webhooktest

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/continuums/attest/certs"
)

// WriteServingCert creates a CA and a serving certificate signed by it for host (an IP address or a DNS name),
// writes them to dir as tls.crt, tls.key and ca.crt (atomically, as a rotation would), and returns a pool that
// trusts the CA.
func WriteServingCert(dir, host string) (*x509.CertPool, error) {
	now := time.Now()
	ca, err := certs.NewCA("attest webhooktest CA", now, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	kp, err := ca.IssueServing([]string{host}, now, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := certs.WriteDir(dir, kp, ca.PEM); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM) {
		return nil, errors.New("CA certificate does not parse")
	}
	return pool, nil
}
