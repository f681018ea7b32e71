package analysis

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Observation is what the pipeline made of one example object: where each policy reported and what each
// mutating policy's patch wrote. Patches and duplicated checks show on objects, not in the Rego text.
type Observation struct {
	// Object names it for the reader: "Deployment shop/web (deploy.yaml:1)".
	Object string
	// Findings are each reporting policy's finding paths ("" for the whole object).
	Findings map[string][]string
	// Patches are each mutating policy's JSON Patch operations.
	Patches map[string][]PatchWrite
}

// PatchWrite is one JSON Patch operation as a conflict reads it.
type PatchWrite struct {
	Op, Path string
	Value    any
}

// Patches finds two mutating policies whose patches write one path, or one a path inside the other's, on the
// same object: the result depends on which runs last. One conflict per pair of policies, with every overlap in
// its details.
func Patches(obs []Observation) []Conflict {
	type pair struct{ a, b string }
	details := map[pair][]string{}
	first := map[pair]string{} // the first overlapping path, for the message
	for _, o := range obs {
		names := slices.Sorted(maps.Keys(o.Patches))
		for i, a := range names {
			for _, b := range names[i+1:] {
				for _, wa := range o.Patches[a] {
					for _, wb := range o.Patches[b] {
						if !overlaps(wa.Path, wb.Path) {
							continue
						}
						if _, seen := first[pair{a, b}]; !seen {
							first[pair{a, b}] = wa.Path
						}
						details[pair{a, b}] = append(details[pair{a, b}], fmt.Sprintf("%s: %s %s (%s) and %s %s (%s)%s",
							o.Object, a, wa.Path, wa.Op, b, wb.Path, wb.Op, sameValue(wa, wb)))
					}
				}
			}
		}
	}
	var out []Conflict
	for _, p := range slices.SortedFunc(maps.Keys(details), func(x, y pair) int { return strings.Compare(x.a+"\x00"+x.b, y.a+"\x00"+y.b) }) {
		d := details[p]
		out = append(out, Conflict{
			Kind: "patch", Policies: []string{p.a, p.b},
			Message: fmt.Sprintf("%s and %s both patch %s: the object depends on which runs last; let one policy own the path (%s)",
				p.a, p.b, first[p], plural(len(d), "overlapping write")),
			Details: d,
		})
	}
	return out
}

// Duplicates finds a custom policy that reports exactly where a library policy does (same objects, same paths)
// on every example object, and somewhere: the same check twice, so every violation is reported twice.
func Duplicates(obs []Observation, custom, library []string) []Conflict {
	where := func(policy string) []string {
		var at []string
		for _, o := range obs {
			for _, path := range o.Findings[policy] {
				at = append(at, o.Object+" "+path)
			}
		}
		slices.Sort(at)
		return slices.Compact(at)
	}
	var out []Conflict
	for _, c := range slices.Sorted(slices.Values(custom)) {
		mine := where(c)
		if len(mine) == 0 {
			continue
		}
		for _, l := range slices.Sorted(slices.Values(library)) {
			if l == c || !slices.Equal(mine, where(l)) {
				continue
			}
			out = append(out, Conflict{
				Kind: "duplicate", Policies: []string{c, l},
				Message: fmt.Sprintf("%s reports exactly where library policy %s does (%s on the manifests): the same check twice; keep one, or configure %s's parameters instead",
					c, l, plural(len(mine), "finding"), l),
				Details: mine,
			})
		}
	}
	return out
}

// overlaps reports whether two JSON Pointers are one path or one lies inside the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

func sameValue(a, b PatchWrite) string {
	if a.Op != b.Op || a.Path != b.Path {
		return ""
	}
	ja, errA := json.Marshal(a.Value)
	jb, errB := json.Marshal(b.Value)
	if errA == nil && errB == nil && string(ja) == string(jb) {
		return ", the same value"
	}
	return ", different values"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
