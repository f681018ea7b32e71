package attestation_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/continuums/attest/attestation"
)

// TestParseReferenceRuntimeGrammar: a reference is judged as containerd and the kubelet read it (the
// distribution/reference grammar), so what they refuse never reaches a trust decision, and what they accept
// names the registry and repository they pull from.
func TestParseReferenceRuntimeGrammar(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		image string
		// want is the reference's Registry/Repository[:Tag][@Digest] when accepted; err a fragment of the refusal.
		want, err string
	}{
		{name: "dot-dot segment", image: "gcr.io/company/../evil/app:1", err: `image "gcr.io/company/../evil/app:1" is not a valid reference: the path segment ".." is not allowed`},
		{name: "dot segment", image: "gcr.io/company/./app", err: `the path segment "." is not allowed`},
		{name: "trailing dot-dot", image: "gcr.io/company/..", err: `the path segment ".." is not allowed`},
		{name: "hidden segment", image: "gcr.io/company/.app", err: `the path segment ".app" is not valid`},
		{name: "double dot inside", image: "gcr.io/company/a..b", err: `the path segment "a..b" is not valid`},
		{name: "triple underscore", image: "gcr.io/company/a___b", err: `the path segment "a___b" is not valid`},
		{name: "leading dash", image: "gcr.io/company/-app", err: `the path segment "-app" is not valid`},
		{name: "trailing dash", image: "gcr.io/company/app-", err: `the path segment "app-" is not valid`},
		{name: "empty segment", image: "gcr.io/company//app", err: `the repository "company//app" has an empty path segment`},
		{name: "upper-case path", image: "gcr.io/Company/app", err: `the path segment "Company" has upper-case letters`},
		{name: "upper-case docker hub name", image: "Nginx", err: `the path segment "Nginx" has upper-case letters`},
		{name: "underscore in host", image: "my_registry.io/app", err: `the registry host "my_registry.io" is not valid`},
		{name: "empty port", image: "gcr.io:/app", err: `the registry host "gcr.io:" is not valid`},
		{name: "empty tag", image: "gcr.io/company/app:", err: `the tag "" is not valid`},
		{name: "tag too long", image: "gcr.io/company/app:" + strings.Repeat("t", 129), err: "is not valid: a tag is at most 128 letters"},
		{name: "tag starting with a dot", image: "gcr.io/company/app:.1", err: `the tag ".1" is not valid`},
		{name: "short digest", image: "gcr.io/company/app@sha256:short", err: `the digest "sha256:short" is not valid`},
		{name: "upper-case digest", image: "gcr.io/company/app@sha256:" + strings.ToUpper(hex64), err: "is not valid (invalid checksum digest format)"},
		{name: "unknown digest algorithm", image: "gcr.io/company/app@md5:" + strings.Repeat("a", 32), err: "is not valid (unsupported digest algorithm)"},
		{name: "image ID", image: hex64, err: "64 hexadecimal digits are an image ID"},
		{name: "unicode", image: "gcr.io/company/äpp", err: `contains "ä"`},
		{name: "space", image: "gcr.io/company/app 1", err: `contains " "`},
		{name: "repository too long", image: "gcr.io/" + strings.Repeat("a/", 130) + "a", err: "characters long; at most 255 are allowed"},
		{name: "credentials smuggled in host", image: "gcr.io/company@evil.com/app", err: `the digest "evil.com/app" is not valid`},

		{name: "docker hub short name", image: "nginx", want: "index.docker.io/library/nginx:latest"},
		{name: "docker hub legacy host", image: "index.docker.io/nginx:1", want: "index.docker.io/library/nginx:1"},
		{name: "upper-case host", image: "GCR.IO/company/app:v1", want: "gcr.io/company/app:v1"},
		// The runtime reads an upper-case first segment as a host, not as a Docker Hub namespace.
		{name: "upper-case first segment is a host", image: "Company/app:1", want: "company/app:1"},
		{name: "one-letter repository", image: "gcr.io/a", want: "gcr.io/a:latest"},
		{name: "separators", image: "gcr.io/a__b/c---d/e.f_g:1", want: "gcr.io/a__b/c---d/e.f_g:1"},
		{name: "ipv6 host", image: "[::1]:5000/app", want: "[::1]:5000/app:latest"},
		{name: "tag and digest", image: "gcr.io/a/b:1.2@sha256:" + hex64, want: "gcr.io/a/b:1.2@sha256:" + hex64},
		{name: "sha512 digest", image: "gcr.io/a/b@sha512:" + strings.Repeat("c", 128), want: "gcr.io/a/b@sha512:" + strings.Repeat("c", 128)},
		{name: "longest tag", image: "gcr.io/a/b:" + strings.Repeat("t", 128), want: "gcr.io/a/b:" + strings.Repeat("t", 128)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := attestation.ParseReference(tc.image)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseReference(%q) = %+v, %v; want an error containing %q", tc.image, ref, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tc.image, err)
			}
			if ref.Canonical != tc.want {
				t.Fatalf("ParseReference(%q).Canonical = %q, want %q", tc.image, ref.Canonical, tc.want)
			}
		})
	}
}

