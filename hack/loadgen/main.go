// Command loadgen measures what policy evaluation costs over HTTPS on loopback: it serves /validate with the full
// policy library and a no-op handler the same way (same TLS server, same decoding-free client path), drives each
// with the same concurrent keep-alive load in the same run, and prints requests/s, p50 and p99.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/certs"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
)

const cfgYAML = `
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: ["gcr.io/company", "docker.io/library"]
`

func main() {
	duration := flag.Duration("duration", 5*time.Second, "load per target")
	workers := flag.Int("c", 8, "concurrent connections")
	warmup := flag.Duration("warmup", time.Second, "warm-up per target, not measured")
	flag.Parse()
	if err := run(*duration, *warmup, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(duration, warmup time.Duration, workers int) error {
	ctx := context.Background()
	srcs, _, err := policies.Library()
	if err != nil {
		return err
	}
	engine, err := policies.Compile(ctx, srcs)
	if err != nil {
		return err
	}
	cfg, err := config.Parse([]byte(cfgYAML), engine)
	if err != nil {
		return err
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }})
	if err != nil {
		return err
	}
	validate, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval})
	if err != nil {
		return err
	}
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x","allowed":true}}`))
	})
	cert, pool, err := selfSigned()
	if err != nil {
		return err
	}
	body := review()
	fmt.Printf("loopback HTTPS, %d connections, %s per target after %s warm-up, body %d bytes\n", workers, duration, warmup, len(body))
	fmt.Printf("%-10s %10s %10s %10s %10s\n", "target", "req/s", "p50", "p99", "p99.9")
	var results [2][3]time.Duration
	for i, target := range []struct {
		name string
		h    http.Handler
	}{{"noop", noop}, {"validate", validate}} {
		url, stop, err := serve(target.h, cert)
		if err != nil {
			return err
		}
		drive(url, body, pool, workers, warmup)
		lat, rps := drive(url, body, pool, workers, duration)
		stop()
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
		results[i] = [3]time.Duration{p(0.5), p(0.99), p(0.999)}
		fmt.Printf("%-10s %10.0f %10s %10s %10s\n", target.name, rps, p(0.5), p(0.99), p(0.999))
	}
	fmt.Printf("validate/noop p99 ratio: %.2f\n", float64(results[1][1])/float64(results[0][1]))
	return nil
}

// drive sends the body from workers keep-alive clients for d and returns sorted latencies and requests/s.
func drive(url string, body []byte, pool *x509.CertPool, workers int, d time.Duration) ([]time.Duration, float64) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: workers, ForceAttemptHTTP2: false}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var all []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					fmt.Fprintln(os.Stderr, "request:", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(all)
	return all, float64(len(all)) / d.Seconds()
}

func serve(h http.Handler, cert tls.Certificate) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return "https://" + ln.Addr().String() + "/validate", func() { _ = srv.Close() }, nil
}

// selfSigned issues a loopback serving certificate from a fresh CA and returns a pool trusting that CA.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	now := time.Now()
	ca, err := certs.NewCA("loadgen", now, time.Hour)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	kp, err := ca.IssueServing([]string{"127.0.0.1"}, now, time.Hour)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return cert, pool, nil
}

// review is a CREATE of a compliant 3-container Deployment, so every policy runs to completion.
func review() []byte {
	container := func(name, image string) map[string]any {
		return map[string]any{"name": name, "image": image, "securityContext": map[string]any{"runAsNonRoot": true},
			"resources": map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}}}
	}
	obj := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"initContainers": []any{container("migrate", "gcr.io/company/migrate:1.4")},
					"containers":     []any{container("app", "gcr.io/company/app:2.1"), container("proxy", "nginx:1.27")},
				}}},
	}
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": "0b1c", "kind": map[string]any{"group": "apps", "version": "v1", "kind": "Deployment"},
			"namespace": "shop", "name": "web", "operation": "CREATE", "userInfo": map[string]any{"username": "ci"}, "object": obj},
	})
	return b
}
