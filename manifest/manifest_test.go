package manifest_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/continuums/attest/manifest"
)

type obj = map[string]any

// located is what a test expects of one object: its line and content (the file is the source's name).
type located struct {
	line   int
	object obj
}

func pod(name string) obj {
	return obj{"apiVersion": "v1", "kind": "Pod", "metadata": obj{"name": name}}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []located
	}{
		{
			name: "empty source",
			data: "",
			want: nil,
		},
		{
			name: "single document",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
			want: []located{{1, pod("a")}},
		},
		{
			name: "single document without a final newline",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a",
			want: []located{{1, pod("a")}},
		},
		{
			name: "multi-document",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n",
			want: []located{{1, pod("a")}, {6, pod("b")}},
		},
		{
			name: "separator with a comment",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n--- # the second pod\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n",
			want: []located{{1, pod("a")}, {6, pod("b")}},
		},
		{
			name: "separator with trailing blanks",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---   \t\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n",
			want: []located{{1, pod("a")}, {6, pod("b")}},
		},
		{
			name: "leading separator",
			data: "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
			want: []located{{2, pod("a")}},
		},
		{
			name: "trailing separator",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\n",
			want: []located{{1, pod("a")}},
		},
		{
			name: "line is the first non-comment line of the document",
			data: "# header\n\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\n  # indented comment\n\n\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n",
			want: []located{{3, pod("a")}, {11, pod("b")}},
		},
		{
			name: "documents of only comments, blanks and nulls are skipped",
			data: "# generated\n---\n\n---\n# nothing here\n#   either\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\nnull\n---\n~\n---\n",
			want: []located{{8, pod("a")}},
		},
		{
			name: "three dashes not alone on their line do not split",
			data: "apiVersion: v1\nkind: ConfigMap\ndata:\n  script: |\n    echo a\n    --- not a separator\n    echo b\n",
			want: []located{{1, obj{"apiVersion": "v1", "kind": "ConfigMap", "data": obj{"script": "echo a\n--- not a separator\necho b\n"}}}},
		},
		{
			name: "CRLF line endings",
			data: "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: b\r\n",
			want: []located{{1, pod("a")}, {6, pod("b")}},
		},
		{
			name: "JSON",
			data: `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}`,
			want: []located{{1, pod("a")}},
		},
		{
			name: "JSON indented with tabs",
			data: "\n{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Pod\",\n\t\"metadata\": {\n\t\t\"name\": \"a\"\n\t}\n}\n",
			want: []located{{2, pod("a")}},
		},
		{
			name: "v1 List is expanded; every item has the list's line",
			data: "# kubectl get pods -o yaml\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: b\n",
			want: []located{{2, pod("a")}, {2, pod("b")}},
		},
		{
			name: "nested v1 List is expanded",
			data: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: Pod\n    metadata:\n      name: b\n",
			want: []located{{1, pod("a")}, {1, pod("b")}},
		},
		{
			name: "v1 List in a later document",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: b\n",
			want: []located{{1, pod("a")}, {6, pod("b")}},
		},
		{
			name: "v1 List without items is empty",
			data: "apiVersion: v1\nkind: List\nmetadata: {}\n",
			want: nil,
		},
		{
			name: "v1 List with empty items is empty",
			data: "apiVersion: v1\nkind: List\nitems: []\n",
			want: nil,
		},
		{
			name: "DeploymentList with apiVersion v1 is expanded",
			data: "apiVersion: v1\nkind: DeploymentList\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: web\n",
			want: []located{{1, obj{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": obj{"name": "web"}}}},
		},
		{
			// kubectl unpacks any list with items, so a typed list cannot hide its Deployments from the check.
			name: "DeploymentList with apiVersion apps/v1 is expanded",
			data: "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: web\n",
			want: []located{{1, obj{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": obj{"name": "web"}}}},
		},
		{
			name: "YAML 1.1 booleans",
			data: "apiVersion: v1\nkind: Pod\nspec:\n  privileged: yes\n  hostPID: on\n  hostIPC: No\n  hostNetwork: off\n  quoted: \"yes\"\n",
			want: []located{{1, obj{"apiVersion": "v1", "kind": "Pod", "spec": obj{
				"privileged": true, "hostPID": true, "hostIPC": false, "hostNetwork": false, "quoted": "yes",
			}}}},
		},
		{
			name: "YAML 1.1 boolean keys become strings",
			data: "apiVersion: v1\nkind: ConfigMap\ndata:\n  y: a\n  n: b\n",
			want: []located{{1, obj{"apiVersion": "v1", "kind": "ConfigMap", "data": obj{"true": "a", "false": "b"}}}},
		},
		{
			name: "numbers",
			data: "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 3\n  max: 9223372036854775807\n  negative: -2\n  octal: 0755\n  hex: 0x1F\n  ratio: 1.5\n  quoted: \"3\"\n",
			want: []located{{1, obj{"apiVersion": "apps/v1", "kind": "Deployment", "spec": obj{
				"replicas": int64(3), "max": int64(9223372036854775807), "negative": int64(-2), "octal": int64(493),
				"hex": int64(31), "ratio": 1.5, "quoted": "3",
			}}}},
		},
		{
			name: "JSON numbers",
			data: `{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3, "ratio": 0.5}}`,
			want: []located{{1, obj{"apiVersion": "apps/v1", "kind": "Deployment", "spec": obj{"replicas": int64(3), "ratio": 0.5}}}},
		},
		{
			name: "anchors, aliases and merge keys",
			data: "apiVersion: v1\nkind: ConfigMap\ndata:\n  base: &b {a: x}\n  copy: *b\n  merged:\n    <<: *b\n    c: z\n",
			want: []located{{1, obj{"apiVersion": "v1", "kind": "ConfigMap", "data": obj{
				"base": obj{"a": "x"}, "copy": obj{"a": "x"}, "merged": obj{"a": "x", "c": "z"},
			}}}},
		},
		{
			name: "a later duplicate key wins",
			data: "apiVersion: v1\nkind: Pod\nspec:\n  privileged: true\n  privileged: false\n",
			want: []located{{1, obj{"apiVersion": "v1", "kind": "Pod", "spec": obj{"privileged": false}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := manifest.Parse(manifest.Source{Name: "in.yaml", Data: []byte(tt.data)})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []located
			for _, o := range objs {
				if o.File != "in.yaml" {
					t.Errorf("File = %q, want in.yaml", o.File)
				}
				got = append(got, located{o.Line, o.Object})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("objects:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{
			// The third document starts on line 9 (after "--- # c"); the error is on line 14 of the file.
			name: "syntax error in the third document",
			data: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\n--- # c\n# comment\n\n" +
				"apiVersion: v1\nkind: Pod\nspec:\n  x: [1\n  y: 2\n",
			wantErr: "deploy.yaml:9: yaml: line 14: did not find expected ',' or ']'",
		},
		{
			name:    "bad indentation in the second document",
			data:    "apiVersion: v1\nkind: Pod\n---\n\n\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   bad: x\n",
			wantErr: "deploy.yaml:4: yaml: line 10: mapping values are not allowed in this context",
		},
		{
			name:    "syntax error in the only document",
			data:    "apiVersion: v1\nkind: [Pod\n",
			wantErr: "deploy.yaml:1: yaml: line 2: did not find expected ',' or ']'",
		},
		{
			name:    "tab indentation",
			data:    "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: a\n",
			wantErr: "deploy.yaml:1: yaml: line 4: found character that cannot start any token",
		},
		{
			name:    "document is a list",
			data:    "apiVersion: v1\nkind: Pod\n---\n# oops\n- apiVersion: v1\n  kind: Pod\n",
			wantErr: "deploy.yaml:5: the document is not an object",
		},
		{
			name:    "document is a scalar",
			data:    "\n\njust some text\n",
			wantErr: "deploy.yaml:3: the document is not an object",
		},
		{
			name:    "JSON array",
			data:    `[{"apiVersion": "v1", "kind": "Pod"}]`,
			wantErr: "deploy.yaml:1: the document is not an object",
		},
		{
			name:    "missing apiVersion",
			data:    "kind: Pod\nmetadata:\n  name: a\n",
			wantErr: "deploy.yaml:1: the object has no apiVersion or kind",
		},
		{
			name:    "missing kind in the second document",
			data:    "apiVersion: v1\nkind: Pod\n---\n# second\napiVersion: v1\nmetadata:\n  name: a\n",
			wantErr: "deploy.yaml:5: the object has no apiVersion or kind",
		},
		{
			name:    "empty kind",
			data:    "apiVersion: v1\nkind: \"\"\n",
			wantErr: "deploy.yaml:1: the object has no apiVersion or kind",
		},
		{
			name:    "apiVersion is not a string",
			data:    "apiVersion: 1\nkind: Pod\n",
			wantErr: "deploy.yaml:1: the object has no apiVersion or kind",
		},
		{
			name:    "List items is not a list",
			data:    "apiVersion: v1\nkind: List\nitems: {}\n",
			wantErr: "deploy.yaml:1: List.items: expected a list",
		},
		{
			name:    "List item is not an object",
			data:    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n- 42\n",
			wantErr: "deploy.yaml:1: List.items[1]: expected an object",
		},
		{
			name:    "List item without a kind",
			data:    "---\napiVersion: v1\nkind: PodList\nitems:\n- apiVersion: v1\n",
			wantErr: "deploy.yaml:2: PodList.items[0]: the object has no apiVersion or kind",
		},
		{
			name:    "nested List item without an apiVersion",
			data:    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - kind: Pod\n",
			wantErr: "deploy.yaml:1: List.items[0]: List.items[0]: the object has no apiVersion or kind",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := manifest.Parse(manifest.Source{Name: "deploy.yaml", Data: []byte(tt.data)})
			if err == nil {
				t.Fatalf("Parse succeeded with %d objects, want error %q", len(objs), tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
			if objs != nil {
				t.Errorf("Parse returned objects with its error: %v", objs)
			}
		})
	}
}

// tree writes files (slash-separated paths relative to a new temporary directory) and returns the directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCollect(t *testing.T) {
	files := map[string]string{
		"b.yaml":             "b",
		"a.json":             "a",
		"notes.txt":          "notes",
		"README.md":          "readme",
		"a-b.yml":            "ab",
		"a/x.yaml":           "ax",
		"sub/c.yml":          "c",
		"sub/e.txt":          "e",
		"sub/deeper/d.YAML":  "d",
		"sub/deeper/f.json":  "f",
		"sub/deeper/yaml":    "no extension",
		"sub/deeper/g.yaml~": "backup",
	}
	dir := tree(t, files)
	empty := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }

	type want struct {
		name string
		data string
	}
	tests := []struct {
		name  string
		paths []string
		stdin string
		want  []want
	}{
		{
			name:  "directory: .yaml, .yml and .json, recursively, in path order",
			paths: []string{dir},
			want: []want{
				{p("a-b.yml"), "ab"},
				{p("a.json"), "a"},
				{p("a/x.yaml"), "ax"},
				{p("b.yaml"), "b"},
				{p("sub/c.yml"), "c"},
				{p("sub/deeper/d.YAML"), "d"},
				{p("sub/deeper/f.json"), "f"},
			},
		},
		{
			name:  "subdirectory",
			paths: []string{p("sub/deeper")},
			want:  []want{{p("sub/deeper/d.YAML"), "d"}, {p("sub/deeper/f.json"), "f"}},
		},
		{
			name:  "a file is read as given, whatever its extension",
			paths: []string{p("notes.txt")},
			want:  []want{{p("notes.txt"), "notes"}},
		},
		{
			name:  "stdin",
			paths: []string{"-"},
			stdin: "apiVersion: v1\nkind: Pod\n",
			want:  []want{{"<stdin>", "apiVersion: v1\nkind: Pod\n"}},
		},
		{
			name:  "arguments keep their order",
			paths: []string{p("b.yaml"), "-", p("sub/deeper"), p("a.json")},
			stdin: "from stdin",
			want: []want{
				{p("b.yaml"), "b"},
				{"<stdin>", "from stdin"},
				{p("sub/deeper/d.YAML"), "d"},
				{p("sub/deeper/f.json"), "f"},
				{p("a.json"), "a"},
			},
		},
		{
			name:  "empty directory",
			paths: []string{empty},
			want:  nil,
		},
		{
			name:  "no paths",
			paths: nil,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, err := manifest.Collect(tt.paths, strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			var got []want
			for _, s := range srcs {
				rc, err := s.Open()
				if err != nil {
					t.Fatalf("Open %s: %v", s.Name, err)
				}
				data, err := io.ReadAll(rc)
				if err != nil {
					t.Fatalf("read %s: %v", s.Name, err)
				}
				_ = rc.Close()
				got = append(got, want{s.Name, string(data)})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sources:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCollectErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		name    string
		paths   []string
		stdin   io.Reader // nil for an empty stdin
		wantErr string
		wantIs  error
	}{
		{
			name:    "missing path",
			paths:   []string{missing},
			wantErr: "stat " + missing + ": no such file or directory",
			wantIs:  fs.ErrNotExist,
		},
		{
			name:    "missing path after good ones",
			paths:   []string{dir, missing},
			wantErr: "stat " + missing + ": no such file or directory",
			wantIs:  fs.ErrNotExist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := tt.stdin
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			srcs, err := manifest.Collect(tt.paths, stdin)
			if err == nil {
				t.Fatalf("Collect succeeded with %d sources, want error %q", len(srcs), tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
		})
	}
}

var errBoom = errors.New("boom")

// A stream is read when it is parsed, so its read error comes from Parse, naming the source.
func TestParseStdinFails(t *testing.T) {
	srcs, err := manifest.Collect([]string{"-"}, iotest.ErrReader(errBoom))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	_, err = manifest.Parse(srcs[0])
	if want := "read <stdin>: boom"; err == nil || err.Error() != want || !errors.Is(err, errBoom) {
		t.Errorf("error %v, want %s wrapping boom", err, want)
	}
}

func TestCollectThenParse(t *testing.T) {
	dir := tree(t, map[string]string{
		"app/deploy.yaml": "# app\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
		"app/list.json":   `{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}]}`,
		"app/notes.txt":   "not: a manifest",
	})
	srcs, err := manifest.Collect([]string{dir}, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	type where struct {
		file string
		line int
		kind string
	}
	var got []where
	for _, s := range srcs {
		objs, err := manifest.Parse(s)
		if err != nil {
			t.Fatalf("Parse %s: %v", s.Name, err)
		}
		for _, o := range objs {
			got = append(got, where{o.File, o.Line, o.Object["kind"].(string)})
		}
	}
	deploy, list := filepath.Join(dir, "app", "deploy.yaml"), filepath.Join(dir, "app", "list.json")
	want := []where{{deploy, 2, "Deployment"}, {deploy, 7, "Service"}, {list, 1, "ConfigMap"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("objects:\n got %v\nwant %v", got, want)
	}
}

func TestParseFileRemovedAfterCollect(t *testing.T) {
	dir := tree(t, map[string]string{"pod.yaml": "apiVersion: v1\nkind: Pod\n"})
	srcs, err := manifest.Collect([]string{dir}, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 {
		t.Fatalf("Collect found %d sources, want 1", len(srcs))
	}
	path := filepath.Join(dir, "pod.yaml")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = manifest.Parse(srcs[0])
	if want := "open " + path + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestMayHold(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      bool
	}{
		{"plain", "apiVersion: v1\nkind: Policy\n", true},
		{"quoted", "{\"kind\": \"Policy\"}", true},
		{"single-quoted at the end", "kind: 'Policy'", true},
		{"first word", "Policy", true},
		{"block scalar", "kind: |-\n  Policy\n", true},
		{"anchored elsewhere", "x: &k Policy\nkind: *k\n", true},
		{"JSON escape", "{\"kind\": \"\\u0050olicy\"}", true},
		{"escaped line break", "kind: \"Pol\\\n  icy\"\n", true},
		{"binary tag", "kind: !!binary UG9saWN5\n", true},
		{"only inside field names", "kind: Pod\nspec:\n  restartPolicy: Always\n  containers:\n  - imagePullPolicy: IfNotPresent\n", false},
		{"a longer kind", "kind: PolicyException\n", false},
		{"a kind with a suffix", "kind: Policy_2\n", false},
		{"absent", "kind: Pod\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var docs int
			for doc, err := range manifest.Documents(manifest.Source{Name: "t.yaml", Data: []byte(tc.doc)}) {
				if err != nil {
					t.Fatal(err)
				}
				docs++
				if got := doc.MayHold("Policy"); got != tc.want {
					t.Errorf("MayHold(Policy) = %v, want %v", got, tc.want)
				}
			}
			if docs != 1 {
				t.Fatalf("%d documents, want 1", docs)
			}
		})
	}
}
