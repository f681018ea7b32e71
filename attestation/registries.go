package attestation

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// TrustedRegistries matches parsed references against registry and registry/repository prefixes on whole path
// segments: "gcr.io/company" trusts gcr.io/company/app, never gcr.io/company-evil/app or gcr.io.evil.com/company.
// It is built once per configuration, so admission pays for a few string comparisons only.
type TrustedRegistries struct {
	prefixes []prefix
}

type prefix struct {
	entry string // as configured, for messages
	name  string // normalised: "index.docker.io/library"
}

// NewTrustedRegistries parses each entry as a registry host (lower-cased; docker.io is index.docker.io), optionally
// followed by a repository path; a trailing "/" changes nothing. The error names the entry's index.
func NewTrustedRegistries(entries []string) (*TrustedRegistries, error) {
	t := &TrustedRegistries{}
	for i, e := range entries {
		n, err := normaliseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		t.prefixes = append(t.prefixes, prefix{entry: e, name: n})
	}
	return t, nil
}

func normaliseEntry(entry string) (string, error) {
	trimmed := strings.TrimRight(entry, "/")
	host, path, _ := strings.Cut(trimmed, "/")
	if host == "" {
		return "", fmt.Errorf("%q does not start with a registry host", entry)
	}
	reg, err := name.NewRegistry(strings.ToLower(host))
	if err != nil {
		return "", fmt.Errorf("%q: registry host %q is not valid: %w", entry, host, err)
	}
	if !grammar().host.MatchString(host) {
		return "", fmt.Errorf("%q: registry host %q is not valid: container runtimes refuse it", entry, host)
	}
	out := strings.ToLower(reg.RegistryStr())
	if path == "" {
		return out, nil
	}
	// The path is judged as the runtime judges a repository: lower-case components, no "." or "..", no empty one.
	if why := repositoryProblem(path); why != "" {
		return "", fmt.Errorf("%q: repository path %q is not valid: %s", entry, path, why)
	}
	if _, err := reference.WithName(out + "/" + path); err != nil {
		return "", fmt.Errorf("%q: repository path %q is not valid: %w", entry, path, err)
	}
	return out + "/" + path, nil
}

// Match returns the configured entry that trusts ref, if any.
func (t *TrustedRegistries) Match(ref Reference) (string, bool) {
	if t == nil {
		return "", false
	}
	full := ref.Registry + "/" + ref.Repository
	for _, p := range t.prefixes {
		if full == p.name || (strings.HasPrefix(full, p.name) && full[len(p.name)] == '/') {
			return p.entry, true
		}
	}
	return "", false
}

// Len is the number of entries.
func (t *TrustedRegistries) Len() int {
	if t == nil {
		return 0
	}
	return len(t.prefixes)
}
