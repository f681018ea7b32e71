// Package manifest reads Kubernetes manifests (YAML or JSON, multi-document, List kinds) from files, directories
// and stdin the way kubectl does, keeping each object's file and line for messages.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Object is one Kubernetes object and where it was written.
type Object struct {
	File   string
	Line   int
	Object map[string]any
}

// Source is one input: a file, an in-memory content (Data), or a stream read once (stdin).
type Source struct {
	Name   string
	Data   []byte
	path   string
	stream io.Reader
	// spooled: path is Rereadable's copy of a stream.
	spooled bool
}

// SpooledStream is the path of Rereadable's copy of the stream (stdin) this source was, if it was one.
func (s Source) SpooledStream() (string, bool) { return s.path, s.spooled }

// Open returns the source's content as a reader; a stream (stdin) can be read only once.
func (s *Source) Open() (io.ReadCloser, error) {
	switch {
	case s.Data != nil:
		return io.NopCloser(bytes.NewReader(s.Data)), nil
	case s.stream != nil:
		r := s.stream
		s.stream = nil
		return io.NopCloser(r), nil
	case s.path != "":
		return os.Open(s.path)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// Extensions are the file types read from directories.
var Extensions = []string{".yaml", ".yml", ".json"}

// Collect resolves paths to sources: files as given, directories recursively (*.yaml, *.yml, *.json, in name
// order), "-" as stdin. Nothing is read yet: each source is streamed when it is used.
func Collect(paths []string, stdin io.Reader) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		if p == "-" {
			if stdin == nil {
				stdin = bytes.NewReader(nil)
			}
			out = append(out, Source{Name: "<stdin>", stream: stdin})
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, Source{Name: p, path: p})
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && hasExtension(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			out = append(out, Source{Name: f, path: f})
		}
	}
	return out, nil
}

// Rereadable makes every source readable more than once, for a caller that reads the inputs twice (PolicyExceptions
// first, then the objects they apply to): stdin is copied to a temporary file in dir (the system's when empty), so
// memory stays flat however long the stream is. cleanup removes the copy.
func Rereadable(sources []Source, dir string) (out []Source, cleanup func(), err error) {
	out = slices.Clone(sources)
	var spooled []string
	cleanup = func() {
		for _, p := range spooled {
			_ = os.Remove(p)
		}
	}
	for i := range out {
		if out[i].stream == nil {
			continue
		}
		f, err := os.CreateTemp(dir, "attest-stdin-*.yaml")
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("copy stdin: %w", err)
		}
		spooled = append(spooled, f.Name())
		_, err = io.Copy(f, out[i].stream)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("copy stdin: %w", err)
		}
		out[i].stream, out[i].path, out[i].spooled = nil, f.Name(), true
	}
	return out, cleanup, nil
}

func hasExtension(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range Extensions {
		if ext == e {
			return true
		}
	}
	return false
}

// Document is one YAML document of a source, not yet parsed, and the line it starts on.
type Document struct {
	File string
	line int
	data []byte
}

// Mentions reports whether the document's text may spell s once decoded, so a caller can skip parsing documents
// that cannot be what it looks for: it contains s, or an escape or tag that could spell it.
func (d Document) Mentions(s []byte) bool { return d.mayBeSpelled() || bytes.Contains(d.data, s) }

// mayBeSpelled: "\u0050olicy" (JSON, double-quoted YAML) and "!!binary UG9saWN5" decode to text not written as such.
func (d Document) mayBeSpelled() bool { return bytes.ContainsAny(d.data, `\!`) }