// TestTrustedRegistriesRefuseTraversal is issue 13's first finding: a ".." segment does not climb out of a
// trusted prefix, because the reference does not parse at all.
func TestTrustedRegistriesRefuseTraversal(t *testing.T) {
	tr, err := attestation.NewTrustedRegistries([]string{"gcr.io/company"})
	if err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"gcr.io/company/../evil/app:1", "gcr.io/company/./app", "gcr.io/company/..", "gcr.io/company/../../x"} {
		t.Run(image, func(t *testing.T) {
			ref, err := attestation.ParseReference(image)
			if err == nil {
				entry, ok := tr.Match(ref)
				t.Fatalf("ParseReference(%q) = %+v (trusted by %q: %v); the container runtime refuses it", image, ref, entry, ok)
			}
		})
	}
}

// runtimeReading is what containerd and the kubelet make of an image string: distribution/reference's
// ParseNormalizedNamed, with "latest" when neither tag nor digest is given. ok is false when they refuse it, and
// in the one case where ATTEST is deliberately stricter: a first segment with a dot that is no valid host name
// ("my_reg.io/app"), which distribution/reference reads as a path without a host and containerd as the host.
func runtimeReading(s string) (registry, repository, tag, digest string, ok bool) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil || reference.Domain(named) == "" {
		return "", "", "", "", false
	}
	registry, repository = reference.Domain(named), reference.Path(named)
	if t, isTagged := named.(reference.Tagged); isTagged {
		tag = t.Tag()
	}
	if d, isDigested := named.(reference.Digested); isDigested {
		digest = d.Digest().String()
	}
	if tag == "" && digest == "" {
		tag = "latest"
	}
	return registry, repository, tag, digest, true
}

// agreeWithRuntime fails t unless ParseReference accepts exactly what the runtime accepts and names the same
// registry, repository, tag and digest. The two documented spellings differ only in form: hosts are lower-cased
// (DNS names are case-insensitive) and Docker Hub is written index.docker.io, as go-containerregistry and the
// policies' input write it, where distribution/reference writes docker.io.
func agreeWithRuntime(t *testing.T, s string) (accepted bool) {
	t.Helper()
	reg, repo, tag, digest, ok := runtimeReading(s)
	ref, err := attestation.ParseReference(s)
	if ok != (err == nil) {
		t.Fatalf("%q: runtime accepts = %v, ATTEST accepts = %v (%v, %+v)", s, ok, err == nil, err, ref)
	}
	if !ok {
		if !strings.Contains(err.Error(), "is not a valid reference") && s != "" {
			t.Fatalf("%q: refusal does not say it is not a valid reference: %v", s, err)
		}
		return false
	}
	reg = strings.ToLower(reg)
	if reg == "docker.io" {
		reg = "index.docker.io"
	}
	want := attestation.Reference{Registry: reg, Repository: repo, Tag: tag, Digest: digest}
	want.Canonical = reg + "/" + repo
	if tag != "" {
		want.Canonical += ":" + tag
	}
	if digest != "" {
		want.Canonical += "@" + digest
	}
	if ref != want {
		t.Fatalf("%q:\nATTEST  %+v\nruntime %+v", s, ref, want)
	}
	return true
}

