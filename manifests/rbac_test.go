// Package manifests_test checks the kustomize manifests against what the README promises about them.
package manifests_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// grant is one verb on one resource, as the README table lists them: a row expands to one grant per resource
// and verb.
type grant struct {
	subject, role, group, resource, names, verb string
}

func (g grant) String() string {
	group := g.group
	if group == "" {
		group = "core"
	}
	return fmt.Sprintf("%s: %s on %s/%s (names: %s) to %s", g.role, g.verb, group, g.resource, g.names, g.subject)
}

// TestRBACMatchesREADME fails when a Role or ClusterRole in manifests/ grants a verb or resource the README's RBAC
// table does not list (or to another subject, or on other names), and when the table lists a grant no role makes.
func TestRBACMatchesREADME(t *testing.T) {
	documented := readmeGrants(t, filepath.Join("..", "README.md"))
	granted := manifestGrants(t, ".")
	if len(granted) < 10 {
		t.Fatalf("found only %d grants in manifests/; is the parser reading rbac.yaml?", len(granted))
	}
	for _, g := range sortedKeys(granted) {
		if !documented[g] {
			t.Errorf("%s: %s, which the README's RBAC table (Security of the webhook itself) does not list", granted[g], g)
		}
	}
	for _, g := range sortedKeys(documented) {
		if _, ok := granted[g]; !ok {
			t.Errorf("the README's RBAC table lists %s, which no Role or ClusterRole in manifests/ grants", g)
		}
	}
}

// TestNoRBACPatches: the test above reads the YAML files as written, so an overlay may only delete RBAC objects,
// never patch rules into them.
func TestNoRBACPatches(t *testing.T) {
	type patch struct {
		Patch  string `json:"patch"`
		Path   string `json:"path"`
		Target struct {
			Kind string `json:"kind"`
		} `json:"target"`
	}
	var kustomizations int
	walkYAML(t, ".", func(path string, doc []byte) {
		if filepath.Base(path) != "kustomization.yaml" {
			return
		}
		kustomizations++
		var k struct {
			Patches               []patch  `json:"patches"`
			PatchesJSON6902       []patch  `json:"patchesJson6902"`
			PatchesStrategicMerge []string `json:"patchesStrategicMerge"`
		}
		if err := yaml.Unmarshal(doc, &k); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, sm := range k.PatchesStrategicMerge {
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), sm)); err == nil {
				k.Patches = append(k.Patches, patch{Path: sm})
			} else {
				k.Patches = append(k.Patches, patch{Patch: sm})
			}
		}
		for _, p := range append(k.Patches, k.PatchesJSON6902...) {
			body := p.Patch
			if p.Path != "" {
				raw, err := os.ReadFile(filepath.Join(filepath.Dir(path), p.Path))
				if err != nil {
					t.Fatal(err)
				}
				body = string(raw)
			}
			rbacKind := strings.HasSuffix(p.Target.Kind, "Role") || strings.HasSuffix(p.Target.Kind, "RoleBinding") ||
				strings.Contains(body, "rbac.authorization.k8s.io")
			if rbacKind && !strings.Contains(body, "$patch: delete") {
				t.Errorf("%s patches a %s other than by deleting it; RBAC must be written in the manifests' YAML, where TestRBACMatchesREADME reads it", path, p.Target.Kind)
			}
		}
	})
	if kustomizations < 4 {
		t.Fatalf("found %d kustomization.yaml files, want base and the overlays", kustomizations)
	}
}

