package bundles_test

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
)

// FuzzRead: whatever the archive, Read returns a bundle or an error, within its limits; a bundle it returns has
// clean relative paths and archives to bytes it reads back as the same bundle.
func FuzzRead(f *testing.F) {
	f.Add(tarGz(f, entry{name: ".manifest", body: manifest}, entry{name: "acme/p.rego", body: bundlestest.TeamLabelPolicy}))
	f.Add(tarGz(f, entry{name: "/.manifest", body: `{}`}, entry{name: "../x.rego", body: "x"}))
	f.Add(tarGz(f, entry{name: ".manifest", body: `{}`}, entry{name: "l.rego", typ: tar.TypeSymlink, linkname: "/etc"}))
	f.Add([]byte{0x1f, 0x8b})
	limits := bundles.Limits{MaxArchiveBytes: 1 << 16, MaxBytes: 1 << 18, MaxFiles: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundles.Read(bytes.NewReader(data), limits)
		if err != nil {
			return
		}
		var total int
		for _, file := range b.Files {
			if file.Path == "" || file.Path[0] == '/' || bytes.Contains([]byte("/"+file.Path+"/"), []byte("/../")) {
				t.Fatalf("unclean path %q", file.Path)
			}
			total += len(file.Data)
		}
		if total > int(limits.MaxBytes) || len(b.Files) >= limits.MaxFiles {
			t.Fatalf("limits passed: %d bytes, %d files", total, len(b.Files))
		}
		a, err := b.Archive()
		if err != nil {
			t.Fatal(err)
		}
		back, err := bundles.Read(bytes.NewReader(a), bundles.Limits{})
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		a2, err := back.Archive()
		if err != nil || !bytes.Equal(a, a2) {
			t.Fatalf("archive not stable: %v", err)
		}
	})
}
