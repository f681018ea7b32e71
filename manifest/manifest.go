// Package manifest reads Kubernetes manifests (YAML or JSON, multi-document, List kinds) from files, directories
// and stdin the way kubectl does, keeping each object's file and line for messages.
package manifest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Object is one Kubernetes object and where it was written.
type Object struct {
	File   string
	Line   int
	Object map[string]any
}

// Source is one input: a file's name and, once loaded (or for stdin), its content.
type Source struct {
	Name string
	Data []byte
	path string
}

// Load reads the file's content if it has not been read yet; files are read when they are checked, so a large
// tree is never held in memory at once.
func (s *Source) Load() error {
	if s.Data != nil || s.path == "" {
		return nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	s.Data = data
	return nil
}

// Extensions are the file types read from directories.
var Extensions = []string{".yaml", ".yml", ".json"}

// Collect resolves paths to sources: files as given, directories recursively (*.yaml, *.yml, *.json, in name
// order), "-" as stdin.
func Collect(paths []string, stdin io.Reader) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			out = append(out, Source{Name: "<stdin>", Data: data})
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

func hasExtension(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range Extensions {
		if ext == e {
			return true
		}
	}
	return false
}

// document is one YAML document of a stream and the line it starts on.
type document struct {
	line int
	data []byte
}

// split cuts a YAML stream at "---" lines, as kubectl does: a line starting with "---" followed by nothing but
// blanks or a comment.
func split(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		l := data[pos:next]
		if bytes.HasPrefix(l, []byte("---")) {
			rest := bytes.TrimSpace(l[3:])
			if len(rest) == 0 || rest[0] == '#' {
				docs = append(docs, document{line: startLine, data: data[start:pos]})
				start, startLine = next, line+1
			}
		}
		pos = next
		line++
	}
	return append(docs, document{line: startLine, data: data[start:]})
}

// Parse reads every object of one source. YAML is read with kubectl's parser and semantics (YAML 1.1, so
// `privileged: yes` is true, as the API server would receive it). Items of a List are returned one by one.
func Parse(src Source) ([]Object, error) {
	if err := src.Load(); err != nil {
		return nil, err
	}
	var out []Object
	for _, doc := range split(src.Data) {
		if len(bytes.TrimSpace(doc.data)) == 0 {
			continue
		}
		v, err := decodeYAML(doc.data)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", src.Name, doc.line, lineError(doc, err))
		}
		if v == nil {
			continue // only comments
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s:%d: the document is not an object", src.Name, firstContentLine(doc))
		}
		line := firstContentLine(doc)
		objs, err := expand(obj)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", src.Name, line, err)
		}
		for _, o := range objs {
			out = append(out, Object{File: src.Name, Line: line, Object: o})
		}
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
func lineError(doc document, err error) error {
	shifted := make([]byte, 0, doc.line-1+len(doc.data))
	shifted = append(shifted, bytes.Repeat([]byte("\n"), doc.line-1)...)
	shifted = append(shifted, doc.data...)
	if _, err2 := decodeYAML(shifted); err2 != nil {
		return err2
	}
	return err
}

// firstContentLine is the first line of the document that is neither blank nor a comment.
func firstContentLine(doc document) int {
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
