//go:build !lean

package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/webhook"
)

// TestFirstRunWebhook: /validate over HTTPS, with the verifier `attest serve` wires and no trust section: the Deployment is admitted
// with one warning; with mode enforce it is denied (403) with the same text.
func TestFirstRunWebhook(t *testing.T) {
	ctx := context.Background()
	engine, err := compileLibrary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(firstRunDeployment), &obj); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		config  string
		allowed bool
	}{
		{"first run", true},
		{"enforce", false},
	} {
		t.Run(c.config, func(t *testing.T) {
			verifier, _, err := imageVerification(verifyOptions{timeout: time.Second, concurrency: 4, cacheSize: 100, positiveTTL: time.Minute, negativeTTL: time.Second}, prometheus.NewRegistry(), nil, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.ParseIn([]byte(firstRunConfigs[c.config]), engine, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg),
				Verifier: verifier})
			if err != nil {
				t.Fatal(err)
			}
			h, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
			resp := postReview(t, client, srv.URL+"/validate", admission.ObjectInput(obj, "default", time.Now()), obj)
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed %v, want %v: %+v", resp.Allowed, c.allowed, resp.Result)
			}
			var ra []string
			if c.allowed {
				for _, w := range resp.Warnings {
					if strings.Contains(w, "[require-attestation]") {
						ra = append(ra, w)
					}
				}
				if len(ra) != 1 || ra[0] != "audit: "+firstRunMessage {
					t.Fatalf("require-attestation warnings %q, want one: audit: %s", ra, firstRunMessage)
				}
				return
			}
			if resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Message != firstRunMessage {
				t.Fatalf("denial %+v, want 403: %s", resp.Result, firstRunMessage)
			}
		})
	}
}
