package policies

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/policies/regoplan"
)

// Request is input.request: who asks for what, when. The admission pipeline uses it as its own request type.
type Request struct {
	UID         string
	Operation   string
	Group       string
	Version     string
	Kind        string
	SubResource string
	Namespace   string
	Name        string
	DryRun      bool
	Username    string
	Groups      []string
	// UserUID and Extra are the rest of userInfo (Cedar's principal id and its extra attributes, such as amr).
	UserUID string
	Extra   map[string][]string
	// Options is the request's options object (DeleteOptions on DELETE: gracePeriodSeconds, propagationPolicy).
	Options map[string]any
	// TimestampNS is the request time; policies read it instead of the clock.
	TimestampNS int64
	// Background marks the background audit's evaluation of an object already in the cluster (no one is
	// asking: a policy about the request itself, such as a change window, can skip it).
	Background bool
}

// Namespace is input.namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Production says whether config marks the namespace as production (by name or label selector).
	Production bool
}

// Container is one element of input.containers.
type Container struct {
	Path    string
	PodPath string
	Type    string
	Name    string
	Image   string
	// Fields is the container object; securityContext and resources are taken from it.
	Fields map[string]any
}

// Input is everything a policy sees except its own parameters.
type Input struct {
	Request     Request
	Resource    map[string]any
	OldResource map[string]any
	Namespace   Namespace
	Containers  []Container
	// Images holds the facts about each image as written in the object (see the README's input contract).
	Images map[string]map[string]any
	// ImageTerms optionally holds some of Images already converted (Convert of Images[image], nothing else), so
	// facts that recur across admissions are converted once: a verified image's in every admission of it.
	ImageTerms map[string]Converted
}

// Document is an Input converted to Rego values for every policy of one admission. Each part of it (request,
// resource, old_resource, namespace, containers, images) is converted once, the first time a policy that reads
// it is evaluated: a run of policies that read only input.containers and input.images never converts the object.
// It is safe for concurrent use.
type Document struct {
	in    Input
	once  [numParts]sync.Once
	terms [numParts]*ast.Term
	// rawParts has bit i set when part i is still the decoded JSON of in (not converted by NewDocument): the memo
	// keys on it without converting it.
	rawParts uint8
	// digests holds the digest of each input path a memo keyed on (see memo.key), shared by every policy.
	digestMu sync.Mutex
	digests  []pathDigest
	// prunedTerms holds the pruned parts built for policies that read only some of the object (see pruned).
	prunedMu    sync.Mutex
	prunedTerms map[string]*ast.Term
	// prunedLeaves holds the subtrees converted for them, by path (see pruner).
	prunedLeaves map[string]*ast.Term
	// shared, when set (ReadTogether), holds the paths of each part the admission's policies read together.
	shared *[numParts]*sharedPaths
}

// The parts of the input document, in the order the input object lists them; params follows them.
const (
	partRequest = iota
	partResource
	partOldResource
	partNamespace
	partContainers
	partImages
	numParts
)

var documentParts = [numParts]string{"request", "resource", "old_resource", "namespace", "containers", "images"}

// The Rego terms of the input document's own names are shared by every conversion, not made for each.
func init() {
	InternNames(documentParts[:]...)
	InternNames("params", "path", "pod_path", "type", "subresource", "operation", "dry_run", "user", "username",
		"groups", "timestamp_ns", "background", "group", "version", "production", "reference", "registry",
		"repository", "tag", "digest", "trusted_registry", "trusted_by", "error", "signature", "verified",
		"attestations", "predicate_type", "trust", "container", "init", "ephemeral",
		// values of input.request most admissions share
		"CREATE", "UPDATE", "DELETE", "CONNECT", "apps", "batch", "v1", "Pod", "Deployment", "ReplicaSet",
		"StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController")
}

// InternNames shares one Rego term for each of names (field names objects hold often) in every conversion rather
// than making one each time. OPA reads its table without a lock: call it only from a package's initialisation.
func InternNames(names ...string) { ast.InternStringTerm(names...) }

