//go:build !lean

package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
)

// The real verifier is the pipeline's ImageVerifier.
var _ admission.ImageVerifier = (*attestation.Verifier)(nil)

// verifyOptions are the serve flags of image verification.
type verifyOptions struct {
	timeout     time.Duration
	concurrency int
	cacheSize   int
	positiveTTL time.Duration
	negativeTTL time.Duration
	tagTTL      time.Duration
	pullSecrets bool
}

func (o *verifyOptions) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&o.timeout, "verify-timeout", attestation.DefaultTimeout, "time to verify one image (also bounded by the request's --budget less 500ms)")
	f.IntVar(&o.concurrency, "verify-concurrency", attestation.DefaultConcurrency, "distinct images of one request verified at once")
	f.IntVar(&o.cacheSize, "verify-cache-size", attestation.DefaultCacheSize, "verification verdicts (and tag resolutions) kept, least recently used dropped first")
	f.DurationVar(&o.positiveTTL, "verify-cache-ttl", attestation.DefaultPositiveTTL, "how long a passing verdict is reused")
	f.DurationVar(&o.negativeTTL, "verify-negative-ttl", attestation.DefaultNegativeTTL, "how long a failing verdict is reused (a registry that did not answer is never cached)")
	f.DurationVar(&o.tagTTL, "verify-tag-ttl", attestation.DefaultTagTTL, "how long a tag's digest is reused before the registry is asked again (negative: never)")
	f.BoolVar(&o.pullSecrets, "pull-secrets", true, "authenticate to registries with the pod's imagePullSecrets and its service account's, read from the cluster (needs get on secrets and serviceaccounts); false: anonymous")
}

// verifiers hands out the verifier of a configuration's trust policies: one attestation.Verifier per trust
// configuration, built when it changes (a reload of the file), all sharing one verdict cache and one set of
// metrics. Verdicts of a changed trust policy are not reused: the cache is keyed by each policy's hash.
type verifiers struct {
	opts    attestation.VerifierOptions
	current atomic.Pointer[verifierFor]
}

type verifierFor struct {
	trust *attestation.TrustPolicies
	v     *attestation.Verifier
}

// newVerifiers registers the verification metrics on reg and creates the shared cache.
func newVerifiers(o verifyOptions, reg prometheus.Registerer) (*verifiers, error) {
	metrics, err := attestation.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("verification metrics: %w", err)
	}
	positive, negative := o.positiveTTL, o.negativeTTL
	if positive <= 0 || negative <= 0 {
		return nil, fmt.Errorf("--verify-cache-ttl and --verify-negative-ttl must be positive")
	}
	cache, err := attestation.NewCache(attestation.CacheOptions{Size: o.cacheSize, PositiveTTL: positive, NegativeTTL: negative, TagTTL: o.tagTTL, Metrics: metrics})
	if err != nil {
		return nil, fmt.Errorf("--verify-cache-size: %w", err)
	}
	if o.timeout <= 0 || o.concurrency <= 0 {
		return nil, fmt.Errorf("--verify-timeout and --verify-concurrency must be positive")
	}
	return &verifiers{opts: attestation.VerifierOptions{Timeout: o.timeout, Concurrency: o.concurrency, Cache: cache, Metrics: metrics}}, nil
}

// For is the admission.VerifierFunc.
func (vs *verifiers) For(cfg *config.Config) admission.ImageVerifier {
	var trust *attestation.TrustPolicies
	if cfg != nil {
		trust = cfg.Trust
	}
	if cur := vs.current.Load(); cur != nil && cur.trust == trust {
		return cur.v
	}
	next := &verifierFor{trust: trust, v: attestation.NewVerifier(trust, vs.opts)}
	vs.current.Store(next) // two requests racing on a reload may both build one: either is right
	return next.v
}

// imageVerification wires verification for `attest serve`: the verifier per configuration and, with a cluster and
// --pull-secrets, the pod's registry credentials.
func imageVerification(o verifyOptions, reg prometheus.Registerer, cluster *rest.Config, log *slog.Logger) (admission.VerifierFunc, admission.KeychainFunc, error) {
	vs, err := newVerifiers(o, reg)
	if err != nil {
		return nil, nil, err
	}
	if !o.pullSecrets || cluster == nil {
		if o.pullSecrets {
			log.Warn("no cluster configured: registries are asked anonymously (imagePullSecrets cannot be read)")
		}
		return vs.For, nil, nil
	}
	kc, err := clusterKeychain(cluster)
	if err != nil {
		return nil, nil, err
	}
	return vs.For, kc, nil
}

// clusterKeychain reads a pod's imagePullSecrets and its service account's from the API server, as the kubelet
// would pull with them (go-containerregistry's Kubernetes keychain). It is called only when a registry is
// contacted, not for cached verdicts.
func clusterKeychain(cfg *rest.Config) (admission.KeychainFunc, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "attest-webhook"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return podKeychain(client), nil
}

// podKeychain reads pull secrets with client.
func podKeychain(client kubernetes.Interface) admission.KeychainFunc {
	return func(ctx context.Context, namespace string, pullSecrets []string, serviceAccount string) (authn.Keychain, error) {
		return kauth.New(ctx, client, kauth.Options{Namespace: namespace, ServiceAccountName: serviceAccount, ImagePullSecrets: pullSecrets})
	}
}

// checkVerification wires verification for `attest policy check`: the verifier of the configuration's trust
// policies, sharing one verdict cache across all manifests (an image used by many objects is verified once), with
// registry credentials from the Docker config; offline, no registry is contacted and every image a trust policy
// covers is reported as not checked, so require-attestation denies it as unverified.
func checkVerification(_ *config.Config, offline bool, timeout time.Duration, _ []manifest.Source) (admission.VerifierFunc, admission.KeychainFunc, error) {
	if offline {
		return func(cfg *config.Config) admission.ImageVerifier {
			return attestation.NewOfflineVerifier(cfg.Trust)
		}, nil, nil
	}
	o := verifyOptions{timeout: timeout, concurrency: attestation.DefaultConcurrency, cacheSize: attestation.DefaultCacheSize,
		positiveTTL: attestation.DefaultPositiveTTL, negativeTTL: attestation.DefaultNegativeTTL, tagTTL: attestation.DefaultTagTTL}
	vs, err := newVerifiers(o, prometheus.NewRegistry())
	if err != nil {
		return nil, nil, err
	}
	return vs.For, dockerKeychain, nil
}

// dockerKeychain is the CLI's registry credentials: the Docker config and its credential helpers, as `docker pull`.
func dockerKeychain(context.Context, string, []string, string) (authn.Keychain, error) {
	return authn.DefaultKeychain, nil
}
