package policies

import (
	"fmt"
	"path"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// MatchSpec is where a policy applies, as the policy documents' constraints say it: kinds, namespaces and
// excludedNamespaces (globs; excluded wins), and label selectors on the namespace and the object.
type MatchSpec struct {
	Kinds              []string              `json:"kinds,omitempty"`
	Namespaces         []string              `json:"namespaces,omitempty"`
	ExcludedNamespaces []string              `json:"excludedNamespaces,omitempty"`
	NamespaceSelector  *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	ObjectSelector     *metav1.LabelSelector `json:"objectSelector,omitempty"`
}

// Match is a validated MatchSpec.
type Match struct {
	kinds, namespaces, excluded []string
	nsSelector, objSelector     labels.Selector
}

// NewMatch validates spec; errors name the field under prefix.
func NewMatch(spec MatchSpec, prefix string) (*Match, error) {
	m := &Match{kinds: spec.Kinds, namespaces: spec.Namespaces, excluded: spec.ExcludedNamespaces}
	for field, globs := range map[string][]string{"namespaces": spec.Namespaces, "excludedNamespaces": spec.ExcludedNamespaces} {
		for i, g := range globs {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				return nil, fmt.Errorf("%s.%s[%d]: %q is not a namespace name or glob", prefix, field, i, g)
			}
		}
	}
	for i, k := range spec.Kinds {
		if k == "" || strings.ContainsAny(k, " /*") {
			return nil, fmt.Errorf("%s.kinds[%d]: %q is not a kind (e.g. Deployment)", prefix, i, k)
		}
	}
	var err error
	if spec.NamespaceSelector != nil {
		if m.nsSelector, err = metav1.LabelSelectorAsSelector(spec.NamespaceSelector); err != nil {
			return nil, fmt.Errorf("%s.namespaceSelector: %w", prefix, err)
		}
	}
	if spec.ObjectSelector != nil {
		if m.objSelector, err = metav1.LabelSelectorAsSelector(spec.ObjectSelector); err != nil {
			return nil, fmt.Errorf("%s.objectSelector: %w", prefix, err)
		}
	}
	return m, nil
}

// Applies reports whether a request for an object of kind in namespace falls in the match. A nil Match applies
// everywhere. Cluster-scoped objects (namespace "") are matched by kind and object labels only.
func (m *Match) Applies(kind, namespace string, nsLabels map[string]string, objLabels labels.Labels) bool {
	if m == nil {
		return true
	}
	if len(m.kinds) > 0 && !slices.ContainsFunc(m.kinds, func(k string) bool { return strings.EqualFold(k, kind) }) {
		return false
	}
	if namespace != "" {
		if globMatch(m.excluded, namespace) {
			return false
		}
		if len(m.namespaces) > 0 && !globMatch(m.namespaces, namespace) {
			return false
		}
		if m.nsSelector != nil && !m.nsSelector.Matches(labels.Set(nsLabels)) {
			return false
		}
	}
	return m.objSelector == nil || m.objSelector.Matches(objLabels)
}

// ObjectLabels are the labels of a decoded object (its metadata.labels) as a selector reads them, without copying
// them for each admission: string values only, as the API server's would be.
func ObjectLabels(obj map[string]any) labels.Labels {
	md, _ := obj["metadata"].(map[string]any)
	l, _ := md["labels"].(map[string]any)
	return objectLabels(l)
}

// objectLabels reads a decoded labels map: entries whose value is not a string are absent.
type objectLabels map[string]any

func (l objectLabels) Has(label string) bool {
	_, ok := l.Lookup(label)
	return ok
}

func (l objectLabels) Get(label string) string {
	v, _ := l.Lookup(label)
	return v
}

func (l objectLabels) Lookup(label string) (string, bool) {
	v, ok := l[label].(string)
	return v, ok
}

func globMatch(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}
