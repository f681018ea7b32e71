// Package attestation establishes facts about container images: what a reference really names, and (later)
// whether it carries valid signatures and attestations.
package attestation

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Reference is what an image string names once parsed the way a container runtime parses it.
type Reference struct {
	// Canonical is the fully qualified name, e.g. "index.docker.io/library/nginx:latest".
	Canonical string
	// Registry is the lower-cased registry host (and port), with Docker Hub as "index.docker.io".
	Registry string
	// Repository is the path under the registry, e.g. "library/nginx".
	Repository string
	// Tag is the tag as written, "latest" when neither a tag nor a digest is given, "" for a digest-only reference.
	Tag string
	// Digest is the "sha256:…" digest when the reference names one.
	Digest string
}

// ParseReference parses an image reference with go-containerregistry and normalises what it leaves open
// (host case, empty path segments), so that trust decisions never rest on string prefixes.
func ParseReference(image string) (Reference, error) {
	if image == "" {
		return Reference{}, fmt.Errorf("image reference is empty")
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		if strings.Contains(image, "@") {
			// go-containerregistry only says "could not parse reference"; the digest parser says what is wrong.
			if _, derr := name.NewDigest(image); derr != nil {
				return Reference{}, fmt.Errorf("image %q is not a valid reference: %w (a digest is \"sha256:\" and 64 lower-case hexadecimal digits)", image, derr)
			}
		}
		return Reference{}, fmt.Errorf("image %q is not a valid reference: %w", image, err)
	}
	repo := ref.Context().RepositoryStr()
	for _, seg := range strings.Split(repo, "/") {
		if seg == "" {
			return Reference{}, fmt.Errorf("image %q is not a valid reference: repository %q has an empty path segment", image, repo)
		}
	}
	out := Reference{
		Registry:   strings.ToLower(ref.Context().RegistryStr()),
		Repository: repo,
	}
	switch r := ref.(type) {
	case name.Digest:
		out.Digest = r.DigestStr()
		// "repo:tag@sha256:…" keeps its tag for display; the digest is what is pulled.
		if at := strings.LastIndexByte(image, '@'); at > 0 {
			if t, err := name.NewTag(image[:at]); err == nil && hasExplicitTag(image[:at]) {
				out.Tag = t.TagStr()
			}
		}
	case name.Tag:
		out.Tag = r.TagStr()
	}
	out.Canonical = out.Registry + "/" + out.Repository
	if out.Tag != "" {
		out.Canonical += ":" + out.Tag
	}
	if out.Digest != "" {
		out.Canonical += "@" + out.Digest
	}
	return out, nil
}

// hasExplicitTag reports whether a reference without digest names a tag (a colon after the last slash).
func hasExplicitTag(s string) bool {
	return strings.LastIndexByte(s, ':') > strings.LastIndexByte(s, '/')
}
