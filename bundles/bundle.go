// Package bundles reads, writes and checks policy bundles: OPA's bundle format (a gzipped tar with a `.manifest`,
// Rego policies with METADATA, their `_test.rego` files and an optional data.json), which may also carry
// Gatekeeper YAML and Cedar files. One format for files and registries; the registry side (push, pull, verify
// through attestation's trust machinery) is in oci.go.
package bundles

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ManifestFile is the bundle's manifest path, as OPA names it.
const ManifestFile = ".manifest"

// Manifest is OPA's `.manifest`: the bundle's revision and the data roots its packages live under. Other keys
// OPA defines (wasm, rego_version) are refused rather than ignored: a bundle must mean one thing.
type Manifest struct {
	Revision string         `json:"revision,omitempty"`
	Roots    []string       `json:"roots,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Kind is what a bundle file is, judged by its name.
type Kind string

// The kinds of file a bundle holds.
const (
	KindRego       Kind = "rego"
	KindRegoTest   Kind = "rego-test"
	KindData       Kind = "data"
	KindGatekeeper Kind = "yaml"
	KindCedar      Kind = "cedar"
)

// File is one file of a bundle, by its slash-separated path relative to the bundle root.
type File struct {
	Path string
	Data []byte
}

// Kind classifies the file by its name; ok is false for a file a bundle may not hold.
func (f File) Kind() (Kind, bool) {
	base := path.Base(f.Path)
	switch {
	case strings.HasSuffix(base, "_test.rego"):
		return KindRegoTest, true
	case strings.HasSuffix(base, ".rego"):
		return KindRego, true
	case base == "data.json":
		return KindData, true
	case strings.HasSuffix(base, ".yaml"), strings.HasSuffix(base, ".yml"):
		return KindGatekeeper, true
	case strings.HasSuffix(base, ".cedar"):
		return KindCedar, true
	}
	return "", false
}

// Bundle is a policy bundle in memory: its manifest and its files in path order (the manifest not among them).
type Bundle struct {
	Manifest Manifest
	Files    []File
}

// newBundle checks the files' names and kinds, decodes the manifest and data files, and sorts the files.
func newBundle(files []File) (*Bundle, error) {
	b := &Bundle{}
	seen := map[string]bool{}
	var haveManifest bool
	for _, f := range files {
		if seen[f.Path] {
			return nil, fmt.Errorf("%s: the bundle holds this path twice", f.Path)
		}
		seen[f.Path] = true
		if f.Path == ManifestFile {
			m, err := parseManifest(f.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ManifestFile, err)
			}
			b.Manifest, haveManifest = m, true
			continue
		}
		kind, ok := f.Kind()
		if !ok {
			return nil, fmt.Errorf("%s: not a bundle file (a bundle holds .rego, _test.rego, data.json, Gatekeeper .yaml and .cedar files, and .manifest)", f.Path)
		}
		if kind == KindData {
			var v map[string]any
			if err := json.Unmarshal(f.Data, &v); err != nil {
				return nil, fmt.Errorf("%s: not a JSON object: %w", f.Path, err)
			}
		}
		b.Files = append(b.Files, f)
	}
	if !haveManifest {
		return nil, fmt.Errorf("no %s: a bundle names its revision and roots there (write {\"revision\": \"…\", \"roots\": [\"…\"]})", ManifestFile)
	}
	slices.SortFunc(b.Files, func(x, y File) int { return strings.Compare(x.Path, y.Path) })
	return b, nil
}

// parseManifest decodes `.manifest` strictly.
func parseManifest(data []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("not a bundle manifest (keys revision, roots, metadata): %w", err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("trailing data after the manifest object")
	}
	for i, r := range m.Roots {
		if r == "" || strings.HasPrefix(r, "/") || strings.HasSuffix(r, "/") || strings.Contains(r, "//") {
			return Manifest{}, fmt.Errorf("roots[%d]: %q is not a data path (slash-separated, e.g. \"acme/policies\")", i, r)
		}
		for j, o := range m.Roots[:i] {
			if r == o || strings.HasPrefix(r, o+"/") || strings.HasPrefix(o, r+"/") {
				return Manifest{}, fmt.Errorf("roots[%d]: %q overlaps roots[%d] %q", i, r, j, o)
			}
		}
	}
	return m, nil
}

// manifestJSON is the manifest as the bundle stores it: encoding/json's output (map keys sorted), one line.
func (b *Bundle) manifestJSON() ([]byte, error) {
	data, err := json.Marshal(b.Manifest)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ManifestFile, err)
	}
	return append(data, '\n'), nil
}

// ByKind returns the bundle's files of one kind, in path order.
func (b *Bundle) ByKind(k Kind) []File {
	var out []File
	for _, f := range b.Files {
		if got, _ := f.Kind(); got == k {
			out = append(out, f)
		}
	}
	return out
}
