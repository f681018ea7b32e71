package bundles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Limits bound what reading a bundle may cost: a bundle comes from a registry or a file someone else wrote.
type Limits struct {
	// MaxArchiveBytes caps the compressed archive.
	MaxArchiveBytes int64
	// MaxBytes caps the files' total uncompressed size (a gzip bomb stops here).
	MaxBytes int64
	// MaxFiles caps the number of files.
	MaxFiles int
}

// DefaultLimits are generous for policies (the whole embedded library is under 200 KiB) and small for memory.
var DefaultLimits = Limits{MaxArchiveBytes: 8 << 20, MaxBytes: 32 << 20, MaxFiles: 4096}

// MediaType is the layer media type OPA reads a bundle from in an OCI registry.
const MediaType = "application/vnd.oci.image.layer.v1.tar+gzip"

// Read reads a gzipped tar bundle. Entries must be regular files or directories with clean relative paths:
// symbolic and hard links, devices, absolute paths and ".." are refused, as is anything past the limits.
func Read(r io.Reader, l Limits) (*Bundle, error) {
	l = l.orDefault()
	counted := &limitReader{r: r, n: l.MaxArchiveBytes, limit: l.MaxArchiveBytes, what: "archive"}
	zr, err := gzip.NewReader(counted)
	if err != nil {
		return nil, fmt.Errorf("read bundle: not gzip: %w", err)
	}
	zr.Multistream(false)
	total := &limitReader{r: zr, n: l.MaxBytes, limit: l.MaxBytes, what: "uncompressed bundle"}
	tr := tar.NewReader(total)
	var files []File
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read bundle: %w", err)
		}
		name, err := entryPath(h.Name)
		if err != nil {
			return nil, fmt.Errorf("read bundle: entry %q: %w", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			return nil, fmt.Errorf("read bundle: entry %q: links are refused (a bundle holds regular files only)", h.Name)
		default:
			return nil, fmt.Errorf("read bundle: entry %q: type %q is refused (a bundle holds regular files only)", h.Name, string(h.Typeflag))
		}
		if name == "" {
			continue // "/" or "./": the root directory
		}
		if len(files) >= l.MaxFiles {
			return nil, fmt.Errorf("read bundle: more than %d files", l.MaxFiles)
		}
		if h.Size > l.MaxBytes {
			return nil, fmt.Errorf("read bundle: %s: %d bytes, over the %d-byte limit", name, h.Size, l.MaxBytes)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read bundle: %s: %w", name, err)
		}
		files = append(files, File{Path: name, Data: data})
	}
	// Nothing may follow the tar's end: what a reader skips, another might read.
	if _, err := io.Copy(io.Discard, total); err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	b, err := newBundle(files)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	return b, nil
}

// entryPath cleans a tar entry name to a relative slash path ("" for the root), refusing escapes.
func entryPath(name string) (string, error) {
	if strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("backslash or NUL in path")
	}
	// OPA writes "/policy.rego"; tar tools write "./policy.rego". Both mean the bundle root.
	rel := strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/")
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("path leaves the bundle")
		}
	}
	clean := path.Clean("/" + rel)
	return strings.TrimPrefix(clean, "/"), nil
}

// limitReader fails, rather than truncates, past n bytes.
type limitReader struct {
	r     io.Reader
	n     int64
	limit int64
	what  string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, l.over()
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return 0, l.over()
	}
	return n, err
}

func (l *limitReader) over() error {
	return fmt.Errorf("%s over the %d-byte limit", l.what, l.limit)
}

func (l Limits) orDefault() Limits {
	if l.MaxArchiveBytes <= 0 {
		l.MaxArchiveBytes = DefaultLimits.MaxArchiveBytes
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	return l
}

// ReadDir reads a bundle from a directory tree. Symbolic links and other non-regular files are refused;
// hidden files and directories (".git", editor files) other than .manifest are skipped: a checkout has them.
func ReadDir(dir string, l Limits) (*Bundle, error) {
	l = l.orDefault()
	var files []File
	var total int64
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", dir, err)
	}
	defer func() { _ = root.Close() }()
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") && p != ManifestFile {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (symbolic links are refused: a bundle holds its files)", filepath.Join(dir, filepath.FromSlash(p)))
		}
		if len(files) >= l.MaxFiles {
			return fmt.Errorf("more than %d files", l.MaxFiles)
		}
		data, err := fs.ReadFile(root.FS(), p)
		if err != nil {
			return err
		}
		if total += int64(len(data)); total > l.MaxBytes {
			return fmt.Errorf("files over the %d-byte limit", l.MaxBytes)
		}
		files = append(files, File{Path: p, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", dir, err)
	}
	b, err := newBundle(files)
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", dir, err)
	}
	return b, nil
}

// Open reads a bundle from a directory or a .tar.gz file.
func Open(p string, l Limits) (*Bundle, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	if info.IsDir() {
		return ReadDir(p, l)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := Read(f, l)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// Archive writes the bundle as a gzipped tar, deterministically: entries in path order (.manifest first), fixed
// modes, owners and times, no gzip name or time. The same bundle always gives the same bytes, so the same digest.
func (b *Bundle) Archive() ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	tw := tar.NewWriter(zw)
	manifest, err := b.manifestJSON()
	if err != nil {
		return nil, err
	}
	entries := append([]File{{Path: ManifestFile, Data: manifest}}, b.Files...)
	for _, f := range entries {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: "/" + f.Path, Mode: 0o644, Size: int64(len(f.Data)),
			ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write bundle: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("write bundle: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// Digest is the "sha256:<hex>" of an archive's bytes.
func Digest(archive []byte) string {
	sum := sha256.Sum256(archive)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// WriteDir writes the bundle's files (and its .manifest) under dir, which must not exist or be empty.
func (b *Bundle) WriteDir(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("write bundle: %s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	defer func() { _ = root.Close() }()
	manifest, err := b.manifestJSON()
	if err != nil {
		return err
	}
	for _, f := range append([]File{{Path: ManifestFile, Data: manifest}}, b.Files...) {
		if d := path.Dir(f.Path); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("write bundle: %s: %w", f.Path, err)
			}
		}
		if err := root.WriteFile(f.Path, f.Data, 0o644); err != nil {
			return fmt.Errorf("write bundle: %s: %w", f.Path, err)
		}
	}
	return nil
}
