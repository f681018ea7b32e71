package policies

import (
	"context"
	"reflect"
	"testing"
)

const memoPolicy = `# METADATA
# title: Memo probe
# custom:
#   name: memo-probe
#   severity: high
#   parameters:
#     blocked: {type: array, items: {type: string}, default: [root]}
package custom.memo_probe

import rego.v1

violation contains msg if {
	some c in input.containers
	c.securityContext.privileged
	msg := sprintf("%s is privileged (asked by %s)", [c.name, input.request.user.username])
}

violation contains "outside the window" if input.request.timestamp_ns > 1000

violation contains "production needs an owner" if {
	input.namespace.labels.environment == "production"
	not input.resource.metadata.annotations.owner
}

violation contains sprintf("%s is not signed", [img]) if {
	some img, facts in input.images
	not facts.signature.verified
}

violation contains sprintf("user %s is blocked", [u]) if {
	some u in input.params.blocked
	input.request.user.username == u
}
`

func memoInput() Input {
	return Input{
		Request:   Request{Operation: "CREATE", Kind: "Pod", Namespace: "shop", Name: "web-1", UID: "uid-1", Username: "alice", TimestampNS: 10},
		Resource:  map[string]any{"metadata": map[string]any{"name": "web-1", "uid": "uid-1", "annotations": map[string]any{"owner": "team-a"}}},
		Namespace: Namespace{Name: "shop", Labels: map[string]string{"environment": "production"}},
		Containers: []Container{{Path: "spec.containers[0]", Name: "app", Image: "gcr.io/company/app:1", Type: "container",
			Fields: map[string]any{"name": "app", "image": "gcr.io/company/app:1", "securityContext": map[string]any{"privileged": false}}}},
		Images: map[string]map[string]any{"gcr.io/company/app:1": {"signature": map[string]any{"verified": true}}},
	}
}

