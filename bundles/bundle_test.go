package bundles_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
	"github.com/continuums/attest/policies"
)

const manifest = `{"revision": "v1", "roots": ["acme"]}`

// files is a well-formed bundle's files, changed by the options.
func files(opts ...func(map[string]string)) map[string]string {
	m := map[string]string{
		".manifest":                 manifest,
		"acme/team_label.rego":      bundlestest.TeamLabelPolicy,
		"acme/team_label_test.rego": bundlestest.TeamLabelTest,
		"data.json":                 "{}",
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func with(path, text string) func(map[string]string) {
	return func(m map[string]string) { m[path] = text }
}

func without(path string) func(map[string]string) {
	return func(m map[string]string) { delete(m, path) }
}

// entry is one tar entry for hand-made archives.
type entry struct {
	name     string
	typ      byte
	body     string
	linkname string
}

func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.linkname}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestArchiveRoundTripIsDeterministic(t *testing.T) {
	b, err := bundles.ReadDir(bundlestest.WriteDir(t, files()), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a1, err := b.Archive()
	if err != nil {
		t.Fatal(err)
	}
	// The same files written again, in another directory at another time, give the same bytes.
	b2, err := bundles.ReadDir(bundlestest.WriteDir(t, files()), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := b2.Archive()
	if err != nil {
		t.Fatal(err)
	}
	if bundles.Digest(a1) != bundles.Digest(a2) {
		t.Fatalf("digests differ: %s, %s", bundles.Digest(a1), bundles.Digest(a2))
	}
	back, err := bundles.Read(bytes.NewReader(a1), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Manifest.Revision != "v1" || len(back.Manifest.Roots) != 1 || back.Manifest.Roots[0] != "acme" {
		t.Errorf("manifest = %+v", back.Manifest)
	}
	var paths []string
	for _, f := range back.Files {
		paths = append(paths, f.Path)
	}
	if got, want := strings.Join(paths, ","), "acme/team_label.rego,acme/team_label_test.rego,data.json"; got != want {
		t.Errorf("files = %s, want %s", got, want)
	}
	if string(back.ByKind(bundles.KindRego)[0].Data) != bundlestest.TeamLabelPolicy {
		t.Error("policy text changed in the round trip")
	}
	a3, err := back.Archive()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a1, a3) {
		t.Error("archive of the read archive differs")
	}
	// A changed file changes the digest.
	b4, err := bundles.ReadDir(bundlestest.WriteDir(t, files(with("acme/team_label.rego", bundlestest.TeamLabelPolicy+"\n"))), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a4, _ := b4.Archive()
	if bundles.Digest(a4) == bundles.Digest(a1) {
		t.Error("a changed file kept the digest")
	}
	// WriteDir and ReadDir round trip too.
	out := filepath.Join(t.TempDir(), "pulled")
	if err := back.WriteDir(out); err != nil {
		t.Fatal(err)
	}
	b5, err := bundles.ReadDir(out, bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a5, _ := b5.Archive()
	if !bytes.Equal(a1, a5) {
		t.Error("WriteDir then ReadDir changed the bundle")
	}
	if err := back.WriteDir(out); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("WriteDir into a full directory: %v", err)
	}
}

func TestReadAcceptsOPAAndTarPaths(t *testing.T) {
	for _, prefix := range []string{"", "/", "./"} {
		b, err := bundles.Read(bytes.NewReader(tarGz(t,
			entry{name: prefix, typ: tar.TypeDir},
			entry{name: prefix + ".manifest", body: manifest},
			entry{name: prefix + "acme/", typ: tar.TypeDir},
			entry{name: prefix + "acme/p.rego", body: bundlestest.TeamLabelPolicy},
		)), bundles.Limits{})
		if err != nil {
			t.Fatalf("prefix %q: %v", prefix, err)
		}
		if len(b.Files) != 1 || b.Files[0].Path != "acme/p.rego" {
			t.Errorf("prefix %q: files %+v", prefix, b.Files)
		}
	}
}

func TestReadRefuses(t *testing.T) {
	m := entry{name: ".manifest", body: manifest}
	big := strings.Repeat("#", 4096)
	cases := []struct {
		name    string
		archive []byte
		limits  bundles.Limits
		want    string
	}{
		{"not gzip", []byte("plain text"), bundles.Limits{}, "not gzip"},
		{"symlink", tarGz(t, m, entry{name: "a.rego", typ: tar.TypeSymlink, linkname: "/etc/passwd"}), bundles.Limits{}, `entry "a.rego": links are refused`},
		{"hard link", tarGz(t, m, entry{name: "a.rego", typ: tar.TypeLink, linkname: ".manifest"}), bundles.Limits{}, `entry "a.rego": links are refused`},
		{"device", tarGz(t, m, entry{name: "dev", typ: tar.TypeChar}), bundles.Limits{}, `entry "dev": type "3" is refused`},
		{"parent", tarGz(t, m, entry{name: "../evil.rego", body: bundlestest.TeamLabelPolicy}), bundles.Limits{}, `entry "../evil.rego": path leaves the bundle`},
		{"absolute parent", tarGz(t, m, entry{name: "/a/../../evil.rego", body: bundlestest.TeamLabelPolicy}), bundles.Limits{}, "path leaves the bundle"},
		{"backslash", tarGz(t, m, entry{name: `..\evil.rego`, body: bundlestest.TeamLabelPolicy}), bundles.Limits{}, "backslash"},
		{"no manifest", tarGz(t, entry{name: "a.rego", body: bundlestest.TeamLabelPolicy}), bundles.Limits{}, "no .manifest"},
		{"bad manifest", tarGz(t, entry{name: ".manifest", body: `{"revision": 1}`}), bundles.Limits{}, ".manifest: not a bundle manifest"},
		{"unknown manifest key", tarGz(t, entry{name: ".manifest", body: `{"wasm": []}`}), bundles.Limits{}, `unknown field "wasm"`},
		{"overlapping roots", tarGz(t, entry{name: ".manifest", body: `{"roots": ["acme", "acme/x"]}`}), bundles.Limits{}, `roots[1]: "acme/x" overlaps roots[0] "acme"`},
		{"absolute root", tarGz(t, entry{name: ".manifest", body: `{"roots": ["/acme"]}`}), bundles.Limits{}, `roots[0]: "/acme" is not a data path`},
		{"unknown file", tarGz(t, m, entry{name: "run.sh", body: "#!/bin/sh"}), bundles.Limits{}, "run.sh: not a bundle file"},
		{"duplicate", tarGz(t, m, entry{name: "a.rego", body: bundlestest.TeamLabelPolicy}, entry{name: "./a.rego", body: ""}), bundles.Limits{}, "a.rego: the bundle holds this path twice"},
		{"bad data.json", tarGz(t, m, entry{name: "data.json", body: "[1]"}), bundles.Limits{}, "data.json: not a JSON object"},
		{"too many files", tarGz(t, m, entry{name: "a.rego", body: ""}, entry{name: "b.rego", body: ""}), bundles.Limits{MaxFiles: 2}, "more than 2 files"},
		{"uncompressed too big", tarGz(t, m, entry{name: "a.rego", body: big}), bundles.Limits{MaxBytes: 4096}, "over the 4096-byte limit"},
		{"archive too big", tarGz(t, m, entry{name: "a.rego", body: big}), bundles.Limits{MaxArchiveBytes: 64}, "archive over the 64-byte limit"},
		{"trailing data", append(tarGz(t, m), tarGz(t, m)...), bundles.Limits{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundles.Read(bytes.NewReader(tc.archive), tc.limits)
			if tc.want == "" {
				// A second gzip member is not read (Multistream off): the bundle is the first member only.
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestGzipBombStopsAtTheLimit(t *testing.T) {
	// 64 MiB of zeros compresses to about 64 KiB; the reader stops at MaxBytes without reading it all.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	const size = 64 << 20
	_ = tw.WriteHeader(&tar.Header{Name: "a.rego", Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
	zeros := make([]byte, 1<<20)
	for i := 0; i < size/len(zeros); i++ {
		_, _ = tw.Write(zeros)
	}
	_ = tw.Close()
	_ = zw.Close()
	_, err := bundles.Read(bytes.NewReader(buf.Bytes()), bundles.Limits{MaxBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "over the 1048576-byte limit") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDirRefusesSymlinks(t *testing.T) {
	dir := bundlestest.WriteDir(t, files())
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "acme", "passwd.rego")); err != nil {
		t.Fatal(err)
	}
	_, err := bundles.ReadDir(dir, bundles.Limits{})
	if err == nil || !strings.Contains(err.Error(), "passwd.rego: not a regular file (symbolic links are refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDirSkipsHiddenFiles(t *testing.T) {
	b, err := bundles.ReadDir(bundlestest.WriteDir(t, files(with(".git/config", "x"), with("acme/.team_label.rego.swp", "x"))), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != 3 {
		t.Errorf("files = %+v", b.Files)
	}
}

func TestCheck(t *testing.T) {
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	failing := strings.Replace(bundlestest.TeamLabelTest, "count(team_label.violation) == 0", "count(team_label.violation) == 2", 1)
	clash := strings.Replace(bundlestest.TeamLabelPolicy, "name: acme-team-label", "name: no-privileged", 1)
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"good", files(), ""},
		{"failing test", files(with("acme/team_label_test.rego", failing)), "1 of 2 bundle tests failed: b/acme/team_label_test.rego:11 data.acme.team_label_test.test_allows_with_label"},
		{"compile error", files(with("acme/team_label.rego", bundlestest.TeamLabelPolicy+"\nviolation contains x if { x := y }\n")), "compile: "},
		{"library name", files(with("acme/team_label.rego", clash)), "no-privileged"},
		{"outside roots", files(with(".manifest", `{"roots": ["other"]}`)), `b/acme/team_label.rego: package acme.team_label lies outside the manifest's roots ["other"]`},
		{"no tests", files(without("acme/team_label_test.rego")), "holds no Rego test"},
		{"no tests beside cedar", files(without("acme/team_label_test.rego"), with("c/pods.cedar", "forbid (principal, action, resource);")), "holds no Rego test"},
		{"no policy", files(without("acme/team_label.rego"), without("acme/team_label_test.rego")), "holds no policy"},
		{"data", files(with("data.json", `{"x": 1}`)), "data.json must be {}"},
		{"impure", files(with("acme/team_label.rego", bundlestest.TeamLabelPolicy+"\nx := time.now_ns()\n")), "time.now_ns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := bundles.ReadDir(bundlestest.WriteDir(t, tc.files), bundles.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := b.Check(context.Background(), lib, "b")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Policies) != 1 || c.Policies[0].Name != "acme-team-label" || c.Policies[0].File != "b/acme/team_label.rego" {
					t.Errorf("policies = %+v", c.Policies)
				}
				if len(c.Tests) != 2 {
					t.Errorf("tests = %+v", c.Tests)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if tc.name == "failing test" {
				var tf *bundles.TestFailure
				if !errors.As(err, &tf) || len(tf.Failed) != 1 || tf.Total != 2 {
					t.Errorf("err = %#v", err)
				}
			}
		})
	}
}
