package policies

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// One Deployment change reaches the webhook 3-13 times (Deployment, ReplicaSet, each Pod) with the same pod
// template: the memo decides each distinct (policy, parameters, what the policy reads) once. Its key is a SHA-256
// of the parameters and of the value at every input path the policy's rules reference (input.containers,
// input.resource.metadata.annotations, ...), so two requests share an entry only when everything the policy
// can see is the same: a different user, namespace label, request time, object field or image fact that the
// policy reads gives another key. Policies that read input as a whole key on all of it. Policies cannot call
// non-deterministic built-ins (see purity.go), and data is fixed per engine, so equal keys mean equal results.

// memoSize bounds each policy's memo: enough for the distinct pod templates of a rollout wave (an entry is about
// 100 bytes, see memoTable).
const memoSize = 1024

// memo holds a policy's recent results by key. It is safe for concurrent use.
type memo struct {
	all   bool       // the policy reads input as a whole: the key covers every part
	paths [][]string // otherwise the input paths it reads, sorted, none a prefix of another
	// keyed are the paths the key covers (those of paths below a document part, or with all each part); ids
	// number them in a document's digests (see pathIDs).
	keyed [][]string
	ids   []int
	cache *memoTable
}

func newMemo(paths [][]string, all bool) *memo {
	m := &memo{all: all, paths: paths, cache: newMemoTable(memoSize)}
	for _, path := range paths {
		// input.params is in the key as the parameters' digest, and what is neither a part nor the parameters is
		// always undefined: only paths below a part need a digest per document.
		if slices.Contains(documentParts[:], path[0]) {
			m.keyed = append(m.keyed, path)
		}
	}
	if all {
		m.keyed = make([][]string, numParts)
		for part := range numParts {
			m.keyed[part] = []string{documentParts[part]}
		}
	}
	for _, path := range m.keyed {
		m.ids = append(m.ids, pathID(path))
	}
	return m
}

// key is the memo key of evaluating the policy over doc with the parameters of s: the SHA-256 of the parameters'
// digest and of the digest of every path the policy reads. Each path's digest covers its name and value and is
// computed once per document, however many policies read the path.
func (m *memo) key(doc *Document, s Settings) [sha256.Size]byte {
	var stack [16 * sha256.Size]byte // most policies key on a few paths: no allocation
	buf := stack[:0]
	params := s.paramsDigest()
	buf = append(buf, params[:]...)
	for i, path := range m.keyed {
		d := doc.digest(m.ids[i], path)
		buf = append(buf, d[:]...)
	}
	return sha256.Sum256(buf)
}

// pathIDs number the input paths memos key on, in this process: a document keeps their digests in a slice
// indexed by number, rather than in a map of the paths' names built for each admission.
var pathIDs struct {
	sync.Mutex
	ids map[string]int
}

// pathID is path's number in pathIDs, given on first use.
func pathID(path []string) int {
	name := strings.Join(path, "\x00")
	pathIDs.Lock()
	defer pathIDs.Unlock()
	id, ok := pathIDs.ids[name]
	if !ok {
		if pathIDs.ids == nil {
			pathIDs.ids = map[string]int{}
		}
		id = len(pathIDs.ids)
		pathIDs.ids[name] = id
	}
	return id
}

// pathCount is how many paths are numbered.
func pathCount() int {
	pathIDs.Lock()
	defer pathIDs.Unlock()
	return len(pathIDs.ids)
}

// pathDigest is a path's digest in a document, once computed.
type pathDigest struct {
	sum  [sha256.Size]byte
	done bool
}

// digest is the SHA-256 of path's name and of the value at path in d, computed on first use; id numbers the path
// (pathID).
func (d *Document) digest(id int, path []string) [sha256.Size]byte {
	d.digestMu.Lock()
	if id < len(d.digests) && d.digests[id].done {
		sum := d.digests[id].sum
		d.digestMu.Unlock()
		return sum
	}
	d.digestMu.Unlock()
	enc := encoders.Get().(*canonical)
	enc.b = enc.b[:0]
	for _, seg := range path {
		enc.str(seg)
	}
	enc.tag('/')
	enc.at(d, path)
	sum := sha256.Sum256(enc.b)
	encoders.Put(enc)
	d.digestMu.Lock()
	if id >= len(d.digests) {
		// Room for every path numbered so far, at once (a few dozen): the first path a document keys on may be
		// any of them.
		d.digests = slices.Grow(d.digests, max(id+1, pathCount())-len(d.digests))[:id+1]
	}
	d.digests[id] = pathDigest{sum: sum, done: true}
	d.digestMu.Unlock()
	return sum
}

