// Package attestation establishes facts about container images: what a reference really names, and (later)
// whether it carries valid signatures and attestations.
package attestation

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"
	lru "github.com/hashicorp/golang-lru/v2"
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

// dockerHub is how Registry names Docker Hub: go-containerregistry's spelling, which the policies' input, trust
// policies and trusted registries have always used. distribution/reference writes it docker.io.
const dockerHub = "index.docker.io"

// ParseReference reads an image reference exactly as containerd and the kubelet read it: with the
// distribution/reference grammar (ParseNormalizedNamed), so that a reference they refuse (a ".." path segment,
// an upper-case repository, a malformed host, tag or digest) is refused here with the reason, and one they accept
// names the registry and repository they pull from ("nginx" is Docker Hub's library/nginx; an upper-case first
// segment is a host). The registry host is lower-cased, as DNS reads it, and Docker Hub is written
// index.docker.io. Trust decisions rest on these parts, never on string prefixes of what was written.
func ParseReference(image string) (Reference, error) {
	if r, ok := parsedReferences.Get(image); ok {
		return r.ref, r.err
	}
	ref, err := parseReference(image)
	parsedReferences.Add(image, parsed{ref, err})
	return ref, err
}

// parsedReferences remembers recent parses: the grammar is regular expressions with backtracking, and the same
// images recur in every Pod of a workload and across a manifest stream. Bounded, so that a stream of distinct
// references keeps no more than this many.
var parsedReferences, _ = lru.New[string, parsed](4096) // the size is positive: New cannot fail

type parsed struct {
	ref Reference
	err error
}

// parseReference is ParseReference without the cache.
func parseReference(image string) (Reference, error) {
	if image == "" {
		return Reference{}, fmt.Errorf("image reference is empty")
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return Reference{}, fmt.Errorf("image %q is not a valid reference: %s", image, whyInvalid(image, err))
	}
	if reference.Domain(named) == "" {
		// distribution/reference reads "my_reg.io/app" (a first segment with a dot that is no valid host name) as a
		// repository path without a host, while containerd pulls from the host my_reg.io: a reference whose readers
		// disagree on the registry is refused.
		return Reference{}, fmt.Errorf("image %q is not a valid reference: %s", image, whyInvalid(image, fmt.Errorf("no registry host")))
	}
	out := Reference{Registry: strings.ToLower(reference.Domain(named)), Repository: reference.Path(named)}
	if out.Registry == "docker.io" {
		out.Registry = dockerHub
	}
	if t, ok := named.(reference.Tagged); ok {
		out.Tag = t.Tag() // "repo:tag@sha256:…" keeps its tag for display; the digest is what is pulled
	}
	if d, ok := named.(reference.Digested); ok {
		out.Digest = d.Digest().String()
	}
	if out.Tag == "" && out.Digest == "" {
		out.Tag = "latest"
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

// The parts of the distribution/reference grammar, used to say which part of a refused reference is wrong and to
// check configured trusted registries: whether a reference is accepted is decided by distribution/reference alone.
// They are compiled when first needed (a refused reference, a trusted registry), not when every command starts.
var grammar = sync.OnceValue(func() *referenceGrammar {
	return &referenceGrammar{
		host:          regexp.MustCompile(`^` + reference.DomainRegexp.String() + `$`),
		pathComponent: regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`),
		tag:           regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`),
		digest:        regexp.MustCompile(`^` + reference.DigestRegexp.String() + `$`),
		imageID:       regexp.MustCompile(`^[a-f0-9]{64}$`),
	}
})

type referenceGrammar struct {
	host, pathComponent, tag, digest, imageID *regexp.Regexp
}

// whyInvalid explains, for the person at kubectl apply, why the runtime's grammar refuses image (err is its
// answer): the first character no reference may hold, or the host, path segment, tag or digest that is wrong.
func whyInvalid(image string, err error) string {
	for _, r := range image {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) {
			if r == utf8.RuneError {
				return "it is not valid UTF-8"
			}
			return fmt.Sprintf("it contains %q, and a reference is ASCII letters, digits and . _ - / : @ only", string(r))
		}
	}
	if grammar().imageID.MatchString(image) {
		return "64 hexadecimal digits are an image ID, not a reference; write registry/repository@sha256:<digest>"
	}
	name, dgst, hasDigest := strings.Cut(image, "@")
	if hasDigest {
		if !grammar().digest.MatchString(dgst) {
			return fmt.Sprintf("the digest %q is not valid: write it as sha256: and 64 lower-case hexadecimal digits", dgst)
		}
		if _, derr := reference.ParseNormalizedNamed("a@" + dgst); derr != nil { // the algorithm or its length
			return fmt.Sprintf("the digest %q is not valid (%v): write it as sha256: and 64 lower-case hexadecimal digits", dgst, derr)
		}
	}
	// A colon after the last slash starts the tag; one before it is a port.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		tag := name[i+1:]
		name = name[:i]
		if !grammar().tag.MatchString(tag) {
			return fmt.Sprintf("the tag %q is not valid: a tag is at most 128 letters, digits, _ . and -, and does not start with . or -", tag)
		}
	}
	// The runtime reads the first segment as a registry host when it has a dot or a colon, is localhost or has
	// upper-case letters; otherwise the name is on Docker Hub.
	path := name
	if host, rest, ok := strings.Cut(name, "/"); ok && (host == "localhost" || strings.ContainsAny(host, ".:") || strings.ToLower(host) != host) {
		if !grammar().host.MatchString(host) {
			return fmt.Sprintf("the registry host %q is not valid: a host is DNS labels of letters, digits and -, or an IP address, optionally with :port", host)
		}
		path = rest
	}
	if why := repositoryProblem(path); why != "" {
		return why
	}
	return err.Error()
}

// repositoryProblem says what is wrong with a repository path in the runtime's grammar, "" when nothing is.
func repositoryProblem(path string) string {
	for _, seg := range strings.Split(path, "/") {
		switch {
		case seg == "":
			return fmt.Sprintf("the repository %q has an empty path segment", path)
		case seg == "." || seg == "..":
			return fmt.Sprintf("the path segment %q is not allowed: container runtimes refuse . and .. in a repository", seg)
		case strings.ToLower(seg) != seg:
			return fmt.Sprintf("the path segment %q has upper-case letters: repositories are lower case", seg)
		case !grammar().pathComponent.MatchString(seg):
			return fmt.Sprintf("the path segment %q is not valid: lower-case letters and digits, separated by one ., one or two _, or dashes", seg)
		}
	}
	if len(path) > reference.RepositoryNameTotalLengthMax {
		return fmt.Sprintf("the repository name is %d characters long; at most %d are allowed", len(path), reference.RepositoryNameTotalLengthMax)
	}
	return ""
}
