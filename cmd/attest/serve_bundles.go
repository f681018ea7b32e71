//go:build !lean

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// startPolicySources keeps the configuration's policy sources (policySources, policy.policy_bundle_url) loaded
// into layered: each bundle is verified against the current trust section, checked, and swapped in whole; a
// failure keeps the last good bundle and is logged with its reason.
func startPolicySources(ctx context.Context, g *errgroup.Group, layered *config.Layered, lib []policies.Source, reg prometheus.Registerer, restConfig *rest.Config, resources *config.ClusterResources, log *slog.Logger) error {
	var client kubernetes.Interface
	if restConfig != nil {
		cfg := rest.CopyConfig(restConfig)
		cfg.UserAgent = "attest-policy-sources"
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("policy sources: cluster client: %w", err)
		}
		client = c
	}
	// Bundles get a verifier of their own, without the image verdict cache: a moved tag is seen at the next interval.
	var mu sync.Mutex
	var trust *attestation.TrustPolicies
	var verifier *attestation.Verifier
	var clusterMu sync.Mutex
	cluster := map[string]bool{} // the sources that are PolicySource resources, whose status is written
	syncer, err := bundles.NewSyncer(bundles.SyncerOptions{
		Sources: func() []bundles.Source {
			cfg := layered.Current()
			if cfg == nil {
				return nil
			}
			out := make([]bundles.Source, 0, len(cfg.PolicySources))
			fromCluster := map[string]bool{}
			for _, s := range cfg.PolicySources {
				fromCluster[s.Name] = s.Cluster
				src := bundles.Source{Name: s.Name, Ref: s.OCI, TrustPolicy: s.TrustPolicy, Interval: s.Interval}
				if s.PullSecret != nil {
					src.Keychain = secretKeychain{client: client, ns: s.PullSecret.Namespace, name: s.PullSecret.Name}
				}
				out = append(out, src)
			}
			clusterMu.Lock()
			cluster = fromCluster
			clusterMu.Unlock()
			if resources != nil {
				for key, st := range cfg.Resources {
					if name, ok := strings.CutPrefix(key, "PolicySource/"); ok && !st.Valid && !fromCluster[name] {
						resources.SetSourceStatus(ctx, name, func(s *v1alpha1.PolicySourceStatus) {
							setReady(s, metav1.ConditionFalse, "Invalid", st.Message, time.Now())
						})
					}
				}
			}
			return out
		},
		Verifier: func() *attestation.Verifier {
			var t *attestation.TrustPolicies
			if cfg := layered.Current(); cfg != nil {
				t = cfg.Trust
			}
			mu.Lock()
			defer mu.Unlock()
			if verifier == nil || t != trust {
				trust, verifier = t, attestation.NewVerifier(t, attestation.VerifierOptions{})
			}
			return verifier
		},
		Library: lib,
		OnChange: func(loaded []bundles.Loaded) {
			layered.SetBundles(loaded)
			cfg := layered.Current()
			if cfg == nil {
				return
			}
			for _, b := range loaded {
				if st, ok := cfg.Resources["PolicySource/"+b.Source]; ok && !st.Valid {
					log.Error("policy source refused", "source", b.Source, "digest", b.Digest, "reason", st.Message)
					if resources != nil {
						resources.SetSourceStatus(ctx, b.Source, func(s *v1alpha1.PolicySourceStatus) {
							setReady(s, metav1.ConditionFalse, "Clash", st.Message, time.Now())
						})
					}
				}
			}
		},
		OnStatus: func(s bundles.Status) {
			if cfg := layered.Current(); cfg != nil && s.Ready {
				if st, ok := cfg.Resources["PolicySource/"+s.Source]; ok && !st.Valid {
					s.Ready, s.Result, s.Message = false, "clash", st.Message // loaded, but refused by the engine
				}
			}
			clusterMu.Lock()
			isCluster := cluster[s.Source]
			clusterMu.Unlock()
			if resources != nil && isCluster {
				resources.SetSourceStatus(ctx, s.Source, func(st *v1alpha1.PolicySourceStatus) { sourceStatus(st, s) })
			}
			if s.Ready {
				log.Info("policy source synced", "source", s.Source, "result", s.Result, "digest", s.Digest, "signer", s.Signer, "policies", s.Policies)
				return
			}
			log.Warn("policy source not synced; the last good bundle stays", "source", s.Source, "result", s.Result, "reason", s.Message, "loaded", s.Digest)
		},
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return syncer.Run(ctx) })
	return nil
}

// secretKeychain reads a policy source's pull secret when the registry asks for credentials, so a rotated secret
// is used at the next sync.
type secretKeychain struct {
	client   kubernetes.Interface
	ns, name string
}

func (k secretKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.client == nil {
		return nil, fmt.Errorf("pull secret %s/%s: no cluster to read it from", k.ns, k.name)
	}
	kc, err := kauth.New(context.Background(), k.client, kauth.Options{Namespace: k.ns, ImagePullSecrets: []string{k.name}})
	if err != nil {
		return nil, fmt.Errorf("pull secret %s/%s: %w", k.ns, k.name, err)
	}
	return kc.Resolve(r)
}

// sourceStatus is a PolicySource's status from the syncer's.
func sourceStatus(st *v1alpha1.PolicySourceStatus, s bundles.Status) {
	st.Digest, st.Signer, st.Revision, st.Policies = s.Digest, s.Signer, s.Revision, s.Policies
	if !s.LastSync.IsZero() {
		t := metav1.NewTime(s.LastSync)
		st.LastSync = &t
	}
	if !s.LastSuccess.IsZero() {
		t := metav1.NewTime(s.LastSuccess)
		st.LastSuccess = &t
	}
	status := metav1.ConditionFalse
	if s.Ready {
		status = metav1.ConditionTrue
	}
	setReady(st, status, reasons[s.Result], s.Message, s.LastSync)
}

// reasons are the Ready condition's reasons (CamelCase, as conditions want) for the sync results.
var reasons = map[string]string{
	bundles.ResultLoaded: "Loaded", bundles.ResultUnchanged: "Unchanged", bundles.ResultUntrusted: "Untrusted",
	bundles.ResultUnavailable: "Unavailable", bundles.ResultRefused: "Refused", "clash": "Clash",
}

// setReady sets the Ready condition; its transition time moves only when its status does.
func setReady(st *v1alpha1.PolicySourceStatus, status metav1.ConditionStatus, reason, message string, now time.Time) {
	if len(message) > 32768 {
		message = message[:32768]
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: "Ready", Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(now)})
}