// manifestGrants reads every Role, ClusterRole and binding under dir and returns each grant with the file that
// makes it.
func manifestGrants(t *testing.T, dir string) map[grant]string {
	t.Helper()
	type role struct {
		kind, namespace, name string
		labels                map[string]string
		rules                 []rbacv1.PolicyRule
		file                  string
	}
	var roles []role
	subjects := map[string][]string{} // "Role ns/name" or "ClusterRole name" -> subjects
	walkYAML(t, dir, func(path string, doc []byte) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch meta.Kind {
		case "Role", "ClusterRole":
			var r rbacv1.ClusterRole // a Role has the same fields but aggregation
			if err := yaml.UnmarshalStrict(doc, &r); err != nil {
				t.Fatalf("%s: %s: %v", path, meta.Kind, err)
			}
			roles = append(roles, role{kind: meta.Kind, namespace: r.Namespace, name: r.Name, labels: r.Labels, rules: r.Rules, file: path})
		case "RoleBinding", "ClusterRoleBinding":
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict(doc, &b); err != nil {
				t.Fatalf("%s: %s: %v", path, meta.Kind, err)
			}
			ref := roleName(b.RoleRef.Kind, b.Namespace, b.RoleRef.Name)
			for _, s := range b.Subjects {
				subjects[ref] = append(subjects[ref], subjectName(s))
			}
		}
	})
	out := map[grant]string{}
	for _, r := range roles {
		name := roleName(r.kind, r.namespace, r.name)
		who := subjects[name]
		for k, v := range r.labels {
			if target, ok := strings.CutPrefix(k, "rbac.authorization.k8s.io/aggregate-to-"); ok && v == "true" {
				who = append(who, "aggregated into "+target)
			}
		}
		if len(who) == 0 {
			who = []string{"nobody"}
		}
		for _, rule := range r.rules {
			if len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s: %s grants non-resource URLs %v; the README's table has no place for them", r.file, name, rule.NonResourceURLs)
			}
			names := "any"
			if len(rule.ResourceNames) > 0 {
				names = strings.Join(slices.Sorted(slices.Values(rule.ResourceNames)), ", ")
			}
			for _, s := range who {
				for _, group := range rule.APIGroups {
					for _, res := range rule.Resources {
						for _, verb := range rule.Verbs {
							out[grant{subject: s, role: name, group: group, resource: res, names: names, verb: verb}] = r.file
						}
					}
				}
			}
		}
	}
	return out
}

func roleName(kind, namespace, name string) string {
	if kind == "Role" {
		return "Role " + namespace + "/" + name
	}
	return kind + " " + name
}

func subjectName(s rbacv1.Subject) string {
	if s.Namespace != "" {
		return s.Kind + " " + s.Namespace + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// readmeGrants reads the RBAC table of the README's "Security of the webhook itself" section.
func readmeGrants(t *testing.T, path string) map[grant]bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n### Security of the webhook itself\n")
	if !ok {
		t.Fatalf("%s has no section \"### Security of the webhook itself\"", path)
	}
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	header := []string{"Subject", "Role", "API group", "Resources", "Names", "Verbs", "Why"}
	out := map[grant]bool{}
	inTable := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case slices.Equal(cells, header):
			inTable = true
			continue
		case !inTable || strings.HasPrefix(cells[0], "---"):
			continue
		case len(cells) != len(header):
			t.Fatalf("README RBAC table row has %d cells, want %d: %s", len(cells), len(header), line)
		case cells[6] == "":
			t.Errorf("README RBAC table row says nothing about why it is needed: %s", line)
		}
		group := cells[2]
		if group == "core" {
			group = ""
		}
		for _, res := range list(cells[3]) {
			for _, verb := range list(cells[5]) {
				out[grant{subject: cells[0], role: cells[1], group: group, resource: res, names: strings.Join(list(cells[4]), ", "), verb: verb}] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no RBAC table (header %s) in the README's \"Security of the webhook itself\"", strings.Join(header, " | "))
	}
	return out
}

// list splits a cell like "secrets, serviceaccounts" and sorts it.
func list(cell string) []string {
	var out []string
	for _, v := range strings.Split(cell, ",") {
		out = append(out, strings.Trim(strings.TrimSpace(v), "`"))
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[grant]V) []grant {
	keys := make([]grant, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

// walkYAML calls fn with every YAML document of every .yaml file under dir.
func walkYAML(t *testing.T, dir string, fn func(path string, doc []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		r := utilyaml.NewYAMLReader(bufio.NewReader(f))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if strings.TrimSpace(string(doc)) != "" {
				fn(path, doc)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
