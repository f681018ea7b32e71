package admission

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/workload"
)

// ImageVerifier establishes what the policies know about images beyond their references: the digest a tag names,
// and the signatures and attestations of that digest judged against the trust policies. attestation.Verifier is
// the real one. VerifyAll answers for each distinct image, within ctx's deadline less reserve whatever the
// registries do.
type ImageVerifier interface {
	VerifyAll(ctx context.Context, images []string, keychain authn.Keychain, reserve time.Duration) map[string]attestation.Facts
}

// KeychainFunc returns the registry credentials a Pod in namespace pulls with: its imagePullSecrets and those of its
// service account (empty: "default"). The webhook reads them from the cluster; nil means anonymous.
type KeychainFunc func(ctx context.Context, namespace string, pullSecrets []string, serviceAccount string) (authn.Keychain, error)

// VerifierFunc returns the verifier for a configuration, built for its trust policies. It is called once per
// request, so it should hand out the same verifier until the configuration changes (and share the verdict cache
// across configurations: a trust policy's verdicts are keyed by its hash).
type VerifierFunc func(*config.Config) ImageVerifier

// verifyMargin is what verification leaves of the request's deadline for the policies and the answer.
const verifyMargin = 500 * time.Millisecond

// imageStage is the verification step of the pipeline.
type imageStage struct {
	verifier VerifierFunc
	keychain KeychainFunc
	memo     attestationsMemo
	entries  imageEntries
}

// verifyImages verifies every distinct image of containers, concurrently (the verifier bounds how many at once),
// and returns the facts by image as written; nil when no verifier is configured, so the policies see no
// verification result and require-attestation denies (fail closed). With no trust policy configured the verifier
// answers at once, without a registry: each image is "covered by no trust policy" and trust.noMatch decides.
func (e *Evaluator) verifyImages(ctx context.Context, in Input, cfg *config.Config, containers []workload.Container) map[string]attestation.Facts {
	if e.images.verifier == nil || len(containers) == 0 {
		return nil
	}
	v := e.images.verifier(cfg)
	if v == nil {
		return nil
	}
	images := distinctImages(containers)
	var kc authn.Keychain
	if e.images.keychain != nil && cfg.Trust.Len() > 0 {
		kc = e.podKeychain(ctx, in)
	}
	return v.VerifyAll(ctx, images, kc, verifyMargin)
}

func distinctImages(containers []workload.Container) []string {
	images := make([]string, 0, len(containers))
	for i, c := range containers {
		seen := false
		for _, d := range containers[:i] {
			if d.Image == c.Image {
				seen = true
				break
			}
		}
		if !seen {
			images = append(images, c.Image)
		}
	}
	return images
}

// podKeychain is the keychain of the object's pod spec, read from the cluster only when a registry asks for
// credentials: a cached verdict costs no API call.
func (e *Evaluator) podKeychain(ctx context.Context, in Input) authn.Keychain {
	gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
	var secrets []string
	var sa string
	if spec := podSpec(gk, in.Object); spec != nil {
		sa, _ = spec["serviceAccountName"].(string)
		if sa == "" {
			sa, _ = spec["serviceAccount"].(string) // the deprecated alias the API server still fills
		}
		list, _ := spec["imagePullSecrets"].([]any)
		for _, s := range list {
			if m, ok := s.(map[string]any); ok {
				if n, _ := m["name"].(string); n != "" {
					secrets = append(secrets, n)
				}
			}
		}
	}
	ns := in.Request.Namespace
	keychain := e.images.keychain
	return &lazyKeychain{build: func() (authn.Keychain, error) {
		kc, err := keychain(ctx, ns, secrets, sa)
		if err != nil {
			who := "service account " + sa
			if sa == "" {
				who = "service account default"
			}
			if len(secrets) > 0 {
				who = "imagePullSecrets " + strings.Join(secrets, ", ") + " and " + who
			}
			return nil, fmt.Errorf("cannot read the registry credentials of the pod (%s in namespace %s): %w", who, ns, err)
		}
		return kc, nil
	}}
}

// podSpec is the object's pod spec, nil when there is none.
func podSpec(gk workload.GroupKind, obj map[string]any) map[string]any {
	path := workload.PodSpecPath(gk)
	if path == "" {
		return nil
	}
	cur := obj
	for _, seg := range strings.Split(path, ".") {
		next, _ := cur[seg].(map[string]any)
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// lazyKeychain builds its keychain on the first Resolve, once; a failure is every Resolve's error, so the
// verification reports it (and denies) rather than trying the registry anonymously.
type lazyKeychain struct {
	once  sync.Once
	build func() (authn.Keychain, error)
	kc    authn.Keychain
	err   error
}

func (l *lazyKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	l.once.Do(func() { l.kc, l.err = l.build() })
	if l.err != nil {
		return nil, l.err
	}
	if l.kc == nil {
		return authn.Anonymous, nil
	}
	return l.kc.Resolve(r)
}

// mergeFacts adds the verifier's facts to input.images: trust, signature and attestations, and digest — the one
// verified (a tag resolved) when the verifier knows it, else the reference's own. The reference facts stay.
func mergeFacts(images map[string]map[string]any, facts map[string]attestation.Facts) {
	for image, f := range facts {
		m, ok := images[image]
		if !ok {
			continue
		}
		for k, v := range f.Map() {
			if k == "digest" && f.Digest == "" {
				continue
			}
			m[k] = v
		}
	}
}

// ImageInput is input.images[image] as the policies see it: the parsed reference and the trusted-registry fact of
// cfg, with the verifier's facts merged in when f is not nil. `attest image verify` prints it.
func ImageInput(image string, cfg *config.Config, f *attestation.Facts) map[string]any {
	m := imageFacts(image, cfg.TrustedRegistries)
	if f != nil {
		mergeFacts(map[string]map[string]any{image: m}, map[string]attestation.Facts{image: *f})
	}
	return m
}
