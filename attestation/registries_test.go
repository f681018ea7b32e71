package attestation_test

import (
	"strings"
	"testing"

	"github.com/continuums/attest/attestation"
)

func TestTrustedRegistriesMatch(t *testing.T) {
	tr, err := attestation.NewTrustedRegistries([]string{"gcr.io/company", "docker.io/library", "localhost:5000", "Registry.Company.com/team/", "quay.io/"})
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("0", 64)
	cases := []struct {
		image string
		entry string // "" means untrusted
	}{
		{"gcr.io/company/app", "gcr.io/company"},
		{"gcr.io/company", "gcr.io/company"},
		{"gcr.io/company/a/b/c:1", "gcr.io/company"},
		{"gcr.io/company-evil/app", ""},
		{"gcr.io.evil.com/company/app", ""},
		{"gcr.io/other", ""},
		{"nginx", "docker.io/library"},
		{"library/nginx:1", "docker.io/library"},
		{"docker.io/nginx@" + digest, "docker.io/library"},
		{"evil/nginx", ""},
		{"localhost:5000/x", "localhost:5000"},
		{"localhost:50000/x", ""},
		{"LOCALHOST:5000/x", "localhost:5000"},
		{"registry.company.com/team/app", "Registry.Company.com/team/"},
		{"registry.company.com/team-b/app", ""},
		{"registry.company.com/app", ""},
		{"quay.io/anyone/anything", "quay.io/"},
		{"quay.io.evil/x", ""},
	}
	for _, tc := range cases {
		t.Run(tc.image, func(t *testing.T) {
			ref, err := attestation.ParseReference(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			entry, ok := tr.Match(ref)
			if ok != (tc.entry != "") || entry != tc.entry {
				t.Fatalf("Match = %q, %v; want %q", entry, ok, tc.entry)
			}
		})
	}
}

func TestTrustedRegistriesRejectsBadEntries(t *testing.T) {
	cases := map[string]string{
		"empty":          `[0]: "" does not start with a registry host`,
		"/team":          `[0]: "/team" does not start with a registry host`,
		"gcr.io/Company": `[0]: "gcr.io/Company": repository path "Company" is not valid`,
		"gcr.io//team":   `[0]: "gcr.io//team": repository path "/team"`,
		"gcr io/x":       `[0]: "gcr io/x": registry host "gcr io" is not valid`,
		"gcr.io/a/../b":  `[0]: "gcr.io/a/../b": repository path "a/../b" is not valid: the path segment ".." is not allowed`,
		"my_reg.io/team": `[0]: "my_reg.io/team": registry host "my_reg.io" is not valid: container runtimes refuse it`,
	}
	for entry, want := range cases {
		t.Run(entry, func(t *testing.T) {
			if entry == "empty" {
				entry = ""
			}
			_, err := attestation.NewTrustedRegistries([]string{entry})
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v, want prefix %q", err, want)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		in                                     string
		canonical, registry, repo, tag, digest string
		err                                    string
	}{
		{in: "nginx", canonical: "index.docker.io/library/nginx:latest", registry: "index.docker.io", repo: "library/nginx", tag: "latest"},
		{in: "GCR.IO/company/app:v1", canonical: "gcr.io/company/app:v1", registry: "gcr.io", repo: "company/app", tag: "v1"},
		{in: "localhost:5000/x", canonical: "localhost:5000/x:latest", registry: "localhost:5000", repo: "x", tag: "latest"},
		{in: "gcr.io/a/b@" + digest, canonical: "gcr.io/a/b@" + digest, registry: "gcr.io", repo: "a/b", digest: digest},
		{in: "gcr.io/a/b:1.2@" + digest, canonical: "gcr.io/a/b:1.2@" + digest, registry: "gcr.io", repo: "a/b", tag: "1.2", digest: digest},
		{in: "", err: "image reference is empty"},
		{in: "gcr.io/A/b", err: `image "gcr.io/A/b" is not a valid reference`},
		{in: "a//b", err: `repository "a//b" has an empty path segment`},
		{in: "gcr.io/a/b@sha256:short", err: "is not a valid reference"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			ref, err := attestation.ParseReference(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := attestation.Reference{Canonical: tc.canonical, Registry: tc.registry, Repository: tc.repo, Tag: tc.tag, Digest: tc.digest}
			if ref != want {
				t.Fatalf("got %+v\nwant %+v", ref, want)
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"nginx", "gcr.io/a/b:1", "localhost:5000/x@sha256:" + strings.Repeat("a", 64), "a//b", "GCR.IO/x", ":", "@", "a:b:c",
		"gcr.io/company/../evil/app:1", "gcr.io/company/./app", "Company/app", "my_reg.io/x", "[::1]:5000/x", "gcr.io/a@sha512:" + strings.Repeat("b", 128),
		strings.Repeat("c", 64), "gcr.io/a___b", "INDEX.DOCKER.IO/x"} {
		f.Add(s)
	}
	tr, err := attestation.NewTrustedRegistries([]string{"gcr.io/company", "docker.io/library"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// What the container runtime refuses is refused, and what it accepts names what it pulls.
		agreeWithRuntime(t, s)
		ref, err := attestation.ParseReference(s)
		if err != nil {
			return
		}
		if ref.Registry == "" || ref.Repository == "" || ref.Registry != strings.ToLower(ref.Registry) {
			t.Fatalf("incomplete or unnormalised reference %+v from %q", ref, s)
		}
		if entry, ok := tr.Match(ref); ok {
			full := ref.Registry + "/" + ref.Repository
			if !strings.HasPrefix(full, "gcr.io/company/") && full != "gcr.io/company" && !strings.HasPrefix(full, "index.docker.io/library/") {
				t.Fatalf("%q matched %q outside its segments (%s)", s, entry, full)
			}
		}
	})
}
