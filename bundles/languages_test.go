//go:build !lean

package bundles_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
	"github.com/continuums/attest/policies"
)

// mixedFiles is bundlestest.Mixed (a Cedar policy set, and a ConstraintTemplate with its constraint) as a file map,
// changed by the options.
func mixedFiles(t *testing.T, opts ...func(map[string]string)) map[string]string {
	t.Helper()
	m := bundlestest.Mixed()
	for _, o := range opts {
		o(m)
	}
	return m
}

const (
	template   = "gatekeeper/required-labels.yaml"
	cedarFile  = "cedar/no-host-network.cedar"
	constraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: AcmeRequiredLabels
metadata:
  name: services-have-app
spec:
  parameters:
    labels: [app]
`
)

// edit changes one file of the map by a replacement that must apply.
func edit(t *testing.T, path, old, new string) func(map[string]string) {
	return func(m map[string]string) {
		t.Helper()
		if !strings.Contains(m[path], old) {
			t.Fatalf("%s does not hold %q", path, old)
		}
		m[path] = strings.Replace(m[path], old, new, 1)
	}
}

func TestCheckCedarAndGatekeeper(t *testing.T) {
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		policies []string // name=file, in order
		err      string
	}
	cases := []struct {
		name  string
		files map[string]string
		want  want
	}{
		{"cedar and gatekeeper without rego", mixedFiles(t), want{policies: []string{
			"no-host-network=b/cedar/no-host-network.cedar",
			"AcmeRequiredLabels/pods-have-owner=b/gatekeeper/required-labels.yaml:32"}}},
		{"every language", mixedFiles(t, with("acme/team_label.rego", bundlestest.TeamLabelPolicy), with("acme/team_label_test.rego", bundlestest.TeamLabelTest)),
			want{policies: []string{
				"acme-team-label=b/acme/team_label.rego",
				"no-host-network=b/cedar/no-host-network.cedar",
				"AcmeRequiredLabels/pods-have-owner=b/gatekeeper/required-labels.yaml:32"}}},
		{"cedar only", mixedFiles(t, without(template)), want{policies: []string{"no-host-network=b/cedar/no-host-network.cedar"}}},
		{"a template without constraints enforces nothing", mixedFiles(t, without(cedarFile),
			func(m map[string]string) { m[template], _, _ = strings.Cut(m[template], "---") }), want{policies: nil}},
		{"a second constraint in its own file", mixedFiles(t, with("gatekeeper/services.yaml", constraint)), want{policies: []string{
			"no-host-network=b/cedar/no-host-network.cedar",
			"AcmeRequiredLabels/pods-have-owner=b/gatekeeper/required-labels.yaml:32",
			"AcmeRequiredLabels/services-have-app=b/gatekeeper/services.yaml:1"}}},

		{"cedar syntax error", mixedFiles(t, with("cedar/broken.cedar", "forbid (principal, action, resource)\nwhen { };")),
			want{err: "invalid Cedar policy: parser error: parse error at b/cedar/broken.cedar:2:"}},
		{"cedar schema error", mixedFiles(t, with("cedar/typo.cedar", "\nforbid (principal, action, resource is core::v1::Pdo);")),
			want{err: "b/cedar/typo.cedar:2:1: policy "}},
		{"cedar file name", mixedFiles(t, with("cedar/Bad_Name.cedar", "forbid (principal, action, resource);")),
			want{err: `b/cedar/Bad_Name.cedar: "Bad_Name" is not a policy name`}},
		{"cedar name twice", mixedFiles(t, with("other/no-host-network.cedar", "forbid (principal, action, resource);")),
			want{err: `b/other/no-host-network.cedar: the Cedar policy set "no-host-network" is already the file b/cedar/no-host-network.cedar`}},
		{"cedar takes a library name", mixedFiles(t, with("cedar/no-privileged.cedar", "forbid (principal, action, resource);")),
			want{err: "policy no-privileged of b/cedar/no-privileged.cedar: the name is taken by the policy of "}},
		{"cedar takes a bundle rego name", mixedFiles(t, with("acme/team_label.rego", bundlestest.TeamLabelPolicy), with("acme/team_label_test.rego", bundlestest.TeamLabelTest),
			with("cedar/acme-team-label.cedar", "forbid (principal, action, resource);")),
			want{err: "policy acme-team-label of b/cedar/acme-team-label.cedar: the name is taken by the policy of b/acme/team_label.rego"}},
		{"template rego that does not compile", mixedFiles(t, edit(t, template, "not input.review.object.metadata.labels[label]", "not input.review.object.metadata.labels[lable]")),
			want{err: "b/gatekeeper/required-labels.yaml:28: template acmerequiredlabels: unable to compile modules: 1 error occurred: template:5: rego_unsafe_var_error: var lable is unsafe"}},
		{"constraint without its template", mixedFiles(t, without(template), with("gatekeeper/services.yaml", constraint)),
			want{err: "b/gatekeeper/services.yaml:1: constraint AcmeRequiredLabels/services-have-app: no ConstraintTemplate of the bundle defines the kind AcmeRequiredLabels"}},
		{"constraint parameters against the schema", mixedFiles(t, edit(t, template, `labels: ["owner"]`, `labels: owner`)),
			want{err: "b/gatekeeper/required-labels.yaml:32: constraint AcmeRequiredLabels/pods-have-owner: schema validation failed: [].spec.parameters.labels: Invalid value: \"string\": spec.parameters.labels in body must be of type array"}},
		{"constraint named twice", mixedFiles(t, with("gatekeeper/z-copy.yaml", strings.Replace(constraint, "services-have-app", "pods-have-owner", 1))),
			want{err: "b/gatekeeper/z-copy.yaml:1: constraint AcmeRequiredLabels/pods-have-owner is already defined at b/gatekeeper/required-labels.yaml:32"}},
		{"yaml that is not gatekeeper", mixedFiles(t, with("gatekeeper/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n")),
			want{err: "b/gatekeeper/cm.yaml:1: ConfigMap settings is not a Gatekeeper document"}},
		{"yaml that does not parse", mixedFiles(t, with("gatekeeper/bad.yaml", "apiVersion: v1\nkind: [\n")),
			want{err: "b/gatekeeper/bad.yaml:"}},
		{"no policy at all", map[string]string{".manifest": manifest, "data.json": "{}"}, want{err: "the bundle holds no policy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := bundles.ReadDir(bundlestest.WriteDir(t, tc.files), bundles.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := b.Check(context.Background(), lib, "b")
			if tc.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want.err) {
					t.Fatalf("err = %v, want it to say %q", err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.Policies {
				got = append(got, p.Name+"="+p.File)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want.policies, "\n") {
				t.Errorf("policies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want.policies, "\n"))
			}
		})
	}
}

// TestCheckedPoliciesDecide: the checked Cedar set and constraint judge a pod as the pipeline runs them.
func TestCheckedPoliciesDecide(t *testing.T) {
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundles.ReadDir(bundlestest.WriteDir(t, mixedFiles(t)), bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Check(context.Background(), lib, "b")
	if err != nil {
		t.Fatal(err)
	}
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "shop"},
		"spec": map[string]any{"hostNetwork": true, "containers": []any{map[string]any{"name": "app", "image": "app:1"}}}}
	in := policies.Input{Request: policies.Request{UID: "u", Operation: "CREATE", Version: "v1", Kind: "Pod", Namespace: "shop", Name: "web",
		Username: "alice"}, Resource: pod, Namespace: policies.Namespace{Name: "shop"}}
	doc, err := policies.NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"no-host-network":                    "pods do not share the node's network",
		"AcmeRequiredLabels/pods-have-owner": "Pod web lacks the label owner",
	}
	for _, p := range c.Policies {
		fs, err := p.Evaluator().Evaluate(context.Background(), doc, p.DefaultSettings())
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if len(fs) != 1 || !strings.Contains(fs[0].Message, want[p.Name]) {
			t.Errorf("%s: findings %+v, want one saying %q", p.Name, fs, want[p.Name])
		}
	}
}
