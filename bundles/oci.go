//go:build !lean

package bundles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/continuums/attest/attestation"
)

// The media types of a bundle artifact, as OPA's OCI downloader reads it (and `oras push` writes it): an OCI
// image manifest with the standard config and one gzipped-tar layer holding the bundle.
const (
	ConfigMediaType   = types.OCIConfigJSON
	ManifestMediaType = types.OCIManifestSchema1
	titleAnnotation   = "org.opencontainers.image.title"
)

// Push writes the archive to ref as a bundle artifact and returns the digest reference of its manifest: the
// thing to sign (`cosign sign REF@DIGEST`).
func Push(ctx context.Context, archive []byte, ref name.Reference, keychain authn.Keychain, opts ...remote.Option) (name.Digest, error) {
	layer := static.NewLayer(archive, MediaType)
	img, err := mutate.Append(mutate.MediaType(empty.Image, ManifestMediaType), mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{titleAnnotation: "bundle.tar.gz"},
	})
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	if err := remote.Write(ref, img, append(remoteOptions(ctx, keychain), opts...)...); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return ref.Context().Digest(d.String()), nil
}

// Pull reads the bundle artifact at d, a digest reference (the verified one: never a tag, which could move between
// verification and pull). The manifest must be a bundle artifact with exactly one bundle layer; the layer's bytes
// are checked against its digest as they are read, so a tampered layer is refused.
func Pull(ctx context.Context, d name.Digest, keychain authn.Keychain, l Limits, opts ...remote.Option) (*Bundle, []byte, error) {
	l = l.orDefault()
	img, err := remote.Image(d, append(remoteOptions(ctx, keychain), opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: %w", d, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: %w", d, err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != MediaType {
		return nil, nil, fmt.Errorf("pull %s: not a policy bundle: want one layer of media type %s, have %s", d, MediaType, layerTypes(m))
	}
	if m.Layers[0].Size > l.MaxArchiveBytes {
		return nil, nil, fmt.Errorf("pull %s: the bundle layer is %d bytes, over the %d-byte limit", d, m.Layers[0].Size, l.MaxArchiveBytes)
	}
	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: %w", d, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: %w", d, err)
	}
	defer func() { _ = rc.Close() }()
	// Read the whole layer first: ggcr checks its digest at EOF, and nothing is parsed before that check.
	archive, err := io.ReadAll(io.LimitReader(rc, l.MaxArchiveBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: the bundle layer: %w", d, err)
	}
	if int64(len(archive)) > l.MaxArchiveBytes {
		return nil, nil, fmt.Errorf("pull %s: the bundle layer is over the %d-byte limit", d, l.MaxArchiveBytes)
	}
	if got := Digest(archive); got != m.Layers[0].Digest.String() {
		return nil, nil, fmt.Errorf("pull %s: the bundle layer's content has digest %s, not the manifest's %s: refused", d, got, m.Layers[0].Digest)
	}
	b, err := Read(bytes.NewReader(archive), l)
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: %w", d, err)
	}
	return b, archive, nil
}

// Resolve turns a tag into the digest it names now; a digest reference is returned as it is.
func Resolve(ctx context.Context, r name.Reference, keychain authn.Keychain, opts ...remote.Option) (name.Digest, error) {
	if d, ok := r.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(r, append(remoteOptions(ctx, keychain), opts...)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", r, err)
	}
	return r.Context().Digest(desc.Digest.String()), nil
}

func layerTypes(m *v1.Manifest) string {
	if len(m.Layers) == 0 {
		return "no layer"
	}
	var s string
	for i, l := range m.Layers {
		if i > 0 {
			s += ", "
		}
		s += string(l.MediaType)
	}
	return s
}

func remoteOptions(ctx context.Context, keychain authn.Keychain) []remote.Option {
	if keychain == nil {
		keychain = authn.NewMultiKeychain() // anonymous
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain)}
}

// Verified is a bundle whose artifact satisfied its trust policy, pulled by the verified digest.
type Verified struct {
	// Ref is the artifact's digest reference.
	Ref name.Digest
	// Digest is the artifact manifest's digest ("sha256:…"): what was signed.
	Digest string
	// Signer and Authority are who signed it, as image verification reports them.
	Signer, Authority string
	// TrustPolicy is the trust policy the artifact satisfied.
	TrustPolicy string
	Bundle      *Bundle
	// Archive is the bundle layer's bytes.
	Archive []byte
}

// ErrUntrusted is the error of a bundle artifact that does not satisfy its trust policy; ErrUnavailable of one
// whose verification could not run (the registry down, slow or refusing).
var (
	ErrUntrusted   = errors.New("bundle not trusted")
	ErrUnavailable = errors.New("bundle not verified")
)

// Fetch verifies the bundle artifact at ref (tag or digest) with v, image verification's verifier (cosign
// signatures by keys or keyless identities, the same code as for images), and pulls it by the verified digest.
// trustPolicy, when set, is the trust policy that must cover ref: a bundle covered by no policy, or by another,
// is refused, and so is one without a signature from one of the policy's authorities. Fetch loads nothing; the
// caller checks the bundle (Check) before using it.
func Fetch(ctx context.Context, v *attestation.Verifier, ref, trustPolicy string, keychain authn.Keychain, l Limits, opts ...remote.Option) (*Verified, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", ref, err)
	}
	f := v.Verify(ctx, ref, keychain)
	switch {
	case !f.Trust.Checked && f.Trust.Policy != "":
		return nil, fmt.Errorf("bundle %s: %w: could not verify: %s", ref, ErrUnavailable, f.Trust.Error)
	case f.Trust.Policy == "":
		return nil, fmt.Errorf("bundle %s: %w: no trust policy of the trust section covers it (an unsigned bundle never loads)", ref, ErrUntrusted)
	case trustPolicy != "" && f.Trust.Policy != trustPolicy:
		return nil, fmt.Errorf("bundle %s: %w: it is covered by trust policy %q, not %q (the first policy whose images match applies)", ref, ErrUntrusted, f.Trust.Policy, trustPolicy)
	case !f.Passed():
		return nil, fmt.Errorf("bundle %s: %w: %s", ref, ErrUntrusted, f.Trust.Error)
	}
	d := parsed.Context().Digest(f.Digest)
	b, archive, err := Pull(ctx, d, keychain, l, opts...)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w: %w", ref, ErrUnavailable, err)
	}
	return &Verified{Ref: d, Digest: f.Digest, Signer: f.Signature.Signer, Authority: f.Signature.Authority,
		TrustPolicy: f.Trust.Policy, Bundle: b, Archive: archive}, nil
}
