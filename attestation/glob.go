package attestation

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// imageGlob matches registry/repository names segment by segment. The registry segment is normalised the way
// ParseReference normalises references (lower case, docker.io → index.docker.io), so a glob and a reference can
// only meet on the parsed form, never on how either was spelled.
type imageGlob struct {
	text     string   // as configured
	segments []string // normalised; "**" is a segment of its own
}

// compileImageGlob validates a glob: a registry host (or "*" / "**") first, then repository segments, each a literal
// lower-case path component, a path.Match pattern within the segment ("app-*"), or "**". Tags and digests have no
// place in a glob: trust follows the repository.
func compileImageGlob(text string) (imageGlob, error) {
	if text == "" {
		return imageGlob{}, fmt.Errorf("empty glob")
	}
	if strings.ContainsAny(text, "@") {
		return imageGlob{}, fmt.Errorf("%q: globs match repositories; remove the digest", text)
	}
	segs := strings.Split(text, "/")
	for i, s := range segs {
		if s == "" {
			return imageGlob{}, fmt.Errorf("%q: empty path segment", text)
		}
		if strings.Contains(s, "**") && s != "**" {
			return imageGlob{}, fmt.Errorf("%q: \"**\" must be a whole path segment", text)
		}
		if _, err := path.Match(s, ""); err != nil {
			return imageGlob{}, fmt.Errorf("%q: segment %q is not a valid pattern: %w", text, s, err)
		}
		if i > 0 && strings.Contains(s, ":") {
			return imageGlob{}, fmt.Errorf("%q: globs match repositories; remove the tag", text)
		}
	}
	host := segs[0]
	if !strings.ContainsAny(host, "*?[") {
		if len(segs) == 1 || (!strings.ContainsAny(host, ".:") && host != "localhost") {
			return imageGlob{}, fmt.Errorf("%q must start with a registry host, e.g. docker.io/library/%s", text, text)
		}
		reg, err := name.NewRegistry(strings.ToLower(host))
		if err != nil {
			return imageGlob{}, fmt.Errorf("%q: registry host %q is not valid: %w", text, host, err)
		}
		segs[0] = strings.ToLower(reg.RegistryStr())
	} else {
		segs[0] = strings.ToLower(host)
	}
	for _, s := range segs[1:] {
		if s != strings.ToLower(s) {
			return imageGlob{}, fmt.Errorf("%q: repository segment %q has upper-case letters, which no repository has", text, s)
		}
	}
	return imageGlob{text: text, segments: segs}, nil
}

// match reports whether ref's registry/repository matches.
func (g imageGlob) match(ref Reference) bool {
	target := append([]string{ref.Registry}, strings.Split(ref.Repository, "/")...)
	return matchSegments(g.segments, target)
}

func matchSegments(pattern, target []string) bool {
	for len(pattern) > 0 {
		p := pattern[0]
		if p == "**" {
			rest := pattern[1:]
			if len(rest) == 0 {
				return len(target) > 0
			}
			for i := 0; i <= len(target); i++ {
				if matchSegments(rest, target[i:]) {
					return true
				}
			}
			return false
		}
		if len(target) == 0 {
			return false
		}
		if ok, _ := path.Match(p, target[0]); !ok {
			return false
		}
		pattern, target = pattern[1:], target[1:]
	}
	return len(target) == 0
}