var documentKeys = func() (keys [numParts]*ast.Term) {
	for i, k := range documentParts {
		keys[i] = ast.InternedTerm(k)
	}
	return keys
}()

// NewDocument prepares in for evaluation. What cannot be converted is reported here, as for a conversion done at
// once: a part holding only what decoding JSON or YAML yields (maps, slices, strings, numbers, booleans, null)
// converts without error when first read; any other part is converted now, and its error returned.
func NewDocument(in Input) (*Document, error) {
	d := &Document{in: in}
	for _, part := range []int{partResource, partOldResource, partContainers, partImages} {
		if d.plain(part) {
			if part != partContainers {
				d.rawParts |= 1 << part
			}
			continue
		}
		var err error
		d.once[part].Do(func() { d.terms[part], err = d.convert(part) })
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// raw is a part held as decoded JSON (resource, old_resource, images), for keying the memo without converting it.
func (d *Document) raw(part int) (any, bool) {
	if d.rawParts&(1<<part) == 0 {
		return nil, false
	}
	switch part {
	case partResource:
		return d.in.Resource, true
	case partOldResource:
		return d.in.OldResource, true
	case partImages:
		return d.in.Images, true
	}
	return nil, false
}

// plain reports whether a part holds only values whose conversion cannot fail.
func (d *Document) plain(part int) bool {
	switch part {
	case partResource:
		return plainValue(d.in.Resource)
	case partOldResource:
		return plainValue(d.in.OldResource)
	case partContainers:
		for _, c := range d.in.Containers {
			if !plainValue(c.Fields["securityContext"]) || !plainValue(c.Fields["resources"]) {
				return false
			}
		}
		return true
	case partImages:
		for _, facts := range d.in.Images {
			if !plainValue(facts) {
				return false
			}
		}
		return true
	}
	return true
}

// plainValue reports whether v holds only the types ast.InterfaceToValue converts directly, none of which can fail.
func plainValue(v any) bool { return plainWithin(v, nil) }

// plainWithin is plainValue looking at no more than *budget values (nil: no bound), false past them: a large
// subtree (a whole pod template) is given up after a few steps rather than walked to its end.
func plainWithin(v any, budget *int) bool {
	if budget != nil {
		if *budget--; *budget < 0 {
			return false
		}
	}
	switch x := v.(type) {
	case nil, bool, string, float64, int, int64, []string, map[string]string, Converted:
		return true
	case map[string]any:
		for _, e := range x {
			if !plainWithin(e, budget) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !plainWithin(e, budget) {
				return false
			}
		}
		return true
	}
	return false
}

// term is a part converted, once.
func (d *Document) term(part int) *ast.Term {
	d.once[part].Do(func() {
		// A part that could fail was converted by NewDocument; this one cannot.
		d.terms[part], _ = d.convert(part)
	})
	return d.terms[part]
}

// convert converts one part; its errors name the field as policies see it.
func (d *Document) convert(part int) (*ast.Term, error) {
	in := d.in
	switch part {
	case partResource:
		t, err := toTerm(in.Resource)
		if err != nil {
			return nil, fmt.Errorf("input.resource: %w", err)
		}
		return t, nil
	case partOldResource:
		t, err := toTerm(in.OldResource)
		if err != nil {
			return nil, fmt.Errorf("input.old_resource: %w", err)
		}
		return t, nil
	case partContainers:
		containers := make([]*ast.Term, len(in.Containers))
		for i, c := range in.Containers {
			t, err := sharedContainer(c)
			if err != nil {
				return nil, err
			}
			containers[i] = t
		}
		return ast.ArrayTerm(containers...), nil
	case partImages:
		t, err := imagesTerm(in.Images, in.ImageTerms)
		if err != nil {
			return nil, fmt.Errorf("input.images: %w", err)
		}
		return t, nil
	case partRequest:
		r := in.Request
		return ast.ObjectTerm(
			str("uid", r.UID), str("operation", r.Operation),
			[2]*ast.Term{ast.InternedTerm("kind"), kindTerm(r)},
			str("subresource", r.SubResource), str("namespace", r.Namespace), str("name", r.Name),
			[2]*ast.Term{ast.InternedTerm("dry_run"), ast.BooleanTerm(r.DryRun)},
			[2]*ast.Term{ast.InternedTerm("user"), userTerm(r)},
			[2]*ast.Term{ast.InternedTerm("timestamp_ns"), ast.IntNumberTerm(int(r.TimestampNS))},
			[2]*ast.Term{ast.InternedTerm("background"), ast.BooleanTerm(r.Background)},
		), nil
	case partNamespace:
		return namespaceTerm(in.Namespace), nil
	}
	return nil, fmt.Errorf("unknown part %d of the input document", part)
}

// input is the input of one policy: the parts of the document it reads, then its parameters. A part the policy
// never reads is left out: its rules cannot tell.
func (d *Document) input(reads inputReads, params *ast.Term) ast.Value {
	var buf [numParts + 1]regoplan.Field
	fields := d.fields(buf[:0], reads, params)
	terms := make([][2]*ast.Term, len(fields))
	for i, f := range fields {
		terms[i] = [2]*ast.Term{fieldKeys[f.Name], f.Value}
	}
	return ast.NewObject(terms...)
}

// fields appends the fields of input (see input) to buf, for a plan that reads them without the object.
func (d *Document) fields(buf []regoplan.Field, reads inputReads, params *ast.Term) []regoplan.Field {
	for part := range numParts {
		if !reads.reads(part) {
			continue
		}
		paths, key := reads.below[part], reads.belowKey[part]
		if d.shared != nil && len(paths) > 0 {
			if s := d.shared[part]; s != nil && s.covers(key) {
				paths, key = s.paths, s.key
			}
		}
		t := d.pruned(part, paths, key)
		if t == nil {
			t = d.term(part)
		}
		buf = append(buf, regoplan.Field{Name: documentParts[part], Value: t})
	}
	return append(buf, regoplan.Field{Name: "params", Value: params})
}

// fieldKeys are the keys of the input object, by name.
var fieldKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{"params": ast.InternedTerm("params")}
	for i, k := range documentParts {
		m[k] = documentKeys[i]
	}
	return m
}()

// pruned is the part (the object or its old version, still decoded JSON) with only the subtrees at paths, the
// ones a policy reads: its rules cannot tell it from the whole, and a Deployment's pod template, status and
// managed fields are not converted for policies that read its annotations. Each distinct set of paths is built
// once per document, under key. nil when paths is empty or the part is converted already.
func (d *Document) pruned(part int, paths [][]string, key string) *ast.Term {
	if len(paths) == 0 {
		return nil
	}
	raw, ok := d.raw(part)
	if !ok {
		return nil
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil
	}
	d.prunedMu.Lock()
	defer d.prunedMu.Unlock()
	if t, ok := d.prunedTerms[key]; ok {
		return t
	}
	var path [128]byte
	pr := pruner{leaves: d.prunedLeaves, path: append(path[:0], byte(part))}
	t := pr.prune(obj, paths)
	d.prunedLeaves = pr.leaves
	if d.prunedTerms == nil {
		d.prunedTerms = map[string]*ast.Term{}
	}
	d.prunedTerms[key] = t
	return t
}

// pruner builds pruned parts. leaves keeps each subtree it converted, by its path, so that a subtree several
// policies read (a Deployment's annotations) is converted once per document, whichever paths are read with it.
type pruner struct {
	leaves map[string]*ast.Term
	path   []byte // the part and the path to the object being pruned, each segment after its length
}

// prune converts the subtrees of obj at paths (sorted, none a prefix of another) into an object holding only them;
// a path that does not lead to a value is left out, as reading it would be undefined.
func (pr *pruner) prune(obj map[string]any, paths [][]string) *ast.Term {
	out := ast.NewObject()
	for i := 0; i < len(paths); {
		seg := paths[i][0]
		j := i
		var rest [][]string
		whole := false
		for ; j < len(paths) && paths[j][0] == seg; j++ {
			if len(paths[j]) == 1 {
				whole = true
			} else {
				rest = append(rest, paths[j][1:])
			}
		}
		i = j
		v, ok := obj[seg]
		if !ok {
			continue
		}
		mark := len(pr.path)
		pr.path = append(binary.AppendUvarint(pr.path, uint64(len(seg))), seg...)
		if whole {
			if t := pr.leaf(v); t != nil {
				out.Insert(ast.StringTerm(seg), t)
			}
		} else if child, ok := v.(map[string]any); ok {
			out.Insert(ast.StringTerm(seg), pr.prune(child, rest))
		}
		pr.path = pr.path[:mark]
	}
	return ast.NewTerm(out)
}

// leaf is v, the value at pr.path, converted (once); nil if it does not convert, which a plain part always does.
func (pr *pruner) leaf(v any) *ast.Term {
	if t, ok := pr.leaves[string(pr.path)]; ok {
		return t
	}
	t, err := sharedTerm(v)
	if err != nil {
		return nil
	}
	if pr.leaves == nil {
		pr.leaves = map[string]*ast.Term{}
	}
	pr.leaves[string(pr.path)] = t
	return t
}

// Converted is a JSON-shaped value converted to Rego once, to be placed in the Input of several admissions
// wherever a JSON-shaped value goes: the attestations of a cached verification, the same in every admission of
// the image, are converted once rather than once per admission. It is immutable and safe for concurrent use.
type Converted struct {
	t   *ast.Term
	sum *convertedSum
}

// convertedSum is a converted value's digest for the memo's keys, computed once however many admissions key on it.
type convertedSum struct {
	once sync.Once
	sum  [sha256.Size]byte
}

// Convert converts a JSON-shaped value (maps, slices, strings, numbers, booleans, null).
func Convert(v any) (Converted, error) {
	t, err := toTerm(v)
	if err != nil {
		return Converted{}, err
	}
	return Converted{t: t, sum: &convertedSum{}}, nil
}

// digest is the SHA-256 of the value's canonical encoding.
func (c Converted) digest() [sha256.Size]byte {
	if c.sum == nil { // not made by Convert: computed each time
		return valueDigest(c.t.Value)
	}
	c.sum.once.Do(func() { c.sum.sum = valueDigest(c.t.Value) })
	return c.sum.sum
}

// ParamsTerm converts effective parameters once, when configuration loads, not on every request.
func ParamsTerm(params map[string]any) (*ast.Term, error) {
	if params == nil {
		params = map[string]any{}
	}
	return toTerm(params)
}

// sharedTerms holds the conversions of subtrees that recur from one admission to the next, by the digest of their
// canonical encoding: a container's resources and securityContext, an object's labels, the same in a Deployment,
// its ReplicaSet and each of its Pods and across the workloads of a team, are converted once rather than per
// admission (a tenth of attest serve's allocation for its numbered Deployments). Converted values are never changed, so sharing them
// is safe, as a cached image's facts are shared (Converted).
var sharedTerms = newClockTable[*ast.Term](sharedTermsSize)

// sharedTermsSize bounds the shared conversions; maxSharedNodes and maxSharedEncoding leave larger subtrees to
// their admission, so what is kept stays under a few MiB whatever the objects.
const (
	sharedTermsSize   = 512
	maxSharedNodes    = 64
	maxSharedEncoding = 1 << 10
)

// sharedTerm is toTerm(v), taken from sharedTerms for an object or array whose encoding is short enough.
func sharedTerm(v any) (*ast.Term, error) {
	switch v.(type) {
	case map[string]any, []any:
	default: // a scalar converts without allocating, or to an interned term
		return toTerm(v)
	}
	budget := maxSharedNodes
	if !plainWithin(v, &budget) { // only types whose encoding is their conversion's, and few of them
		return toTerm(v)
	}
	enc := newEncoding()
	enc.goValue(v)
	key := sharedKey(enc)
	if t, ok := key.get(); ok {
		return t, nil
	}
	t, err := toTerm(v)
	if err != nil {
		return nil, err
	}
	return key.keep(t), nil
}

// newEncoding is a pooled encoder, empty, for sharedKey.
func newEncoding() *canonical {
	enc := encoders.Get().(*canonical)
	enc.b = enc.b[:0]
	return enc
}

// shareKey is a key in sharedTerms; a value too long to share has none (ok false), and is never found or kept.
type shareKey struct {
	sum [sha256.Size]byte
	ok  bool
}

// sharedKey is the key of what enc holds, and pools enc. Each kind of value shared is encoded under a tag of its
// own, so different kinds never meet under one key.
func sharedKey(enc *canonical) shareKey {
	var k shareKey
	if len(enc.b) <= maxSharedEncoding {
		k = shareKey{sum: sha256.Sum256(enc.b), ok: true}
	}
	encoders.Put(enc)
	return k
}

// get is the term kept under k.
func (k shareKey) get() (*ast.Term, bool) {
	if !k.ok {
		return nil, false
	}
	return sharedTerms.get(k.sum)
}

// keep keeps t under k (unless k is none) and returns it.
func (k shareKey) keep(t *ast.Term) *ast.Term {
	if k.ok {
		sharedTerms.add(k.sum, t)
	}
	return t
}

// sharedContainer is containerTerm(c), taken from sharedTerms when the container's securityContext and resources
// are small enough to share: the containers of a Deployment's revisions, its ReplicaSet's and its Pods' (each at
// its own path) recur from one admission to the next, as do sidecars across workloads.
func sharedContainer(c Container) (*ast.Term, error) {
	sc, res := c.Fields["securityContext"], c.Fields["resources"]
	budget := maxSharedNodes
	if !plainWithin(sc, &budget) || !plainWithin(res, &budget) {
		return containerTerm(c)
	}
	enc := newEncoding()
	enc.containers([]Container{c})
	key := sharedKey(enc)
	if t, ok := key.get(); ok {
		return t, nil
	}
	t, err := containerTerm(c)
	if err != nil {
		return nil, err
	}
	return key.keep(t), nil
}

// kindTerm is input.request.kind, the same for every admission of a kind: shared through sharedTerms.
func kindTerm(r Request) *ast.Term {
	enc := newEncoding()
	enc.tag('K')
	enc.str(r.Group)
	enc.str(r.Version)
	enc.str(r.Kind)
	key := sharedKey(enc)
	if t, ok := key.get(); ok {
		return t
	}
	return key.keep(ast.ObjectTerm(str("group", r.Group), str("version", r.Version), str("kind", r.Kind)))
}

// userTerm is input.request.user, the same for every admission of a user (a controller's service account makes
// most): shared through sharedTerms.
func userTerm(r Request) *ast.Term {
	enc := newEncoding()
	enc.tag('U')
	enc.str(r.Username)
	enc.length(len(r.Groups))
	for _, g := range r.Groups {
		enc.str(g)
	}
	key := sharedKey(enc)
	if t, ok := key.get(); ok {
		return t
	}
	groups := make([]*ast.Term, len(r.Groups))
	for i, g := range r.Groups {
		groups[i] = ast.StringTerm(g)
	}
	return key.keep(ast.ObjectTerm(str("username", r.Username), [2]*ast.Term{ast.InternedTerm("groups"), ast.ArrayTerm(groups...)}))
}

// namespaceTerm is input.namespace, the same for every admission in a namespace until its metadata changes:
// shared through sharedTerms when its encoding is short enough.
func namespaceTerm(ns Namespace) *ast.Term {
	enc := newEncoding()
	enc.tag('N')
	enc.str(ns.Name)
	enc.goValue(ns.Labels)
	enc.goValue(ns.Annotations)
	if ns.Production {
		enc.tag('t')
	} else {
		enc.tag('f')
	}
	key := sharedKey(enc)
	if t, ok := key.get(); ok {
		return t
	}
	return key.keep(ast.ObjectTerm(
		str("name", ns.Name),
		[2]*ast.Term{ast.InternedTerm("labels"), stringMap(ns.Labels)},
		[2]*ast.Term{ast.InternedTerm("annotations"), stringMap(ns.Annotations)},
		[2]*ast.Term{ast.InternedTerm("production"), ast.BooleanTerm(ns.Production)},
	))
}

// containerTerm converts one container of input.containers: what the input contract gives of it.
func containerTerm(c Container) (*ast.Term, error) {
	sc, err := sharedTerm(c.Fields["securityContext"])
	if err != nil {
		return nil, fmt.Errorf("%s.securityContext: %w", c.Path, err)
	}
	res, err := sharedTerm(c.Fields["resources"])
	if err != nil {
		return nil, fmt.Errorf("%s.resources: %w", c.Path, err)
	}
	return ast.ObjectTerm(
		str("path", c.Path), str("pod_path", c.PodPath), str("type", c.Type),
		str("name", c.Name), str("image", c.Image),
		[2]*ast.Term{ast.InternedTerm("securityContext"), sc},
		[2]*ast.Term{ast.InternedTerm("resources"), res},
	), nil
}

// toTerm converts JSON-shaped Go values (what decoding an object yields) to Rego terms. OPA's InterfaceToValue
// handles those directly but round-trips anything else (such as the typed images map) through encoding/json,
// which costs more than the rest of an admission, so typed maps are unpacked here.
func toTerm(v any) (*ast.Term, error) {
	switch x := v.(type) {
	case nil:
		return ast.NullTerm(), nil
	case Converted:
		return x.t, nil
	case map[string]any:
		if x == nil {
			return ast.NullTerm(), nil
		}
		if hasConverted(x) {
			terms := make([][2]*ast.Term, 0, len(x))
			for k, e := range x {
				t, err := toTerm(e)
				if err != nil {
					return nil, err
				}
				terms = append(terms, [2]*ast.Term{ast.InternedTerm(k), t})
			}
			return ast.ObjectTerm(terms...), nil
		}
	case map[string]map[string]any:
		return imagesTerm(x, nil)
	}
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(val), nil
}

// imagesTerm converts input.images, taking each image's facts from converted when it has them.
func imagesTerm(images map[string]map[string]any, converted map[string]Converted) (*ast.Term, error) {
	if images == nil {
		return ast.NullTerm(), nil
	}
	terms := make([][2]*ast.Term, 0, len(images))
	for image, facts := range images {
		t := converted[image].t
		if t == nil {
			var err error
			if t, err = toTerm(facts); err != nil {
				return nil, fmt.Errorf("%s: %w", image, err)
			}
		}
		terms = append(terms, [2]*ast.Term{ast.StringTerm(image), t})
	}
	return ast.ObjectTerm(terms...), nil
}

// hasConverted reports whether a value of m is Converted: such a map is converted entry by entry (a Converted
// value is supported as a value of a map, such as input.images[image].attestations).
func hasConverted(m map[string]any) bool {
	for _, v := range m {
		if _, ok := v.(Converted); ok {
			return true
		}
	}
	return false
}

func str(k, v string) [2]*ast.Term {
	return [2]*ast.Term{ast.InternedTerm(k), ast.InternedTerm(v)} // a value such as "CREATE" or "apps" is shared
}

func stringMap(m map[string]string) *ast.Term {
	terms := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		terms = append(terms, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
	}
	return ast.ObjectTerm(terms...)
}