// emptyParamsDigest is the digest of the parameters of a policy that has none.
var emptyParamsDigest = valueDigest(ast.NewObject())

// valueDigest is the SHA-256 of v's canonical encoding.
func valueDigest(v ast.Value) [sha256.Size]byte {
	enc := encoders.Get().(*canonical)
	enc.b = enc.b[:0]
	enc.value(v)
	sum := sha256.Sum256(enc.b)
	encoders.Put(enc)
	return sum
}

// encoders reuse the buffers of canonical encodings.
var encoders = sync.Pool{New: func() any { return &canonical{b: make([]byte, 0, 4096)} }}

// canonical encodes Rego values in one encoding per value: every item tagged and length-prefixed, object keys and
// set members in Rego's order, so that different values never write the same bytes.
type canonical struct {
	b []byte
}

func (c *canonical) tag(t byte) { c.b = append(c.b, t) }

func (c *canonical) length(n int) { c.b = binary.AppendUvarint(c.b, uint64(n)) }

func (c *canonical) str(s string) {
	c.tag('s')
	c.length(len(s))
	c.b = append(c.b, s...)
}

// at writes the value at path below the document, or the mark of an undefined value.
func (c *canonical) at(doc *Document, path []string) {
	part := slices.Index(documentParts[:], path[0])
	if part < 0 {
		c.tag('u')
		return
	}
	if part == partContainers {
		if len(path) > 1 { // input.containers is an array: no path goes below it (as for its conversion)
			c.tag('u')
			return
		}
		c.containers(doc.in.Containers)
		return
	}
	if part == partImages && len(path) == 1 && c.imageDigests(doc.in) {
		return
	}
	if raw, ok := doc.raw(part); ok {
		c.goAt(raw, path[1:])
		return
	}
	if v, defined, ok := doc.fieldAt(part, path[1:]); ok {
		c.fieldValue(v, defined)
		return
	}
	c.termAt(doc.term(part).Value, path[1:])
}

// imageDigests encodes input.images from the digests of its images' converted facts, each computed once for all
// the admissions that carry it, rather than walking every image's facts again. It writes nothing and is false
// unless every image has converted facts. The tag 'I' is used for nothing else: this encoding is never compared
// with value's (an images map encoded the other way misses).
func (c *canonical) imageDigests(in Input) bool {
	if in.Images == nil {
		return false
	}
	var stack [8]string
	images := stack[:0]
	for image := range in.Images {
		if in.ImageTerms[image].t == nil {
			return false
		}
		images = append(images, image)
	}
	slices.Sort(images)
	c.tag('I')
	c.length(len(images))
	for _, image := range images {
		c.str(image)
		sum := in.ImageTerms[image].digest()
		c.b = append(c.b, sum[:]...)
	}
	return true
}

// fieldValue writes what fieldAt found.
func (c *canonical) fieldValue(v any, defined bool) {
	if !defined {
		c.tag('u')
		return
	}
	c.deepValue(v)
}

// termAt writes the value at path below the converted v, or the mark of an undefined value.
func (c *canonical) termAt(v ast.Value, path []string) {
	for _, seg := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			c.tag('u')
			return
		}
		t := obj.Get(ast.InternedTerm(seg))
		if t == nil {
			c.tag('u')
			return
		}
		v = t.Value
	}
	c.value(v)
}