// The memo reuses a result only for an input the policy cannot tell apart from an earlier one; every change to
// what it reads (the requester, a namespace label, the request time, an object field, an image fact, a
// parameter) misses, and a hit gives exactly what evaluating would.
func TestMemoHitsOnlyWhatThePolicyCannotTellApart(t *testing.T) {
	ctx := context.Background()
	engine, err := Compile(ctx, []Source{{Name: "memo.rego", Text: memoPolicy}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := engine.Lookup("memo-probe")
	c, err := p.compiled()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pathsString(c.memo.paths), "input.containers, input.images, input.namespace.labels.environment, input.params.blocked, input.request.timestamp_ns, input.request.user.username, input.resource.metadata.annotations.owner"; c.memo.all || got != want {
		t.Fatalf("paths %q (all: %t), want %q", got, c.memo.all, want)
	}
	defaults := p.DefaultSettings()
	blockBob, err := p.NewSettings(ModeEnforce, map[string]any{"blocked": []any{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		change   func(*Input)
		settings Settings
		hit      bool
	}{
		{"another pod of the same template (name, uid)", func(in *Input) {
			in.Request.Name, in.Request.UID = "web-2", "uid-2"
			in.Resource = map[string]any{"metadata": map[string]any{"name": "web-2", "uid": "uid-2", "annotations": map[string]any{"owner": "team-a"}}}
		}, defaults, true},
		{"an annotation the policy does not read", func(in *Input) {
			in.Resource = map[string]any{"metadata": map[string]any{"name": "web-1", "annotations": map[string]any{"owner": "team-a", "other": "x"}}}
		}, defaults, true},
		{"another user", func(in *Input) { in.Request.Username = "bob" }, defaults, false},
		{"another namespace label", func(in *Input) { in.Namespace.Labels = map[string]string{"environment": "staging"} }, defaults, false},
		{"a label removed", func(in *Input) { in.Namespace.Labels = nil }, defaults, false},
		{"another request time", func(in *Input) { in.Request.TimestampNS = 2000 }, defaults, false},
		{"the annotation it reads", func(in *Input) {
			in.Resource = map[string]any{"metadata": map[string]any{"name": "web-1", "annotations": map[string]any{}}}
		}, defaults, false},
		{"a container field", func(in *Input) {
			in.Containers[0].Fields = map[string]any{"name": "app", "image": "gcr.io/company/app:1", "securityContext": map[string]any{"privileged": true}}
		}, defaults, false},
		{"an image fact", func(in *Input) {
			in.Images = map[string]map[string]any{"gcr.io/company/app:1": {"signature": map[string]any{"verified": false}}}
		}, defaults, false},
		{"a number written differently", func(in *Input) {
			in.Images = map[string]map[string]any{"gcr.io/company/app:1": {"signature": map[string]any{"verified": true, "n": 1.0}}}
		}, defaults, false},
		{"other parameters", func(*Input) {}, blockBob, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.noMemo.Store(false)
			c.memo.cache.purge()
			base, err := NewDocument(memoInput())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Eval(ctx, base, defaults); err != nil {
				t.Fatal(err)
			}
			in := memoInput()
			in.Containers = append([]Container(nil), in.Containers...)
			tc.change(&in)
			doc, err := NewDocument(in)
			if err != nil {
				t.Fatal(err)
			}
			_, hit := c.memo.cache.get(c.memo.key(doc, tc.settings))
			if hit != tc.hit {
				t.Errorf("memo hit %t, want %t", hit, tc.hit)
			}
			got, err := p.Eval(ctx, doc, tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			p.noMemo.Store(true)
			fresh, _ := NewDocument(in)
			want, err := p.Eval(ctx, fresh, tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("with the memo %v, evaluated %v", got, want)
			}
		})
	}
}

func TestReadPaths(t *testing.T) {
	cases := []struct {
		name, body string
		want       string
		all        bool
	}{
		{"constant paths, the shortest kept", "violation contains 1 if { input.resource.metadata.name; input.resource.metadata }", "input.resource.metadata", false},
		{"a variable ends the path", "violation contains 1 if { some k; input.resource[k] == 1; input.images[k].digest }", "input.images, input.resource", false},
		{"input as a whole", "violation contains 1 if { x := input; x.a }", "", true},
		{"input indexed by a variable", "violation contains 1 if { some k; input[k] }", "", true},
		{"input replaced with with", "violation contains 1 if { data.custom.r.inner with input as {} }\ninner if true", "", true},
		{"nothing from input", "violation contains 1 if { 1 == 2 }", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "# METADATA\n# title: t\n# custom:\n#   name: r\npackage custom.r\n\nimport rego.v1\n\n" + tc.body + "\n"
			engine, err := Compile(context.Background(), []Source{{Name: "r.rego", Text: src}})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := engine.Lookup("r")
			c, _ := p.compiled()
			if got := pathsString(c.memo.paths); c.memo.all != tc.all || got != tc.want {
				t.Errorf("paths %q (all: %t), want %q (all: %t)", got, c.memo.all, tc.want, tc.all)
			}
		})
	}
}

// A part keyed from its decoded JSON encodes exactly as its conversion does, so the memo's key does not depend on
// whether a policy converted the part first.
func TestRawPartsEncodeAsTheirConversion(t *testing.T) {
	conv, err := Convert(map[string]any{"predicate_type": "https://slsa.dev/provenance/v1", "verified": true})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"null":        nil,
		"booleans":    []any{true, false},
		"numbers":     []any{0.0, 1.5, -3.0, 1e21, 1e-7, 42, int64(-7)},
		"strings":     []any{"", "a", "ünïcode", "with \"quotes\""},
		"object":      map[string]any{"b": 1.0, "a": []any{"x", map[string]any{"z": nil, "y": "w"}}, "": "empty key"},
		"string maps": map[string]string{"k2": "v2", "k1": "v1"},
		"string list": []string{"b", "a"},
		"images":      map[string]map[string]any{"b:1": {"digest": "sha256:1"}, "a:1": {"attestations": conv}},
		"nil maps":    []any{map[string]any(nil), map[string]map[string]any(nil), map[string]string(nil), []any(nil), []string(nil)},
		"empty":       map[string]any{},
	}
	for name, v := range values {
		term, err := toTerm(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var fromGo, fromAST canonical
		fromGo.goValue(v)
		fromAST.value(term.Value)
		if string(fromGo.b) != string(fromAST.b) {
			t.Errorf("%s: decoded JSON encodes as %q, its conversion as %q", name, fromGo.b, fromAST.b)
		}
	}
	// through a document: the same digest whether or not a policy converted the part first
	in := memoInput()
	in.Resource["spec"] = map[string]any{"template": map[string]any(nil), "images": map[string]any{"app": conv}}
	fresh, err := NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	converted, err := NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	converted.term(partResource)
	converted.rawParts = 0
	for _, path := range [][]string{{"resource"}, {"resource", "metadata", "annotations"}, {"resource", "metadata", "missing"}, {"resource", "spec", "template"},
		{"resource", "spec", "images", "app"}, {"images"}, {"images", "gcr.io/company/app:1", "signature"}} {
		if a, b := fresh.digest(0, path), converted.digest(0, path); a != b {
			t.Errorf("%v: digest from decoded JSON %x, from the conversion %x", path, a, b)
		}
		fresh.digests, converted.digests = nil, nil
	}
}

// input.containers is keyed from the extracted containers: equal lists share a digest, and lists whose conversions
// differ (a field, a nil securityContext against an empty one) do not; fields a converted container does not hold
// (environment, ports) are not keyed.
func TestContainersDigest(t *testing.T) {
	digest := func(mutate func(*Container)) [32]byte {
		in := memoInput()
		c := in.Containers[0]
		c.Fields = map[string]any{"name": "app", "securityContext": map[string]any{"privileged": false}}
		if mutate != nil {
			mutate(&c)
		}
		in.Containers = []Container{c}
		d, err := NewDocument(in)
		if err != nil {
			t.Fatal(err)
		}
		return d.digest(0, []string{"containers"})
	}
	base := digest(nil)
	if digest(nil) != base {
		t.Fatal("equal containers have different digests")
	}
	for name, m := range map[string]func(*Container){
		"path":                  func(c *Container) { c.Path = "spec.containers[1]" },
		"image":                 func(c *Container) { c.Image = "gcr.io/company/app:2" },
		"name":                  func(c *Container) { c.Name = "sidecar" },
		"securityContext field": func(c *Container) { c.Fields["securityContext"] = map[string]any{"privileged": true} },
		"nil securityContext":   func(c *Container) { c.Fields["securityContext"] = map[string]any(nil) },
		"empty securityContext": func(c *Container) { c.Fields["securityContext"] = map[string]any{} },
		"resources":             func(c *Container) { c.Fields["resources"] = map[string]any{"limits": map[string]any{"cpu": "1"}} },
	} {
		if digest(m) == base {
			t.Errorf("%s: changed containers share the digest", name)
		}
	}
	// What input.containers does not hold does not key it: policies reading it cannot tell.
	for name, m := range map[string]func(*Container){
		"environment":          func(c *Container) { c.Fields["env"] = []any{map[string]any{"name": "A", "value": "1"}} },
		"ports":                func(c *Container) { c.Fields["ports"] = []any{map[string]any{"containerPort": int64(80)}} },
		"name in the fields":   func(c *Container) { c.Fields["name"] = "other" }, // the extracted Name is what it holds
		"no resources or null": func(c *Container) { c.Fields["resources"] = nil },
	} {
		if digest(m) != base {
			t.Errorf("%s: containers equal to a policy have different digests", name)
		}
	}
	if digest(func(c *Container) { c.Fields["securityContext"] = map[string]any(nil) }) == digest(func(c *Container) { c.Fields["securityContext"] = map[string]any{} }) {
		t.Error("a nil and an empty securityContext (null and {} to a policy) share a digest")
	}
}

// input.images is keyed from the digests of its images' converted facts when every image has them: equal images
// share a digest, and a different image, fact or set of images does not; an image without converted facts keys the
// whole map as decoded JSON, which never shares a digest with the digests' encoding.
func TestImagesDigest(t *testing.T) {
	facts := func(verified bool) map[string]any {
		return map[string]any{"registry": "gcr.io", "signature": map[string]any{"verified": verified}}
	}
	convert := func(f map[string]any) Converted {
		c, err := Convert(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	digest := func(images map[string]map[string]any, converted bool) [32]byte {
		in := memoInput()
		in.Images, in.ImageTerms = images, nil
		if converted {
			in.ImageTerms = map[string]Converted{}
			for image, f := range images {
				in.ImageTerms[image] = convert(f)
			}
		}
		d, err := NewDocument(in)
		if err != nil {
			t.Fatal(err)
		}
		return d.digest(0, []string{"images"})
	}
	two := map[string]map[string]any{"gcr.io/a:1": facts(true), "gcr.io/b:1": facts(true)}
	base := digest(two, true)
	if digest(map[string]map[string]any{"gcr.io/b:1": facts(true), "gcr.io/a:1": facts(true)}, true) != base {
		t.Fatal("equal images have different digests")
	}
	for name, images := range map[string]map[string]map[string]any{
		"a fact":        {"gcr.io/a:1": facts(true), "gcr.io/b:1": facts(false)},
		"an image name": {"gcr.io/a:1": facts(true), "gcr.io/c:1": facts(true)},
		"one image":     {"gcr.io/a:1": facts(true)},
		"no image":      {},
	} {
		if digest(images, true) == base {
			t.Errorf("%s changed: the images share the digest", name)
		}
	}
	if digest(two, false) == base {
		t.Error("images without converted facts share the digests' encoding")
	}
	if digest(nil, false) == digest(map[string]map[string]any{}, true) {
		t.Error("no images map and an empty one (null and {} to a policy) share a digest")
	}
	// one image without converted facts: the whole map is keyed as decoded JSON, as its conversion would be
	in := memoInput()
	in.Images = two
	in.ImageTerms = map[string]Converted{"gcr.io/a:1": convert(two["gcr.io/a:1"])}
	d, err := NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	var c canonical
	if c.imageDigests(d.in) || len(c.b) != 0 {
		t.Errorf("images keyed from digests with an image unconverted (wrote %q)", c.b)
	}
	if d.digest(0, []string{"images"}) != digest(two, false) {
		t.Error("images with one converted image key otherwise than as decoded JSON")
	}
	// the digest of a converted value is its canonical encoding's
	conv := convert(facts(true))
	if conv.digest() != valueDigest(conv.t.Value) || (Converted{t: conv.t}).digest() != conv.digest() {
		t.Error("a converted value's digest is not its encoding's")
	}
}

// input.request and input.namespace are keyed from their Go fields: every path below them encodes as the value at
// that path of their conversion, or as undefined where the conversion has nothing.
func TestRequestAndNamespaceFieldsEncodeAsTheirConversion(t *testing.T) {
	full := Input{
		Request: Request{UID: "u-1", Operation: "CREATE", Group: "apps", Version: "v1", Kind: "Deployment", SubResource: "scale",
			Namespace: "shop", Name: "web", DryRun: true, Username: "alice", Groups: []string{"dev", "system:authenticated"},
			UserUID: "42", Extra: map[string][]string{"amr": {"mfa"}}, TimestampNS: 1733300000123456789},
		Namespace: Namespace{Name: "shop", Labels: map[string]string{"team": "a", "env": "prod"}, Annotations: map[string]string{"x": "y"}, Production: true},
	}
	paths := [][]string{
		{"request", "uid"}, {"request", "operation"}, {"request", "kind"}, {"request", "kind", "kind"}, {"request", "kind", "group"},
		{"request", "kind", "version"}, {"request", "kind", "missing"}, {"request", "kind", "kind", "below"}, {"request", "subresource"},
		{"request", "namespace"}, {"request", "name"}, {"request", "dry_run"}, {"request", "user"}, {"request", "user", "username"},
		{"request", "user", "groups"}, {"request", "user", "groups", "0"}, {"request", "user", "uid"}, {"request", "timestamp_ns"},
		{"request", "background"}, {"request", "options"}, {"request", "missing"}, {"request", "operation", "below"},
		{"namespace", "name"}, {"namespace", "labels"}, {"namespace", "labels", "team"}, {"namespace", "labels", "missing"},
		{"namespace", "labels", "team", "below"}, {"namespace", "annotations"}, {"namespace", "annotations", "x"},
		{"namespace", "production"}, {"namespace", "missing"},
	}
	for name, in := range map[string]Input{"every field set": full, "every field empty": {}} {
		doc, err := NewDocument(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			part := partRequest
			if path[0] == "namespace" {
				part = partNamespace
			}
			v, defined, ok := doc.fieldAt(part, path[1:])
			if !ok {
				t.Fatalf("%s: %v is not read from the fields", name, path)
			}
			var fromGo, fromAST canonical
			fromGo.fieldValue(v, defined)
			fromAST.termAt(doc.term(part).Value, path[1:])
			if string(fromGo.b) != string(fromAST.b) {
				t.Errorf("%s: %v encodes from the fields as %q, from the conversion as %q", name, path, fromGo.b, fromAST.b)
			}
		}
		if _, _, ok := doc.fieldAt(partRequest, nil); ok {
			t.Errorf("%s: the whole request was read from the fields", name)
		}
	}
}
