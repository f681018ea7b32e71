package attestation

import (
	"strings"
	"testing"
)

func TestImageGlobMatch(t *testing.T) {
	cases := []struct {
		glob  string
		image string
		want  bool
	}{
		{"registry.company.com/**", "registry.company.com/app", true},
		{"registry.company.com/**", "registry.company.com/a/b/c:v1", true},
		{"registry.company.com/**", "REGISTRY.company.com/a", true},
		{"registry.company.com/**", "registry.company.com.evil.io/a", false},
		{"registry.company.com/**", "evil.io/registry.company.com/a", false},
		{"gcr.io/company/*", "gcr.io/company/app", true},
		{"gcr.io/company/*", "gcr.io/company/team/app", false},
		{"gcr.io/company/*", "gcr.io/company-evil/app", false},
		{"gcr.io/company/*", "gcr.io.evil.com/company/app", false},
		{"gcr.io/company/**/prod", "gcr.io/company/prod", true},
		{"gcr.io/company/**/prod", "gcr.io/company/a/b/prod", true},
		{"gcr.io/company/**/prod", "gcr.io/company/a/b/prod/x", false},
		{"gcr.io/company/app-*", "gcr.io/company/app-web", true},
		{"gcr.io/company/app-*", "gcr.io/company/web", false},
		{"docker.io/library/*", "nginx", true},
		{"index.docker.io/library/*", "docker.io/library/nginx:1", true},
		{"docker.io/library/*", "evil/nginx", false},
		{"*.company.com/**", "eu.company.com/app", true},
		{"*.company.com/**", "company.com/app", false},
		{"**", "anything.io/at/all", true},
		{"localhost:5000/*", "localhost:5000/app", true},
		{"localhost:5000/*", "localhost:50000/app", false},
		{"127.0.0.1:5000/**", "127.0.0.1:5000/a/b", true},
	}
	for _, tc := range cases {
		t.Run(tc.glob+" "+tc.image, func(t *testing.T) {
			g, err := compileImageGlob(tc.glob)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := ParseReference(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.match(ref); got != tc.want {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestImageGlobErrors(t *testing.T) {
	cases := map[string]string{
		"":                      "empty glob",
		"nginx":                 `"nginx" must start with a registry host`,
		"library/nginx":         `"library/nginx" must start with a registry host`,
		"gcr.io//app":           "empty path segment",
		"gcr.io/a**":            `"**" must be a whole path segment`,
		"gcr.io/[":              "is not a valid pattern",
		"gcr.io/app:v1":         "remove the tag",
		"gcr.io/app@sha256:abc": "remove the digest",
		"gcr.io/App":            "upper-case",
		"gcr io/app":            "must start with a registry host",
		"gcr:io/app":            "registry host \"gcr:io\" is not valid",
	}
	for glob, want := range cases {
		t.Run(glob, func(t *testing.T) {
			_, err := compileImageGlob(glob)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
}

func FuzzImageGlob(f *testing.F) {
	for _, s := range []string{"gcr.io/company/app", "gcr.io/company-evil/app", "gcr.io.evil.com/company/x", "GCR.IO/company/a/b"} {
		f.Add(s)
	}
	g, err := compileImageGlob("gcr.io/company/*")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			return
		}
		if g.match(ref) && (ref.Registry != "gcr.io" || !strings.HasPrefix(ref.Repository, "company/") || strings.Count(ref.Repository, "/") != 1) {
			t.Fatalf("%q (%+v) matched gcr.io/company/*", s, ref)
		}
	})
}