// fieldAt is the value at path below input.request or input.namespace, read from the Go struct as its conversion
// (convert) holds it, so that keying on input.request.operation converts nothing; defined is false where the
// conversion holds nothing. ok is false for the whole part and for other parts: the caller encodes their conversion.
func (d *Document) fieldAt(part int, path []string) (v any, defined, ok bool) {
	if len(path) == 0 {
		return nil, false, false
	}
	rest := path[1:]
	switch part {
	case partRequest:
		r := &d.in.Request
		switch path[0] {
		case "uid":
			v = r.UID
		case "operation":
			v = r.Operation
		case "kind":
			if len(rest) == 0 {
				v = map[string]any{"group": r.Group, "version": r.Version, "kind": r.Kind}
				break
			}
			switch rest[0] { // a field of the kind, without the map (the usual path: input.request.kind.kind)
			case "group":
				v = r.Group
			case "version":
				v = r.Version
			case "kind":
				v = r.Kind
			default:
				return nil, false, true
			}
			rest = rest[1:]
		case "subresource":
			v = r.SubResource
		case "namespace":
			v = r.Namespace
		case "name":
			v = r.Name
		case "dry_run":
			v = r.DryRun
		case "user":
			if len(rest) == 0 {
				v = map[string]any{"username": r.Username, "groups": r.Groups} // nil groups encode as the empty array
				break
			}
			switch rest[0] {
			case "username":
				v = r.Username
			case "groups":
				v = r.Groups
			default:
				return nil, false, true
			}
			rest = rest[1:]
		case "timestamp_ns":
			v = r.TimestampNS
		case "background":
			v = r.Background
		default:
			return nil, false, true
		}
	case partNamespace:
		ns := &d.in.Namespace
		switch path[0] {
		case "name":
			v = ns.Name
		case "labels":
			v = ns.Labels
		case "annotations":
			v = ns.Annotations
		case "production":
			v = ns.Production
		default:
			return nil, false, true
		}
	default:
		return nil, false, false
	}
	for _, seg := range rest {
		switch m := v.(type) {
		case map[string]any:
			if v, defined = m[seg]; !defined {
				return nil, false, true
			}
		case map[string]string:
			s, found := m[seg]
			if !found {
				return nil, false, true
			}
			v = s
		default: // below a string, number, boolean or array
			return nil, false, true
		}
	}
	return v, true, true
}

// goAt is at for a part still held as decoded JSON: it walks and encodes the Go values as value encodes their
// conversion (same tags, numbers as Rego formats them, object keys sorted), so a memo hit never converts the object.
// A value reached both ways encodes alike; were any to differ, the cost would be a miss, never a wrong hit, since
// each encoding is injective.
func (c *canonical) goAt(v any, path []string) {
	top := true // whether v is converted by toTerm's rules or, below a plain map, by InterfaceToValue's
	for _, seg := range path {
		var ok bool
		switch m := v.(type) {
		case map[string]any:
			top = top && hasConverted(m)
			v, ok = m[seg]
		case map[string]map[string]any:
			top = true
			v, ok = m[seg]
		case map[string]string:
			v, ok = m[seg]
		}
		if !ok {
			c.tag('u')
			return
		}
	}
	if top {
		c.goValue(v)
	} else {
		c.deepValue(v)
	}
}

// containers encodes input.containers from the extracted containers, without converting them: every field of
// each (all of the container object, not only the securityContext and resources its conversion shows), so two
// lists encode alike only when their conversions are equal. The tag 'C' is used for nothing else: this encoding
// is never compared with value's.
func (c *canonical) containers(cs []Container) {
	c.tag('C')
	c.length(len(cs))
	for _, ctr := range cs {
		c.str(ctr.Path)
		c.str(ctr.PodPath)
		c.str(ctr.Type)
		c.str(ctr.Name)
		c.str(ctr.Image)
		// Only the two fields the converted container holds (see Document.convert), each as toTerm converts it
		// (absent and null both null): a container differing in its environment, ports or probes is the same to
		// every policy that reads input.containers.
		c.goValue(ctr.Fields["securityContext"])
		c.goValue(ctr.Fields["resources"])
	}
}

// goValue encodes v as value encodes toTerm(v): toTerm's own cases (Converted values, null for a nil map, maps
// holding Converted values, the images map) here, the rest as ast.InterfaceToValue converts them (deepValue).
func (c *canonical) goValue(v any) {
	switch x := v.(type) {
	case Converted:
		c.value(x.t.Value)
	case map[string]any:
		switch {
		case x == nil:
			c.tag('n')
		case hasConverted(x):
			goObject(c, x, (*canonical).goValue)
		default:
			c.deepValue(x)
		}
	case map[string]map[string]any:
		if x == nil {
			c.tag('n')
			return
		}
		goObject(c, x, func(c *canonical, e map[string]any) { c.goValue(e) })
	default:
		c.deepValue(v)
	}
}

