package analysis

import (
	"strings"
	"testing"
)

func TestPatches(t *testing.T) {
	w := func(op, path string, v any) PatchWrite { return PatchWrite{Op: op, Path: path, Value: v} }
	cases := []struct {
		name    string
		patches map[string][]PatchWrite
		want    []string // messages
		detail  string   // in the first conflict's details
	}{
		{"one path, different values", map[string][]PatchWrite{"a": {w("add", "/metadata/labels/team", "x")}, "b": {w("add", "/metadata/labels/team", "y")}},
			[]string{"a and b both patch /metadata/labels/team"}, "a /metadata/labels/team (add) and b /metadata/labels/team (add), different values"},
		{"one path, the same value", map[string][]PatchWrite{"a": {w("add", "/x", 1)}, "b": {w("add", "/x", 1)}},
			[]string{"a and b both patch /x"}, ", the same value"},
		{"a path inside the other", map[string][]PatchWrite{"a": {w("add", "/spec/resources", map[string]any{})}, "b": {w("replace", "/spec/resources/limits", "1")}},
			[]string{"a and b both patch /spec/resources"}, "a /spec/resources (add) and b /spec/resources/limits (replace)"},
		{"siblings sharing a prefix are apart", map[string][]PatchWrite{"a": {w("add", "/metadata/label", 1)}, "b": {w("add", "/metadata/labels", 1)}}, nil, ""},
		{"one policy writing a path twice is not a clash", map[string][]PatchWrite{"a": {w("add", "/x", 1), w("replace", "/x", 2)}}, nil, ""},
		{"three policies, two pairs", map[string][]PatchWrite{"a": {w("add", "/x", 1)}, "b": {w("add", "/x/y", 1)}, "c": {w("add", "/z", 1)}, "d": {w("remove", "/x", nil)}},
			[]string{"a and b both patch /x", "a and d both patch /x", "b and d both patch /x/y"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Patches([]Observation{{Object: "Pod shop/web (p.yaml:1)", Patches: c.patches}})
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %d conflicts", got, len(c.want))
			}
			for i, m := range c.want {
				if got[i].Kind != "patch" || !strings.HasPrefix(got[i].Message, m+":") {
					t.Errorf("conflict %d: %q, want it to start with %q", i, got[i].Message, m)
				}
			}
			if c.detail != "" && !strings.Contains(strings.Join(got[0].Details, "\n"), c.detail) {
				t.Errorf("details %q lack %q", got[0].Details, c.detail)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	obs := func(findings ...map[string][]string) []Observation {
		out := make([]Observation, len(findings))
		for i, f := range findings {
			out[i] = Observation{Object: string(rune('A' + i)), Findings: f}
		}
		return out
	}
	cases := []struct {
		name string
		obs  []Observation
		want []string // "custom=library"
	}{
		{"same objects, same paths", obs(map[string][]string{"mine": {"spec.c[0]"}, "lib": {"spec.c[0]"}}, map[string][]string{}), []string{"mine=lib"}},
		{"a finding more for one side", obs(map[string][]string{"mine": {"spec.c[0]"}, "lib": {"spec.c[0]"}}, map[string][]string{"lib": {""}}), nil},
		{"other paths on the same objects", obs(map[string][]string{"mine": {"spec.c[0]"}, "lib": {"spec.c[1]"}}), nil},
		{"neither reports: nothing to compare", obs(map[string][]string{}), nil},
		{"repeated paths count once", obs(map[string][]string{"mine": {"x", "x"}, "lib": {"x"}}), []string{"mine=lib"}},
		{"two library policies match", obs(map[string][]string{"mine": {"x"}, "lib": {"x"}, "lib2": {"x"}}), []string{"mine=lib", "mine=lib2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Duplicates(c.obs, []string{"mine"}, []string{"lib", "lib2"})
			var pairs []string
			for _, g := range got {
				pairs = append(pairs, strings.Join(g.Policies, "="))
			}
			if strings.Join(pairs, ",") != strings.Join(c.want, ",") {
				t.Fatalf("got %v, want %v", pairs, c.want)
			}
		})
	}
}
