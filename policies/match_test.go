package policies_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/policies"
)

// TestMatchApplies covers each part of a match, and object selectors read from the decoded object as the API
// server's labels would be: a label whose value is not a string is absent.
func TestMatchApplies(t *testing.T) {
	tier := &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}}
	noDebug := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "debug", Operator: metav1.LabelSelectorOpDoesNotExist}}}
	hasOwner := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "owner", Operator: metav1.LabelSelectorOpExists}}}
	object := func(labels any) map[string]any {
		md := map[string]any{"name": "web"}
		if labels != nil {
			md["labels"] = labels
		}
		return map[string]any{"metadata": md}
	}
	tests := []struct {
		name     string
		spec     policies.MatchSpec
		kind, ns string
		nsLabels map[string]string
		obj      map[string]any
		want     bool
	}{
		{name: "empty match", kind: "Pod", ns: "shop", obj: object(nil), want: true},
		{name: "kind, any case", spec: policies.MatchSpec{Kinds: []string{"deployment"}}, kind: "Deployment", ns: "shop", obj: object(nil), want: true},
		{name: "other kind", spec: policies.MatchSpec{Kinds: []string{"Deployment"}}, kind: "Pod", ns: "shop", obj: object(nil)},
		{name: "namespace glob", spec: policies.MatchSpec{Namespaces: []string{"team-*"}}, kind: "Pod", ns: "team-a", obj: object(nil), want: true},
		{name: "namespace outside the globs", spec: policies.MatchSpec{Namespaces: []string{"team-*"}}, kind: "Pod", ns: "shop", obj: object(nil)},
		{name: "excluded wins", spec: policies.MatchSpec{Namespaces: []string{"team-*"}, ExcludedNamespaces: []string{"team-a"}}, kind: "Pod", ns: "team-a", obj: object(nil)},
		{name: "cluster-scoped ignores namespaces", spec: policies.MatchSpec{Namespaces: []string{"team-*"}}, kind: "Namespace", obj: object(nil), want: true},
		{name: "namespace selector", spec: policies.MatchSpec{NamespaceSelector: tier}, kind: "Pod", ns: "shop", nsLabels: map[string]string{"tier": "web"}, obj: object(nil), want: true},
		{name: "namespace selector unmet", spec: policies.MatchSpec{NamespaceSelector: tier}, kind: "Pod", ns: "shop", nsLabels: map[string]string{"tier": "db"}, obj: object(nil)},
		{name: "object label", spec: policies.MatchSpec{ObjectSelector: tier}, kind: "Pod", ns: "shop", obj: object(map[string]any{"tier": "web"}), want: true},
		{name: "object label differs", spec: policies.MatchSpec{ObjectSelector: tier}, kind: "Pod", ns: "shop", obj: object(map[string]any{"tier": "db"})},
		{name: "object without labels", spec: policies.MatchSpec{ObjectSelector: tier}, kind: "Pod", ns: "shop", obj: object(nil)},
		{name: "object without metadata", spec: policies.MatchSpec{ObjectSelector: noDebug}, kind: "Pod", ns: "shop", obj: map[string]any{}, want: true},
		{name: "labels not a map", spec: policies.MatchSpec{ObjectSelector: hasOwner}, kind: "Pod", ns: "shop", obj: object("owner=me")},
		{name: "DoesNotExist with the label", spec: policies.MatchSpec{ObjectSelector: noDebug}, kind: "Pod", ns: "shop", obj: object(map[string]any{"debug": "1"})},
		{name: "DoesNotExist without it", spec: policies.MatchSpec{ObjectSelector: noDebug}, kind: "Pod", ns: "shop", obj: object(map[string]any{"tier": "web"}), want: true},
		{name: "a non-string value is no label", spec: policies.MatchSpec{ObjectSelector: hasOwner}, kind: "Pod", ns: "shop", obj: object(map[string]any{"owner": 7})},
		{name: "nor for DoesNotExist", spec: policies.MatchSpec{ObjectSelector: noDebug}, kind: "Pod", ns: "shop", obj: object(map[string]any{"debug": true}), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := policies.NewMatch(tt.spec, "match")
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Applies(tt.kind, tt.ns, tt.nsLabels, policies.ObjectLabels(tt.obj)); got != tt.want {
				t.Errorf("Applies = %v, want %v", got, tt.want)
			}
		})
	}
	var none *policies.Match
	if !none.Applies("Pod", "shop", nil, policies.ObjectLabels(nil)) {
		t.Error("a nil match must apply everywhere")
	}
}
