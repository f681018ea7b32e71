package cedar

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/continuums/attest/policies"
)

// A TestFile is a YAML of Cedar test cases (`attest policy test`, beside Rego tests): the .cedar files it tests,
// relative to it, and requests with the decision expected of them.
type TestFile struct {
	Policies []string   `json:"policies"`
	Cases    []TestCase `json:"cases"`
}

// A TestCase is one admission request and its expected decision.
type TestCase struct {
	Name     string      `json:"name"`
	Request  TestRequest `json:"request"`
	Decision string      `json:"decision"` // allow or deny
	// Reasons, when set, are the ids of the deciding policies, in any order.
	Reasons []string `json:"reasons,omitempty"`
	line    int
}

// TestRequest is the admission request of a test case.
type TestRequest struct {
	Operation string `json:"operation"`
	User      struct {
		Username string              `json:"username"`
		UID      string              `json:"uid,omitempty"`
		Groups   []string            `json:"groups,omitempty"`
		Extra    map[string][]string `json:"extra,omitempty"`
	} `json:"user"`
	Namespace struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
		// Production defaults to the label environment=production, ATTEST's default production selector.
		Production *bool `json:"production,omitempty"`
	} `json:"namespace"`
	// Time is the request time (RFC 3339).
	Time   string `json:"time"`
	DryRun bool   `json:"dryRun,omitempty"`
	// Object and OldObject are the objects inline; ObjectFile and OldObjectFile name YAML files beside the test.
	Object        map[string]any `json:"object,omitempty"`
	ObjectFile    string         `json:"objectFile,omitempty"`
	OldObject     map[string]any `json:"oldObject,omitempty"`
	OldObjectFile string         `json:"oldObjectFile,omitempty"`
	// Approval sets the attest.continuu.ms/approval-id annotation on the object(s).
	Approval string         `json:"approval,omitempty"`
	Options  map[string]any `json:"options,omitempty"`
}

// A TestResult is one case's outcome.
type TestResult struct {
	Name  string
	File  string
	Line  int
	Pass  bool
	Error string
}

// RunTestFile runs the cases of one test file against the policies it names, each validated against the schema.
func RunTestFile(path string, o Options) ([]TestResult, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tf, err := readTestFile(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(tf.Policies) == 0 {
		return nil, fmt.Errorf("%s: policies: name the .cedar files under test", path)
	}
	dir := filepath.Dir(path)
	srcs := make([]Source, 0, len(tf.Policies))
	for _, p := range tf.Policies {
		text, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return nil, fmt.Errorf("%s: policies: %w", path, err)
		}
		srcs = append(srcs, Source{Name: filepath.Join(dir, p), Text: string(text)})
	}
	set, err := Parse(srcs...)
	if err != nil {
		return nil, err
	}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	out := make([]TestResult, 0, len(tf.Cases))
	for i, c := range tf.Cases {
		r := TestResult{Name: c.Name, File: path, Line: c.line}
		if r.Name == "" {
			r.Name = fmt.Sprintf("cases[%d]", i)
		}
		if err := c.run(set, dir, o); err != nil {
			r.Error = err.Error()
		} else {
			r.Pass = true
		}
		out = append(out, r)
	}
	return out, nil
}

// readTestFile decodes strictly (an unknown field is an error) and keeps each case's line.
func readTestFile(raw []byte) (*TestFile, error) {
	var tf TestFile
	if err := sigsyaml.UnmarshalStrict(raw, &tf); err != nil {
		return nil, err
	}
	var node yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&node); err == nil && len(node.Content) == 1 {
		root := node.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "cases" {
				for j, c := range root.Content[i+1].Content {
					if j < len(tf.Cases) {
						tf.Cases[j].line = c.Line
					}
				}
			}
		}
	}
	return &tf, nil
}

func (c TestCase) run(set *Set, dir string, o Options) error {
	want := strings.ToLower(c.Decision)
	if want != "allow" && want != "deny" {
		return fmt.Errorf("decision: %q is neither allow nor deny", c.Decision)
	}
	in, err := c.Request.input(dir)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	d, err := set.Decide(o, in)
	if err != nil {
		return err
	}
	got := "allow"
	if !d.Allowed {
		got = "deny"
	}
	if len(d.failed) > 0 {
		got = "deny"
		d.Reasons = append(d.Reasons, d.failed...)
	}
	if got != want {
		return fmt.Errorf("decision %s, want %s (deciding policies: %s; errors: %s)", got, want, strings.Join(d.Reasons, ", "), strings.Join(d.Errors, "; "))
	}
	if c.Reasons != nil {
		a, b := slices.Clone(d.Reasons), slices.Clone(c.Reasons)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			return fmt.Errorf("decided by %v, want %v", a, b)
		}
	}
	return nil
}

// input is the pipeline input of a test request.
func (r TestRequest) input(dir string) (*policies.Input, error) {
	obj, err := object(r.Object, r.ObjectFile, dir)
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	old, err := object(r.OldObject, r.OldObjectFile, dir)
	if err != nil {
		return nil, fmt.Errorf("oldObject: %w", err)
	}
	if r.Approval != "" {
		annotate(obj, r.Approval)
		annotate(old, r.Approval)
	}
	if r.Time == "" {
		return nil, errors.New("time: required (RFC 3339): Cedar policies read the request time, never the clock")
	}
	t, err := time.Parse(time.RFC3339, r.Time)
	if err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	op := strings.ToUpper(r.Operation)
	if _, ok := Actions[op]; !ok {
		return nil, fmt.Errorf("operation: %q is not CREATE, UPDATE, DELETE or CONNECT", r.Operation)
	}
	src := obj
	if op == "DELETE" {
		src = old
	}
	if src == nil {
		return nil, errors.New("object (oldObject on DELETE): required")
	}
	apiVersion, _ := src["apiVersion"].(string)
	kind, _ := src["kind"].(string)
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	md, _ := src["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns := r.Namespace.Name
	if ns == "" {
		ns, _ = md["namespace"].(string)
	}
	prod := r.Namespace.Labels["environment"] == "production"
	if r.Namespace.Production != nil {
		prod = *r.Namespace.Production
	}
	return &policies.Input{
		Request: policies.Request{UID: "test", Operation: op, Group: group, Version: version, Kind: kind, Namespace: ns, Name: name,
			DryRun: r.DryRun, Username: r.User.Username, Groups: r.User.Groups, UserUID: r.User.UID, Extra: r.User.Extra,
			Options: r.Options, TimestampNS: t.UnixNano()},
		Resource:    obj,
		OldResource: old,
		Namespace:   policies.Namespace{Name: ns, Labels: r.Namespace.Labels, Production: prod},
	}, nil
}

func object(inline map[string]any, file, dir string) (map[string]any, error) {
	if file == "" {
		return inline, nil
	}
	if inline != nil {
		return nil, errors.New("give the object inline or as a file, not both")
	}
	raw, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := sigsyaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

func annotate(obj map[string]any, approval string) {
	if obj == nil {
		return
	}
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		obj["metadata"] = md
	}
	a, _ := md["annotations"].(map[string]any)
	if a == nil {
		a = map[string]any{}
		md["annotations"] = a
	}
	a[ApprovalAnnotation] = approval
}