// MayHold reports whether the document can decode to an object of the kind (or a List holding one), so a caller
// parses only those: false only when the name appears nowhere as a word of its own ("imagePullPolicy" is not
// "Policy") and no escape or tag could spell it.
func (d Document) MayHold(kind string) bool {
	if d.mayBeSpelled() {
		return true
	}
	for at := 0; ; {
		i := bytes.Index(d.data[at:], []byte(kind))
		if i < 0 {
			return false
		}
		start, end := at+i, at+i+len(kind)
		if (start == 0 || !isWordByte(d.data[start-1])) && (end == len(d.data) || !isWordByte(d.data[end])) {
			return true
		}
		at = start + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// Size is the document's length in bytes.
func (d Document) Size() int { return len(d.data) }

// Line is the line of its source the document starts on (1-based).
func (d Document) Line() int { return d.line }

// Bytes is the document's text, not copied: a caller that places positions inside it (a compiler's line in an
// embedded Rego block) needs the text as written.
func (d Document) Bytes() []byte { return d.data }

// readers are the line readers of Documents, reused: a tree of ten thousand small files would otherwise allocate
// a 64 KiB buffer per file.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// Documents streams the documents of a source, cut at "---" lines as kubectl does (a line starting with "---"
// followed by nothing but blanks or a comment): only one document is held at a time, however long the stream.
func Documents(src Source) iter.Seq2[Document, error] {
	return func(yield func(Document, error) bool) {
		rc, err := src.Open()
		if err != nil {
			yield(Document{File: src.Name}, err)
			return
		}
		defer func() { _ = rc.Close() }() // read only: a close error loses nothing
		r := readers.Get().(*bufio.Reader)
		r.Reset(rc)
		defer func() { r.Reset(nil); readers.Put(r) }()
		var (
			cur       []byte
			long      []byte // a line longer than the reader's buffer, put together
			startLine = 1
			line      = 1
		)
		for {
			l, err := r.ReadSlice('\n')
			for errors.Is(err, bufio.ErrBufferFull) {
				long = append(long[:0], l...)
				l, err = r.ReadSlice('\n')
				l = append(long, l...)
			}
			if isSeparator(l) {
				if !yield(Document{File: src.Name, line: startLine, data: cur}, nil) {
					return
				}
				cur, startLine = nil, line+1
			} else {
				cur = append(cur, l...)
			}
			line++
			switch {
			case err == nil:
				continue
			case errors.Is(err, io.EOF):
				yield(Document{File: src.Name, line: startLine, data: cur}, nil)
			default:
				yield(Document{File: src.Name, line: startLine}, fmt.Errorf("read %s: %w", src.Name, err))
			}
			return
		}
	}
}

// isSeparator reports whether a line is a document separator.
func isSeparator(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(l[3:])
	return len(rest) == 0 || rest[0] == '#'
}

// Objects parses the document. YAML is read with kubectl's parser and semantics (YAML 1.1, so `privileged: yes`
// is true, as the API server would receive it). Items of a List are returned one by one; a document of only
// comments has none. Errors name the file and line.
func (d Document) Objects() ([]Object, error) {
	if len(bytes.TrimSpace(d.data)) == 0 {
		return nil, nil
	}
	v, err := decodeYAML(d.data)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", d.File, d.line, lineError(d, err))
	}
	if v == nil {
		return nil, nil // only comments
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s:%d: the document is not an object", d.File, firstContentLine(d))
	}
	line := firstContentLine(d)
	objs, err := expand(obj)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", d.File, line, err)
	}
	out := make([]Object, 0, len(objs))
	for _, o := range objs {
		out = append(out, Object{File: d.File, Line: line, Object: o})
	}
	return out, nil
}

// Parse reads every object of one source (see Documents and Document.Objects); for sources too large to hold,
// range over Documents instead.
func Parse(src Source) ([]Object, error) {
	var out []Object
	for doc, err := range Documents(src) {
		if err != nil {
			return nil, err
		}
		objs, err := doc.Objects()
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// expand checks apiVersion and kind and unpacks lists: like kubectl, any *List kind with an items field, whatever
// its apiVersion (`kubectl get -o yaml` writes v1 List; typed lists such as apps/v1 DeploymentList exist too).
func expand(obj map[string]any) ([]map[string]any, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		return nil, fmt.Errorf("the object has no apiVersion or kind")
	}
	if _, hasItems := obj["items"]; !strings.HasSuffix(kind, "List") || (!hasItems && apiVersion != "v1") {
		return []map[string]any{obj}, nil
	}
	items, ok := obj["items"].([]any)
	if !ok {
		if obj["items"] == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("%s.items: expected a list", kind)
	}
	var out []map[string]any
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s.items[%d]: expected an object", kind, i)
		}
		sub, err := expand(m)
		if err != nil {
			return nil, fmt.Errorf("%s.items[%d]: %w", kind, i, err)
		}
		out = append(out, sub...)
	}
	return out, nil
}

// lineError re-parses a failed document shifted to its place in the file, so the YAML error's line number is
// the file's line, not the document's. Only failures pay for this.
func lineError(doc Document, err error) error {
	shifted := make([]byte, 0, doc.line-1+len(doc.data))
	shifted = append(shifted, bytes.Repeat([]byte("\n"), doc.line-1)...)
	shifted = append(shifted, doc.data...)
	if _, err2 := decodeYAML(shifted); err2 != nil {
		return err2
	}
	return err
}

// firstContentLine is the first line of the document that is neither blank nor a comment.
func firstContentLine(doc Document) int {
	line := doc.line
	for _, l := range bytes.Split(doc.data, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return line
		}
		line++
	}
	return doc.line
}