// referencePieces are the parts generated references are made of: valid ones and each way a part goes wrong.
var referencePieces = struct{ hosts, segments, tags, digests []string }{
	hosts: []string{
		"gcr.io", "GCR.IO", "Gcr.Io", "localhost", "LOCALHOST", "localhost:5000", "docker.io", "index.docker.io",
		"INDEX.DOCKER.IO", "registry-1.docker.io", "127.0.0.1:5000", "10.0.0.1", "[::1]:5000", "[::1]", "[fe80::1%eth0]",
		"my_reg.io", "-bad.io", "bad-.io", "a.b.c.d", "host:", "host:port", "host:0", "host:99999999", "exa mple.com",
		"ümlaut.io", "xn--bcher-kva.example", "Foo", "foo", "UPPER:80", ":5000", "a..b.io", ".io", "io.", "1.2.3.4",
		"a-b.c-d.io:443", strings.Repeat("h", 300) + ".io",
	},
	segments: []string{
		"app", "a", "library", "team", "a.b", "a_b", "a__b", "a___b", "a-b", "a--b", "a----b", "..", ".", "", "App", "APP",
		"-a", "a-", "_a", "a_", ".a", "a.", "a..b", "a._b", "a-.b", "ünï", "a b", "0", "9lives", "a1.b2_c3--d4",
		strings.Repeat("ab", 32), strings.Repeat("s", 200), "a\x00b", "a\tb", "a%2fb", "a:b", "a@b",
	},
	tags: []string{
		"1", "latest", "v1.2.3", "_x", ".x", "-x", "X", "Ab_C-d.E", strings.Repeat("a", 128), strings.Repeat("a", 129), "",
		"tag!", "ü", "a/b", "a:b", "1.0@x",
	},
	digests: []string{
		"sha256:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("aB", 32), "sha256:" + strings.Repeat("f", 63),
		"sha256:" + strings.Repeat("f", 65), "sha256:short", "SHA256:" + strings.Repeat("0", 64), "sha512:" + strings.Repeat("1", 128),
		"sha384:" + strings.Repeat("2", 96), "sha512:" + strings.Repeat("1", 64), "md5:" + strings.Repeat("3", 32),
		"sha256+b64:" + strings.Repeat("4", 64), "sha256:", ":" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("g", 64),
	},
}

// generateReference builds a reference from pieces: an optional host, one to five path segments, an optional tag
// and an optional digest.
func generateReference(r *rand.Rand) string {
	p := referencePieces
	var b strings.Builder
	if r.IntN(3) > 0 {
		b.WriteString(p.hosts[r.IntN(len(p.hosts))])
		b.WriteByte('/')
	}
	n := 1 + r.IntN(5)
	for i := range n {
		if i > 0 {
			b.WriteByte('/')
		}
		if r.IntN(4) == 0 {
			b.WriteString(p.segments[r.IntN(len(p.segments))])
		} else {
			b.WriteString(p.segments[r.IntN(5)]) // mostly valid, so that the other parts are what decides
		}
	}
	if r.IntN(2) == 0 {
		b.WriteByte(':')
		b.WriteString(p.tags[r.IntN(len(p.tags))])
	}
	if r.IntN(3) == 0 {
		b.WriteByte('@')
		b.WriteString(p.digests[r.IntN(len(p.digests))])
	}
	return b.String()
}

// mutateReference applies one to three edits: insert, delete or replace a character from an alphabet of the
// characters references are made of (and a few they are not), or repeat a slice of the string.
func mutateReference(r *rand.Rand, s string) string {
	const alphabet = "/:@._-aZ09[]%ä \x00"
	runes := []rune(s)
	for range 1 + r.IntN(3) {
		c := []rune(alphabet)[r.IntN(len([]rune(alphabet)))]
		i := r.IntN(len(runes) + 1)
		switch r.IntN(4) {
		case 0:
			runes = append(runes[:i], append([]rune{c}, runes[i:]...)...)
		case 1:
			if i < len(runes) {
				runes = append(runes[:i], runes[i+1:]...)
			}
		case 2:
			if i < len(runes) {
				runes[i] = c
			}
		case 3:
			if i < len(runes) {
				j := i + r.IntN(len(runes)-i) + 1
				runes = append(runes[:j], append(append([]rune{}, runes[i:j]...), runes[j:]...)...)
			}
		}
	}
	return string(runes)
}

// TestParseReferenceAgreesWithRuntimeGrammar is the property behind the trust decision: for generated references
// and mutations of them, ATTEST accepts exactly what distribution/reference accepts and normalises it alike.
func TestParseReferenceAgreesWithRuntimeGrammar(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 2026))
	n := 5000 // 10,000 references; FuzzParseReference asserts the same agreement for as long as it runs
	if testing.Short() {
		n = 1000
	}
	accepted, refused := 0, 0
	for range n {
		s := generateReference(r)
		for _, c := range []string{s, mutateReference(r, s)} {
			if agreeWithRuntime(t, c) {
				accepted++
			} else {
				refused++
			}
		}
	}
	// The generator must exercise both answers, or the property says little.
	if accepted < n/10 || refused < n/10 {
		t.Fatalf("generated %d accepted and %d refused references: the generator is lopsided", accepted, refused)
	}
}
