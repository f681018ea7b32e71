package manifest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/continuums/attest/manifest"
)

// endless is a reader of Pods without end: a stream that can only be handled one document at a time.
type endless struct {
	n   int
	buf bytes.Buffer
}

func (e *endless) Read(p []byte) (int, error) {
	for e.buf.Len() < len(p) {
		fmt.Fprintf(&e.buf, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p%d\n---\n", e.n)
		e.n++
	}
	return e.buf.Read(p)
}

func TestDocumentsStreamsWithoutReadingToTheEnd(t *testing.T) {
	src := &endless{}
	srcs, err := manifest.Collect([]string{"-"}, src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for doc, err := range manifest.Documents(srcs[0]) {
		if err != nil {
			t.Fatal(err)
		}
		objs, err := doc.Objects()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, objs[0].Object["metadata"].(map[string]any)["name"].(string))
		if objs[0].Line != 1+5*(len(names)-1) {
			t.Fatalf("document %d starts on line %d, want %d", len(names), objs[0].Line, 1+5*(len(names)-1))
		}
		if len(names) == 3 {
			break
		}
	}
	if want := []string{"p0", "p1", "p2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if src.n > 10000 {
		t.Errorf("read %d documents ahead to yield 3", src.n)
	}
}

// What a stream yields does not depend on how its reader cuts the bytes, nor on lines longer than the buffer.
func TestDocumentsAgreeWithInMemoryParse(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	inputs := map[string]string{
		"multi":              "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n",
		"long line":          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  v: " + long + "\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: after\n",
		"long json one line": `{"apiVersion": "v1", "kind": "ConfigMap", "data": {"v": "` + long + `"}}` + "\n---\napiVersion: v1\nkind: Pod\n",
		"long separator":     "apiVersion: v1\nkind: Pod\n--- #" + long + "\napiVersion: v1\nkind: Service\n",
		"no final newline":   "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Service",
		"crlf":               "apiVersion: v1\r\nkind: Pod\r\n---\r\napiVersion: v1\r\nkind: Service\r\n",
		"not a separator":    "apiVersion: v1\nkind: ConfigMap\ndata:\n  v: |\n    ---x\n    text\n",
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			want, err := manifest.Parse(manifest.Source{Name: "<stdin>", Data: []byte(data)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []io.Reader{strings.NewReader(data), iotest.OneByteReader(strings.NewReader(data)), iotest.HalfReader(strings.NewReader(data))} {
				srcs, err := manifest.Collect([]string{"-"}, r)
				if err != nil {
					t.Fatal(err)
				}
				got, err := manifest.Parse(srcs[0])
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("streamed objects differ from in-memory ones: %d against %d", len(got), len(want))
				}
			}
		})
	}
}

func TestRereadable(t *testing.T) {
	const data = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
	dir := tree(t, map[string]string{"svc.yaml": "apiVersion: v1\nkind: Service\n"})
	srcs, err := manifest.Collect([]string{dir, "-"}, strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	again, cleanup, err := manifest.Rereadable(srcs, spool)
	if err != nil {
		t.Fatal(err)
	}
	var copies []string
	for _, s := range again {
		if p, ok := s.SpooledStream(); ok {
			copies = append(copies, p)
		}
	}
	if len(copies) != 1 || filepath.Dir(copies[0]) != spool {
		t.Errorf("SpooledStream: %v, want stdin's one copy in %s", copies, spool)
	}
	for round := range 2 {
		var kinds []string
		for _, s := range again {
			objs, err := manifest.Parse(s)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for _, o := range objs {
				kinds = append(kinds, o.File+" "+o.Object["kind"].(string))
			}
		}
		if want := []string{dir + "/svc.yaml Service", "<stdin> Pod"}; !reflect.DeepEqual(kinds, want) {
			t.Errorf("round %d: %v, want %v", round, kinds, want)
		}
	}
	cleanup()
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("cleanup left %d files", len(left))
	}
}

func TestRereadableStdinFails(t *testing.T) {
	srcs, err := manifest.Collect([]string{"-"}, iotest.ErrReader(errBoom))
	if err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	_, _, err = manifest.Rereadable(srcs, spool)
	if want := "copy stdin: boom"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("a failed copy left %d files", len(left))
	}
}

func TestWalkKeepsOrder(t *testing.T) {
	var b strings.Builder
	for i := range 500 {
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p%d\n---\n", i)
	}
	b.WriteString("apiVersion: v1\nkind: [broken\n")
	dir := tree(t, map[string]string{"a.yaml": "apiVersion: v1\nkind: Service\n"})
	srcs, err := manifest.Collect([]string{dir, "-"}, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	manifest.Walk(context.Background(), srcs, 4, func(doc manifest.Document, err error) string {
		if err != nil {
			return "read error"
		}
		objs, err := doc.Objects()
		if err != nil {
			return err.Error()
		}
		if len(objs) == 0 {
			return "empty"
		}
		md, _ := objs[0].Object["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		return fmt.Sprintf("%s:%d %s", objs[0].File, objs[0].Line, name)
	}, func(s string) { got = append(got, s) })
	if len(got) != 502 {
		t.Fatalf("%d results, want 502", len(got))
	}
	if got[0] != dir+"/a.yaml:1 " {
		t.Errorf("first %q", got[0])
	}
	for i := range 500 {
		if want := fmt.Sprintf("<stdin>:%d p%d", 1+5*i, i); got[1+i] != want {
			t.Fatalf("result %d is %q, want %q", 1+i, got[1+i], want)
		}
	}
	if want := "<stdin>:2501: yaml: line 2502: did not find expected ',' or ']'"; got[501] != want {
		t.Errorf("last %q, want %q", got[501], want)
	}
}

func TestWalkReportsUnreadableSources(t *testing.T) {
	dir := tree(t, map[string]string{"a.yaml": "apiVersion: v1\nkind: Service\n"})
	srcs, err := manifest.Collect([]string{dir + "/a.yaml", "-"}, iotest.ErrReader(errBoom))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	manifest.Walk(context.Background(), srcs, 2, func(doc manifest.Document, err error) string {
		if err != nil {
			return doc.File + ": " + err.Error()
		}
		return doc.File
	}, func(s string) { got = append(got, s) })
	if want := []string{dir + "/a.yaml", "<stdin>: read <stdin>: boom"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A cancelled walk reads no further: an interrupted check of an endless stream ends.
func TestWalkStopsWhenCancelled(t *testing.T) {
	src := &endless{}
	srcs, err := manifest.Collect([]string{"-"}, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	manifest.Walk(ctx, srcs, 2, func(manifest.Document, error) int { return 1 }, func(int) {
		if n++; n == 100 {
			cancel()
		}
	})
	if n < 100 || n > 100+20 {
		t.Errorf("%d documents emitted after cancelling at the 100th, want at most the read-ahead window more", n)
	}
}