// deepValue encodes v as value encodes ast.InterfaceToValue(v).
func (c *canonical) deepValue(v any) {
	switch x := v.(type) {
	case nil:
		c.tag('n')
	case bool:
		if x {
			c.tag('t')
		} else {
			c.tag('f')
		}
	case string:
		c.str(x)
	case float64:
		c.tag('#')
		c.str(strconv.FormatFloat(x, 'g', -1, 64))
	case int:
		c.tag('#')
		c.str(strconv.Itoa(x))
	case int64:
		c.tag('#')
		c.str(strconv.FormatInt(x, 10))
	case []string:
		c.tag('[')
		c.length(len(x))
		for _, e := range x {
			c.str(e)
		}
	case []any:
		c.tag('[')
		c.length(len(x))
		for _, e := range x {
			c.deepValue(e)
		}
	case map[string]any:
		goObject(c, x, (*canonical).deepValue)
	case map[string]string:
		goObject(c, x, (*canonical).str)
	default: // what InterfaceToValue converts through JSON; NewDocument converted parts that could fail at once
		if val, err := ast.InterfaceToValue(x); err == nil {
			c.value(val)
			return
		}
		c.tag('?')
		c.str(fmt.Sprint(x))
	}
}

// goObject encodes a map as value encodes an object: its length, then each key and value (by enc) in sorted key
// order.
func goObject[V any](c *canonical, m map[string]V, enc func(*canonical, V)) {
	c.tag('{')
	c.length(len(m))
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c.str(k)
		enc(c, m[k])
	}
}

func (c *canonical) value(v ast.Value) {
	switch x := v.(type) {
	case ast.Null:
		c.tag('n')
	case ast.Boolean:
		if x {
			c.tag('t')
		} else {
			c.tag('f')
		}
	case ast.Number:
		c.tag('#')
		c.str(string(x))
	case ast.String:
		c.str(string(x))
	case *ast.Array:
		c.tag('[')
		c.length(x.Len())
		for i := range x.Len() {
			c.value(x.Elem(i).Value)
		}
	case ast.Object:
		c.tag('{')
		c.length(x.Len())
		x.Foreach(func(k, v *ast.Term) { // in sorted key order
			c.value(k.Value)
			c.value(v.Value)
		})
	case ast.Set:
		c.tag('<')
		c.length(x.Len())
		sorted := x.Sorted()
		for i := range sorted.Len() {
			c.value(sorted.Elem(i).Value)
		}
	default: // not a value of an input document; its text still tells values apart
		c.tag('?')
		c.str(v.String())
	}
}

// readsAndMemo is which parts of input a policy compiled from modules reads, and its memo.
func readsAndMemo(modules []*ast.Module) (inputReads, *memo) {
	paths, ok := readPaths(modules)
	return readsOf(paths, ok), newMemo(paths, !ok)
}

// readPaths lists the input paths that compiled modules read: for every reference input.a.b[x].c, the constant
// prefix input.a.b. ok is false when a rule uses input in a way no path describes (input alone, input[x], with
// input as ...): the memo then keys on all of input.
func readPaths(modules []*ast.Module) (paths [][]string, ok bool) {
	ok = true
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch v := x.(type) {
		case ast.Ref:
			if !v[0].Equal(ast.InputRootDocument) {
				return false
			}
			var path []string
			for _, t := range v[1:] {
				s, isStr := t.Value.(ast.String)
				if !isStr {
					break
				}
				path = append(path, string(s))
			}
			if len(path) == 0 {
				ok = false
			} else {
				paths = append(paths, path)
			}
			for _, t := range v[1:] {
				vis.Walk(t)
			}
			return true
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) {
				ok = false
			}
		}
		return false
	})
	for _, mod := range modules {
		vis.Walk(mod)
	}
	if !ok {
		return nil, false
	}
	return minimalPaths(paths), true
}

// minimalPaths sorts paths, drops duplicates and every path below another one (its value is part of the other's).
func minimalPaths(paths [][]string) [][]string {
	sort.Slice(paths, func(i, j int) bool { return slices.Compare(paths[i], paths[j]) < 0 })
	var out [][]string
	for _, p := range paths {
		if n := len(out); n > 0 && hasPrefix(p, out[n-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func hasPrefix(p, prefix []string) bool {
	return len(p) >= len(prefix) && slices.Equal(p[:len(prefix)], prefix)
}

// String renders the paths for messages and tests: "input.containers, input.resource.metadata".
func pathsString(paths [][]string) string {
	s := make([]string, len(paths))
	for i, p := range paths {
		s[i] = "input." + strings.Join(p, ".")
	}
	return strings.Join(s, ", ")
}
