// Package verify runs Gatekeeper test suites (test.gatekeeper.sh/v1alpha1 Suite files) as `gator verify` does:
// the same files, the same assertions, the same output.
package verify

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/continuums/attest/policies/gatekeeper"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Group and Kind of Suite documents.
const (
	Group = "test.gatekeeper.sh"
	Kind  = "Suite"
)

var (
	ErrInvalidSuite         = errors.New("invalid Suite")
	ErrInvalidCase          = errors.New("invalid Case")
	ErrInvalidYAML          = errors.New("invalid yaml")
	ErrNumViolations        = errors.New("unexpected number of violations")
	ErrInvalidRegex         = errors.New("message contains invalid regular expression")
	ErrValidConstraint      = errors.New("constraint should have failed schema validation")
	ErrNoObjects            = errors.New("missing objects")
	ErrMultipleObjects      = errors.New("object file must contain exactly one object")
	ErrAddingTemplate       = errors.New("adding template")
	ErrAddingConstraint     = errors.New("adding constraint")
	ErrAddInventory         = errors.New("unable to add object to data.inventory")
	ErrUnsupportedExtension = errors.New("unsupported extension")
	ErrNotADirectory        = errors.New("not a directory")
	ErrInvalidFilter        = errors.New("invalid test filter")
	ErrExpansion            = errors.New("adding ExpansionTemplate")
)

// A Suite is a set of template and constraint tests.
type Suite struct {
	Tests []Test `json:"tests"`
	Skip  bool   `json:"skip"`

	// Path is the file the Suite was read from (in the file system given to ReadSuites); Name is that path as
	// the user wrote it, which is what results print.
	Path string `json:"-"`
	Name string `json:"-"`
}

// A Test instantiates a template and a constraint, and runs cases against them.
type Test struct {
	Name       string  `json:"name"`
	Template   string  `json:"template"`
	Constraint string  `json:"constraint"`
	Expansion  string  `json:"expansion"`
	Cases      []*Case `json:"cases,omitempty"`
	// Invalid: the constraint must fail schema validation.
	Invalid bool `json:"invalid"`
	Skip    bool `json:"skip"`
}

// A Case reviews one object (or AdmissionReview) with inventory, and checks assertions on the violations.
type Case struct {
	Name       string       `json:"name"`
	Object     string       `json:"object"`
	Inventory  []string     `json:"inventory"`
	Assertions []*Assertion `json:"assertions"`
	Skip       bool         `json:"skip"`
}

// An Assertion: how many violations (an integer, "yes" for at least one, "no" for none; default "yes")
// have a message matching the regular expression Message (any message when unset).
type Assertion struct {
	Violations *intstr.IntOrString `json:"violations,omitempty"`
	Message    *string             `json:"message,omitempty"`
}

// Check applies the assertion to the messages of a review's violations.
func (a *Assertion) Check(messages []string) error {
	var re *regexp.Regexp
	if a.Message != nil {
		var err error
		if re, err = regexp.Compile(*a.Message); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRegex, err)
		}
	}
	matching := int32(0)
	for _, m := range messages {
		if re == nil || re.MatchString(m) {
			matching++
		}
	}
	want := intstr.FromString("yes")
	if a.Violations != nil {
		want = *a.Violations
	}
	if err := a.checkCount(want, matching); err != nil {
		return fmt.Errorf("%w: got messages %v", err, messages)
	}
	return nil
}

func (a *Assertion) checkCount(want intstr.IntOrString, matching int32) error {
	containing := ""
	if a.Message != nil {
		containing = fmt.Sprintf(" containing %q", *a.Message)
	}
	invalid := fmt.Errorf(`%w: assertion.violation, if set, must be a nonnegative integer, "yes", or "no"`, ErrInvalidYAML)
	switch {
	case want.Type == intstr.Int && want.IntVal < 0:
		return invalid
	case want.Type == intstr.Int && want.IntVal != matching:
		return fmt.Errorf("%w: got %d violations%s but want exactly %d", ErrNumViolations, matching, containing, want.IntVal)
	case want.Type == intstr.Int:
		return nil
	case want.StrVal == "yes" && matching == 0:
		return fmt.Errorf("%w: got %d violations%s but want at least %d", ErrNumViolations, matching, containing, 1)
	case want.StrVal == "no" && matching > 0:
		return fmt.Errorf("%w: got %d violations%s but want none", ErrNumViolations, matching, containing)
	case want.StrVal == "yes" || want.StrVal == "no":
		return nil
	default:
		return invalid
	}
}

// ReadSuites returns the Suites selected by target, a path in fsys: a file, a directory (its files), or with
// recursive a directory and all below it. Files that are not Suites are skipped; a YAML file that does not parse
// is an error. name is target as the user wrote it, the prefix of each Suite's Name.
func ReadSuites(fsys fs.FS, target, name string, recursive bool) ([]*Suite, error) {
	info, err := fs.Stat(fsys, target)
	if err != nil {
		return nil, err
	}
	var files []string
	switch {
	case !info.IsDir() && recursive:
		return nil, fmt.Errorf("can only recursively traverse directories, %w: %q", ErrNotADirectory, target)
	case !info.IsDir():
		if !isYAML(target) {
			return nil, fmt.Errorf("%w: %q", ErrUnsupportedExtension, path.Ext(target))
		}
		files = []string{target}
	case recursive:
		err = fs.WalkDir(fsys, target, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && isYAML(p) {
				files = append(files, p)
			}
			return nil
		})
	default:
		var entries []fs.DirEntry
		entries, err = fs.ReadDir(fsys, target)
		for _, e := range entries {
			if !e.IsDir() && isYAML(e.Name()) {
				files = append(files, path.Join(target, e.Name()))
			}
		}
	}
	if err != nil {
		return nil, err
	}
	var suites []*Suite
	for _, f := range files {
		s, err := readSuite(fsys, f)
		if err != nil {
			return nil, err
		}
		if s == nil {
			continue
		}
		s.Path = f
		rest := strings.TrimPrefix(f, target)
		if strings.HasSuffix(name, "/") {
			rest = strings.TrimPrefix(rest, "/")
		}
		s.Name = name + rest
		suites = append(suites, s)
	}
	sort.Slice(suites, func(i, j int) bool { return suites[i].Path < suites[j].Path })
	return suites, nil
}

func isYAML(p string) bool {
	ext := path.Ext(p)
	return ext == ".yaml" || ext == ".yml"
}

// readSuite returns nil for a YAML file that is not a Suite.
func readSuite(fsys fs.FS, p string) (*Suite, error) {
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("reading file %q: %w", p, err)
	}
	head := unstructured.Unstructured{Object: map[string]any{}}
	if err := yaml.Unmarshal(data, head.Object); err != nil {
		return nil, fmt.Errorf("%w: parsing yaml file %q: %w", ErrInvalidYAML, p, err)
	}
	if gvk := head.GroupVersionKind(); gvk.Group != Group || gvk.Kind != Kind {
		return nil, nil // not a Suite
	}
	s := &Suite{}
	if err := gatekeeper.UnmarshalYAML(data, s); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidYAML, p, err)
	}
	return s, nil
}
