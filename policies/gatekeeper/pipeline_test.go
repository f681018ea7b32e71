package gatekeeper_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
)

// set loads templates (files under testdata), then constraints and expansion templates (documents), then
// inventory (documents) into a Set reviewing at the webhook.
func set(t testing.TB, templates []string, docs ...string) *gatekeeper.Set {
	t.Helper()
	s, err := gatekeeper.NewSet(gatekeeper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, f := range templates {
		if err := s.AddTemplate(ctx, template(t, f), f); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range docs {
		objs, err := gatekeeper.ParseObjects([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			src := fmt.Sprintf("doc%d", i)
			switch u.GroupVersionKind().Group {
			case gatekeeper.ConstraintGroup:
				k, err := gatekeeper.ConstraintFrom(u)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.AddConstraint(ctx, k, src); err != nil {
					t.Fatal(err)
				}
			case gatekeeper.ExpansionGroup:
				e, err := gatekeeper.ExpansionTemplateFrom(u)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.AddExpansionTemplate(e, src); err != nil {
					t.Fatal(err)
				}
			default:
				if err := s.AddInventory(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return s
}

// document is the pipeline's document of a CREATE (or, with old, an UPDATE) of the object by alice.
func document(t testing.TB, obj string, old string, ns *policies.Namespace) *policies.Document {
	t.Helper()
	u := object(t, obj)
	gvk := u.GroupVersionKind()
	in := policies.Input{
		Request: policies.Request{UID: "uid-1", Operation: "CREATE", Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
			Namespace: u.GetNamespace(), Name: u.GetName(), Username: "alice", Groups: []string{"dev"}},
		Resource: u.Object,
	}
	if old != "" {
		in.Request.Operation, in.OldResource = "UPDATE", object(t, old).Object
	}
	if ns != nil {
		in.Namespace = *ns
	}
	doc, err := policies.NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// evaluate runs every policy of the set on doc: policy name → its findings ("!" before a warning's message).
func evaluate(t testing.TB, ps []*policies.Policy, doc *policies.Document) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range ps {
		fs, err := p.Eval(context.Background(), doc, p.DefaultSettings())
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		for _, f := range fs {
			if f.Severity != policies.SeverityMedium || f.Path != "" {
				t.Errorf("%s: finding with severity %q path %q, want medium and none", p.Name, f.Severity, f.Path)
			}
			msg := f.Message
			if f.Warning {
				msg = "!" + msg
			}
			out[p.Name] = append(out[p.Name], msg)
		}
	}
	return out
}

func withSpec(spec string) string { return strings.Replace(labelsConstraint, "%s\n", spec+"\n", 1) }

func renamed(doc, name string) string {
	return strings.Replace(doc, "name: must-have-owner", "name: "+name, 1)
}

// TestConstraintPolicies: each constraint is a pipeline policy named <Kind>/<name> whose mode is its
// enforcementAction at the webhook, with the template's title; its findings are its own constraint's
// violations, with the template's message.
func TestConstraintPolicies(t *testing.T) {
	scopedWebhookDeny := "  enforcementAction: scoped\n  scopedEnforcementActions:\n    - action: deny\n      enforcementPoints: [{name: validation.gatekeeper.sh}]\n    - action: warn\n      enforcementPoints: [{name: audit.gatekeeper.sh}]"
	scopedWebhookWarn := "  enforcementAction: scoped\n  scopedEnforcementActions:\n    - action: warn\n      enforcementPoints: [{name: \"*\"}]"
	scopedAuditOnly := "  enforcementAction: scoped\n  scopedEnforcementActions:\n    - action: deny\n      enforcementPoints: [{name: audit.gatekeeper.sh}]"
	s := set(t, []string{"requiredlabels/template.yaml", "allowedregistries/template.yaml"},
		withSpec(""),
		renamed(withSpec("  enforcementAction: warn"), "warned"),
		renamed(withSpec("  enforcementAction: dryrun"), "dry"),
		renamed(withSpec(scopedWebhookDeny), "scoped-deny"),
		renamed(withSpec(scopedWebhookWarn), "scoped-warn"),
		renamed(withSpec(scopedAuditOnly), "scoped-audit-only"),
		string(readFile(t, "allowedregistries/constraint.yaml")),
	)
	ps, err := s.Policies()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]policies.Mode{}
	for _, p := range ps {
		modes[p.Name] = p.DefaultMode
		if !policies.ValidName(p.Name) || p.Evaluator() == nil || p.Digest == "" || !strings.HasPrefix(p.File, "doc") {
			t.Errorf("policy %s: valid name %v, evaluator %v, digest %q, file %q", p.Name, policies.ValidName(p.Name), p.Evaluator(), p.Digest, p.File)
		}
		if p.Engine() != "gatekeeper" {
			t.Errorf("policy %s: engine %q, want gatekeeper", p.Name, p.Engine())
		}
	}
	wantModes := map[string]policies.Mode{
		"AttestRequiredLabels/must-have-owner":       policies.ModeEnforce,
		"AttestRequiredLabels/warned":                policies.ModeAudit,
		"AttestRequiredLabels/dry":                   policies.ModeAudit,
		"AttestRequiredLabels/scoped-deny":           policies.ModeEnforce,
		"AttestRequiredLabels/scoped-warn":           policies.ModeAudit,
		"AttestRequiredLabels/scoped-audit-only":     policies.ModeOff,
		"AttestAllowedRegistries/company-registries": policies.ModeEnforce,
	}
	if !reflect.DeepEqual(modes, wantModes) {
		t.Errorf("modes = %v\nwant %v", modes, wantModes)
	}

	got := evaluate(t, ps, document(t, pod("shop", "", "docker.io/nginx:latest"), "", nil))
	missing := `Pod web must have the labels {"owner"}`
	want := map[string][]string{
		"AttestRequiredLabels/must-have-owner": {missing},
		"AttestRequiredLabels/warned":          {missing},
		"AttestRequiredLabels/dry":             {missing},
		"AttestRequiredLabels/scoped-deny":     {missing},
		"AttestRequiredLabels/scoped-warn":     {missing},
		"AttestAllowedRegistries/company-registries": {
			"containers c0 use images outside the allowed registries registry.example.com, ghcr.io/continuums",
			"images must not use the latest tag",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings = %v\nwant %v", got, want)
	}
	if got := evaluate(t, ps, document(t, pod("shop", "owner=alice", "registry.example.com/web:1"), "", nil)); len(got) != 0 {
		t.Errorf("a compliant pod has findings %v", got)
	}
}

// TestConstraintErrors: what cannot become a policy is refused with the source and the reason.
func TestConstraintErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, doc, want string
	}{
		{"no template for the kind", "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNope\nmetadata:\n  name: x\n", "src.yaml:3: constraint K8sNope/x: no ConstraintTemplate defines the kind K8sNope"},
		{"unknown enforcementAction", withSpec("  enforcementAction: block"), `src.yaml:3: constraint AttestRequiredLabels/must-have-owner: spec.enforcementAction "block": want deny, dryrun, warn or scoped`},
		{"scoped without actions", withSpec("  enforcementAction: scoped"), "src.yaml:3: constraint AttestRequiredLabels/must-have-owner:"},
		{"parameters against the schema", strings.Replace(withSpec(""), "    labels:\n      - key: owner\n", "    labels: owner\n", 1), "src.yaml:3: constraint AttestRequiredLabels/must-have-owner:"},
		{"a name that is not an object name", renamed(withSpec(""), "Must_Have"), `metadata.name "Must_Have" is not a Kubernetes object name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := set(t, []string{"requiredlabels/template.yaml"})
			err := s.AddConstraint(ctx, constraint(t, tt.doc), "src.yaml:3")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	s := set(t, []string{"requiredlabels/template.yaml"}, withSpec(""))
	if err := s.AddConstraint(ctx, constraint(t, withSpec("")), "again.yaml:1"); err == nil || !strings.Contains(err.Error(), "already defined at doc0") {
		t.Errorf("duplicate constraint: err = %v", err)
	}
	if err := s.AddTemplate(ctx, template(t, "requiredlabels/template.yaml"), "again.yaml:1"); err == nil || !strings.Contains(err.Error(), "already defined by the template of requiredlabels/template.yaml") {
		t.Errorf("duplicate template: err = %v", err)
	}
}

// TestReviewInput: the template sees Gatekeeper's input.review in the AdmissionRequest shape, made from the
// pipeline's request: operation, userInfo, kind, name, namespace, object, oldObject, dryRun, namespaceObject.
func TestReviewInput(t *testing.T) {
	echo := `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: attestecho
spec:
  crd:
    spec:
      names:
        kind: AttestEcho
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package attestecho
        violation[{"msg": msg}] {
          r := input.review
          msg := sprintf("%v %v/%v %v %v %v %v old=%v new=%v dry=%v ns=%v", [r.operation, r.kind.version, r.kind.kind, r.namespace, r.name, r.userInfo.username, r.userInfo.groups, object.get(r, ["oldObject", "metadata", "labels", "v"], "-"), r.object.metadata.labels.v, r.dryRun, object.get(r, ["namespaceObject", "metadata", "labels", "env"], "-")])
        }
`
	s, err := gatekeeper.NewSet(gatekeeper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := gatekeeper.ParseTemplate([]byte(echo))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.AddTemplate(ctx, tmpl, "echo.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddConstraint(ctx, constraint(t, "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: AttestEcho\nmetadata:\n  name: all\n"), "k.yaml"); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Policies()
	if err != nil {
		t.Fatal(err)
	}
	ns := &policies.Namespace{Name: "shop", Labels: map[string]string{"env": "prod"}}
	got := evaluate(t, ps, document(t, pod("shop", "v=2"), pod("shop", "v=1"), ns))
	want := `UPDATE v1/Pod shop web alice ["dev"] old=1 new=2 dry=false ns=prod`
	if msgs := got["AttestEcho/all"]; len(msgs) != 1 || msgs[0] != want {
		t.Errorf("review = %q\nwant %q", msgs, want)
	}
}

// TestNamespaceSelector: namespaceSelector matches the namespace the caller knows (the webhook's cache) or,
// for a caller that knows only names (the CLI), the inventory's Namespace, as gator does.
func TestNamespaceSelector(t *testing.T) {
	prodOnly := withSpec("  match:\n    namespaceSelector: {matchLabels: {environment: production}}")
	inventory := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    environment: production\n"
	tests := []struct {
		name       string
		inventory  bool
		ns         *policies.Namespace
		podNS      string
		violations int
	}{
		{name: "labels from the caller: production", ns: &policies.Namespace{Name: "shop", Labels: map[string]string{"environment": "production"}}, podNS: "shop", violations: 1},
		{name: "labels from the caller win over the inventory", inventory: true, ns: &policies.Namespace{Name: "shop", Labels: map[string]string{"environment": "dev"}}, podNS: "shop", violations: 0},
		{name: "inventory namespace", inventory: true, podNS: "shop", violations: 1},
		{name: "default namespace unknown to the inventory", podNS: "default", violations: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := []string{prodOnly}
			if tt.inventory {
				docs = append(docs, inventory)
			}
			ps, err := set(t, []string{"requiredlabels/template.yaml"}, docs...).Policies()
			if err != nil {
				t.Fatal(err)
			}
			got := evaluate(t, ps, document(t, pod(tt.podNS, ""), "", tt.ns))
			if n := len(got["AttestRequiredLabels/must-have-owner"]); n != tt.violations {
				t.Errorf("violations %v, want %d", got, tt.violations)
			}
		})
	}
}

// TestExpansion: with ExpansionTemplates a Pod-only constraint judges the Pod a Deployment or CronJob would
// create, with Gatekeeper's "[Implied by ...]" prefix naming the template that generated the Pod (expansion
// recurses: CronJob → Job → Pod); the ExpansionTemplate's enforcementAction (warn) makes
// the finding a warning of an enforcing constraint.
func TestExpansion(t *testing.T) {
	deployment := string(readFile(t, "requiredlabels/objects/deployment-unlabelled.yaml"))
	cronjob := string(readFile(t, "expansion/cronjob.yaml"))
	podsOnly := string(readFile(t, "expansion/pods-have-owner.yaml"))
	tests := []struct {
		name       string
		expansions []string
		obj        string
		want       []string
	}{
		{name: "no ExpansionTemplate: a Pod-only constraint ignores Deployments", obj: deployment},
		{name: "Deployment as its Pod", expansions: []string{"expansion/expansion-deployments.yaml"}, obj: deployment,
			want: []string{`[Implied by expand-deployments] Pod checkout-pod must have the labels {"owner"}`}},
		{name: "CronJob as its Job as its Pod, warn", expansions: []string{"expansion/expansion-cronjobs-warn.yaml"}, obj: cronjob,
			want: []string{`![Implied by expand-jobs] Pod nightly-job-pod must have the labels {"owner"}`}},
		{name: "an object no template applies to", expansions: []string{"expansion/expansion-cronjobs-warn.yaml"}, obj: deployment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := []string{podsOnly}
			for _, f := range tt.expansions {
				docs = append(docs, string(readFile(t, f)))
			}
			ps, err := set(t, []string{"requiredlabels/template.yaml"}, docs...).Policies()
			if err != nil {
				t.Fatal(err)
			}
			got := evaluate(t, ps, document(t, tt.obj, "", nil))["AttestRequiredLabels/pods-have-owner"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestExpansionTemplateErrors: what Gatekeeper refuses in an ExpansionTemplate is refused, naming the field.
func TestExpansionTemplateErrors(t *testing.T) {
	base := "apiVersion: expansion.gatekeeper.sh/v1beta1\nkind: ExpansionTemplate\nmetadata:\n  name: e\nspec:\n"
	tests := []struct{ name, doc, want string }{
		{"not one", "apiVersion: v1\nkind: ConfigMap\n", "not an ExpansionTemplate"},
		{"unknown field", base + "  applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]\n  templateSource: spec.template\n  generatedGVK: {kind: Pod, version: v1}\n  enforcementActoin: warn\n", `unknown field "spec.enforcementActoin"`},
		{"no source", base + "  applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]\n  generatedGVK: {kind: Pod, version: v1}\n", "empty source field"},
		{"no applyTo", base + "  templateSource: spec.template\n  generatedGVK: {kind: Pod, version: v1}\n", "must specify ApplyTo"},
		{"expands into itself", base + "  applyTo: [{groups: [\"\"], kinds: [Pod], versions: [v1]}]\n  templateSource: spec\n  generatedGVK: {kind: Pod, version: v1}\n", "also applies to that same GVK"},
		{"bad enforcementAction", base + "  applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]\n  templateSource: spec.template\n  generatedGVK: {kind: Pod, version: v1}\n  enforcementAction: block\n", `spec.enforcementAction "block"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gatekeeper.ExpansionTemplateFrom(object(t, tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestExpandWorkloads: ATTEST's opt-in reviews every workload kind as the Pod it creates (a CronJob through its
// Job) without ExpansionTemplates; an ExpansionTemplate of the user's for a kind takes its place.
func TestExpandWorkloads(t *testing.T) {
	podsOnly := string(readFile(t, "expansion/pods-have-owner.yaml"))
	statefulSet := strings.NewReplacer("kind: Deployment", "kind: StatefulSet", "name: checkout", "name: db").Replace(string(readFile(t, "requiredlabels/objects/deployment-unlabelled.yaml")))
	tests := []struct {
		name, obj string
		user      bool
		want      []string
	}{
		{name: "Deployment", obj: string(readFile(t, "requiredlabels/objects/deployment-unlabelled.yaml")),
			want: []string{`[Implied by attest-workload-deployment] Pod checkout-pod must have the labels {"owner"}`}},
		{name: "StatefulSet", obj: statefulSet, want: []string{`[Implied by attest-workload-statefulset] Pod db-pod must have the labels {"owner"}`}},
		{name: "CronJob through its Job", obj: string(readFile(t, "expansion/cronjob.yaml")),
			want: []string{`[Implied by attest-workload-job] Pod nightly-job-pod must have the labels {"owner"}`}},
		{name: "the user's ExpansionTemplate wins", user: true, obj: string(readFile(t, "requiredlabels/objects/deployment-unlabelled.yaml")),
			want: []string{`[Implied by expand-deployments] Pod checkout-pod must have the labels {"owner"}`}},
		{name: "a Pod is judged once", obj: pod("shop", ""), want: []string{`Pod web must have the labels {"owner"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := []string{podsOnly}
			if tt.user {
				docs = append(docs, string(readFile(t, "expansion/expansion-deployments.yaml")))
			}
			s := set(t, []string{"requiredlabels/template.yaml"}, docs...)
			if err := s.ExpandWorkloads(); err != nil {
				t.Fatal(err)
			}
			ps, err := s.Policies()
			if err != nil {
				t.Fatal(err)
			}
			got := evaluate(t, ps, document(t, tt.obj, "", nil))["AttestRequiredLabels/pods-have-owner"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings %q\nwant %q", got, tt.want)
			}
		})
	}
}
