package manifest_test

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/continuums/attest/manifest"
)

// errPrefix is how every Parse error of an in-memory source starts: its name and a line.
var errPrefix = regexp.MustCompile(`^fuzz\.yaml:([0-9]+): `)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"---\n",
		"# only a comment\n",
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
		"apiVersion: v1\nkind: Pod\n---\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 3\n",
		"--- # c\n# comment\n\napiVersion: v1\nkind: Pod\nspec:\n  privileged: yes\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n- apiVersion: v1\n  kind: List\n  items: []\n",
		"apiVersion: v1\nkind: DeploymentList\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n",
		"apiVersion: v1\nkind: List\nitems: 3\n",
		"apiVersion: v1\nkind: List\nitems:\n- 1\n",
		`{"apiVersion": "v1", "kind": "Pod", "spec": {"n": 1, "f": 1.5}}`,
		`[{"apiVersion": "v1", "kind": "Pod"}]`,
		"{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Pod\"\n}\n",
		"apiVersion: v1\nkind: [Pod\n",
		"apiVersion: v1\nkind: Pod\n---\nmetadata:\n  name: a\n   bad: x\n",
		"- a\n- b\n",
		"just text",
		"null\n---\n~\n",
		"apiVersion: v1\nkind: ConfigMap\ndata:\n  base: &b {a: x}\n  copy: *b\n  merged:\n    <<: *b\n",
		"apiVersion: v1\nkind: Pod\nx:\n  ? [a, b]\n  : 1\n",
		"apiVersion: v1\nkind: Pod\nx:\n  ~: 1\n  1.5: 2\n  y: 3\n",
		"apiVersion: v1\r\nkind: Pod\r\n---\r\napiVersion: v1\r\nkind: Pod\r\n",
		"apiVersion: 1\nkind: true\n",
		"apiVersion: v1\nkind: Pod\nbig: 18446744073709551615\nx: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := manifest.Parse(manifest.Source{Name: "fuzz.yaml", Data: data})
		lines := bytes.Count(data, []byte("\n")) + 1
		if err != nil {
			m := errPrefix.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error %q does not start with fuzz.yaml:LINE:", err)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
				t.Fatalf("error %q: line %d is outside the input's lines 1..%d", err, n, lines)
			}
			if objs != nil {
				t.Fatalf("Parse returned %d objects with its error", len(objs))
			}
			return
		}
		for i, o := range objs {
			if o.File != "fuzz.yaml" {
				t.Errorf("object %d: File %q, want fuzz.yaml", i, o.File)
			}
			if o.Line < 1 || o.Line > lines {
				t.Errorf("object %d: Line %d is outside the input's lines 1..%d", i, o.Line, lines)
			}
			apiVersion, ok := o.Object["apiVersion"].(string)
			if !ok || apiVersion == "" {
				t.Errorf("object %d: apiVersion %#v, want a non-empty string", i, o.Object["apiVersion"])
			}
			kind, ok := o.Object["kind"].(string)
			if !ok || kind == "" {
				t.Errorf("object %d: kind %#v, want a non-empty string", i, o.Object["kind"])
			}
			if _, hasItems := o.Object["items"]; strings.HasSuffix(kind, "List") && (hasItems || apiVersion == "v1") {
				t.Errorf("object %d: a %s with items was not expanded", i, kind)
			}
		}
	})
}

func isWord(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

func isIdentifier(s string) bool {
	for _, r := range s {
		if r > 0x7f || !isWord(byte(r)) {
			return false
		}
	}
	return s != ""
}

// FuzzMayHold: a document MayHold skips must not decode to an object of that kind, however the kind is spelled.
func FuzzMayHold(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: Policy\n",
		"kind: 'Policy'\nspec: {imagePullPolicy: Always}\n",
		"{\"kind\": \"\\u0050olicy\"}",
		"kind: \"Pol\\\n  icy\"\n",
		"kind: !!binary UG9saWN5\n",
		"apiVersion: v1\nkind: List\nitems:\n- {kind: Policy}\n",
		"a: &k Policy\nkind: *k\n",
		"kind: |-\n  Policy\n",
		"kind: restartPolicy\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for doc, err := range manifest.Documents(manifest.Source{Name: "fuzz.yaml", Data: data}) {
			if err != nil {
				return
			}
			objs, err := doc.Objects()
			if err != nil {
				continue
			}
			for _, o := range objs {
				// Kinds are identifiers; a kind of several words can be folded over lines ("Pol\n  icy" is "Pol icy").
				if kind, ok := o.Object["kind"].(string); ok && isIdentifier(kind) && !doc.MayHold(kind) {
					t.Fatalf("an object of kind %q decoded from a document MayHold says cannot hold one:\n%s", kind, doc.Bytes())
				}
			}
		}
	})
}
