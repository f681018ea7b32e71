//go:build !lean

package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/admission"
)

// gk is a file of the Gatekeeper package's testdata.
func gk(path string) string {
	return filepath.Join("..", "..", "policies", "gatekeeper", "testdata", path)
}

type gkResult struct {
	Kind, Name, Policy, Mode, Severity, Message string
	Denied                                      bool
	Exemption                                   *struct{ Source, Name string }
}

// checkJSON runs `attest policy check --format json` and decodes the report.
func checkJSON(t *testing.T, args ...string) (int, []gkResult, string) {
	t.Helper()
	out, errOut, code := attest(t, "", append([]string{"policy", "check", "--format", "json", "--offline", "--now", "2026-11-25T12:00:00Z"}, args...)...)
	var report struct{ Results []gkResult }
	if code != 2 {
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			t.Fatalf("%v: %s (stderr %s)", err, out, errOut)
		}
	}
	return code, report.Results, errOut
}

func summary(rs []gkResult) []string {
	out := []string{}
	for _, r := range rs {
		verdict := "warn"
		switch {
		case r.Exemption != nil:
			verdict = "exempt " + r.Exemption.Source
		case r.Denied:
			verdict = "deny"
		}
		out = append(out, r.Kind+"/"+r.Name+" "+verdict+" "+r.Mode+" "+r.Severity+" "+r.Message)
	}
	return out
}

// TestCheckGatekeeper: templates, constraints and ExpansionTemplates among check's inputs are policies, not
// objects; each constraint reports as <Kind>/<name> with its template's message; warn and dryrun audit (exit 0);
// --inventory feeds data.inventory; annotation exemptions name constraints.
func TestCheckGatekeeper(t *testing.T) {
	labels := []string{"-f", gk("requiredlabels/template.yaml")}
	const missingOwner = `[AttestRequiredLabels/workloads-have-owner]: Pod web must have the labels {"owner"}`
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "deny", code: 1,
			args: append(labels, "-f", gk("requiredlabels/constraint.yaml"), "-f", "testdata/gatekeeper/pods.yaml", "--policy", "AttestRequiredLabels/workloads-have-owner"),
			want: []string{
				"Pod/web deny enforce medium " + missingOwner,
				`Pod/debug deny enforce medium [AttestRequiredLabels/workloads-have-owner]: Pod debug must have the labels {"owner"} (exemption ignored: exemption annotations are honoured only for nobody (exemptions.annotationGroups is empty), and  is not one of them)`,
			}},
		{name: "exempted by an annotation naming the constraint", code: 1,
			args: append(labels, "-f", gk("requiredlabels/constraint.yaml"), "-f", "testdata/gatekeeper/pods.yaml", "--config", "testdata/exemptions/policies.yaml",
				"--as", "alice", "--as-group", "break-glass", "--policy", "AttestRequiredLabels/workloads-have-owner"),
			want: []string{
				"Pod/web deny enforce medium " + missingOwner,
				`Pod/debug exempt annotation enforce medium [AttestRequiredLabels/workloads-have-owner]: Pod debug must have the labels {"owner"}`,
			}},
		{name: "warn and dryrun audit: exit 0", code: 0,
			args: append(labels, "-f", gk("requiredlabels/constraint-warn.yaml"), "-f", gk("requiredlabels/constraint-dryrun.yaml"),
				"-f", gk("requiredlabels/objects/service-web.yaml"), "-f", gk("requiredlabels/objects/namespace-production.yaml"),
				"--policy", "AttestRequiredLabels/services-have-app", "--policy", "AttestRequiredLabels/namespaces-have-team"),
			want: []string{
				`Service/web-frontend warn audit medium [AttestRequiredLabels/services-have-app]: Service web-frontend must have the labels {"app"}`,
				`Namespace/payments warn audit medium [AttestRequiredLabels/namespaces-have-team]: Namespace payments must have the labels {"team"}`,
			}},
		{name: "inventory: namespace and ConfigMap exist", code: 0,
			args: []string{"-f", gk("namespaceowner/template.yaml"), "-f", gk("namespaceowner/constraint.yaml"), "-f", gk("namespaceowner/objects/pod.yaml"),
				"--inventory", gk("namespaceowner/objects/namespace-owned.yaml"), "--inventory", gk("namespaceowner/objects/configmap.yaml"),
				"--policy", "AttestNamespaceOwner/owned-namespaces"},
			want: []string{}},
		{name: "inventory: nothing known", code: 1,
			args: []string{"-f", gk("namespaceowner/template.yaml"), "-f", gk("namespaceowner/constraint.yaml"), "-f", gk("namespaceowner/objects/pod.yaml"),
				"--policy", "AttestNamespaceOwner/owned-namespaces"},
			want: []string{
				"Pod/worker deny enforce medium [AttestNamespaceOwner/owned-namespaces]: container worker reads ConfigMap worker-settings, which does not exist in namespace billing",
				"Pod/worker deny enforce medium [AttestNamespaceOwner/owned-namespaces]: namespace billing has no owner label",
			}},
		{name: "the other inputs are inventory too, as in gator test", code: 0,
			args: []string{"-f", gk("namespaceowner/template.yaml"), "-f", gk("namespaceowner/constraint.yaml"), "-f", gk("namespaceowner/objects/pod.yaml"),
				"-f", gk("namespaceowner/objects/namespace-owned.yaml"), "-f", gk("namespaceowner/objects/configmap.yaml"),
				"--policy", "AttestNamespaceOwner/owned-namespaces"},
			want: []string{}},
		{name: "a Pod-only constraint ignores Deployments", code: 0,
			args: append(labels, "-f", gk("expansion/pods-have-owner.yaml"), "-f", "testdata/gatekeeper/deployment.yaml", "--policy", "AttestRequiredLabels/pods-have-owner"),
			want: []string{}},
		{name: "an ExpansionTemplate makes it judge the Deployment's Pod", code: 1,
			args: append(labels, "-f", gk("expansion/pods-have-owner.yaml"), "-f", gk("expansion/expansion-deployments.yaml"), "-f", "testdata/gatekeeper/deployment.yaml",
				"--policy", "AttestRequiredLabels/pods-have-owner"),
			want: []string{`Deployment/checkout deny enforce medium [AttestRequiredLabels/pods-have-owner]: [Implied by expand-deployments] Pod checkout-pod must have the labels {"owner"}`}},
		{name: "namespaceSelector: the Namespace among the inputs", code: 1,
			args: append(labels, "-f", "testdata/gatekeeper/production-pods.yaml", "-f", gk("requiredlabels/objects/namespace-production.yaml"),
				"--policy", "AttestRequiredLabels/production-pods-have-owner"),
			want: []string{`Pod/api deny enforce medium [AttestRequiredLabels/production-pods-have-owner]: Pod api must have the labels {"owner"}`}},
		// Gatekeeper's autorejection: a namespaceSelector that cannot be judged denies (fail closed), saying why.
		{name: "namespaceSelector: the namespace unknown", code: 1,
			args: append(labels, "-f", "testdata/gatekeeper/production-pods.yaml", "--policy", "AttestRequiredLabels/production-pods-have-owner"),
			want: []string{`Pod/api deny enforce medium [AttestRequiredLabels/production-pods-have-owner]: unable to match constraints: error matching the requested object: api :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace`}},
		{name: "--expand-workloads: ATTEST's opt-in", code: 1,
			args: append(labels, "-f", gk("expansion/pods-have-owner.yaml"), "-f", "testdata/gatekeeper/deployment.yaml", "--expand-workloads",
				"--policy", "AttestRequiredLabels/pods-have-owner"),
			want: []string{`Deployment/checkout deny enforce medium [AttestRequiredLabels/pods-have-owner]: [Implied by attest-workload-deployment] Pod checkout-pod must have the labels {"owner"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, rs, errOut := checkJSON(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errOut)
			}
			if got := summary(rs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestCheckGatekeeperDisabled: the documents' policy.gatekeeper_enabled: false turns every constraint off (the
// constraint among the inputs loads, and denies nothing), while ATTEST's own policies keep judging.
func TestCheckGatekeeperDisabled(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-f", gk("requiredlabels/template.yaml"), "-f", gk("requiredlabels/constraint.yaml"), "-f", "testdata/gatekeeper/pods.yaml"}
	policiesOf := func(rs []gkResult) map[string]bool {
		out := map[string]bool{}
		for _, r := range rs {
			out[r.Policy] = true
		}
		return out
	}
	for _, tc := range []struct {
		name, yaml string
		constraint bool
	}{
		{"gatekeeper_enabled true", "policy:\n  gatekeeper_enabled: true\n", true},
		{"gatekeeper_enabled false", "policy:\n  gatekeeper_enabled: false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(cfg, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, rs, errOut := checkJSON(t, append(args, "--config", cfg)...)
			got := policiesOf(rs)
			if got["AttestRequiredLabels/workloads-have-owner"] != tc.constraint {
				t.Errorf("constraint judged: %v, want %v; results %v; stderr %s", got["AttestRequiredLabels/workloads-have-owner"], tc.constraint, got, errOut)
			}
			if !got["trusted-registries"] {
				t.Errorf("ATTEST's trusted-registries did not judge the Pods' images: %v", got)
			}
		})
	}
}

// TestCheckGatekeeperErrors: what cannot become a policy stops the check (exit 2) naming file and line.
func TestCheckGatekeeperErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"constraint without its template", []string{"-f", "testdata/gatekeeper/orphan-constraint.yaml"},
			"testdata/gatekeeper/orphan-constraint.yaml:8: constraint K8sNoSuchTemplate/orphan: no ConstraintTemplate defines the kind K8sNoSuchTemplate"},
		{"template that does not compile", []string{"-f", gk("broken/rego-syntax.yaml"), "-f", "testdata/gatekeeper/deployment.yaml"},
			"broken/rego-syntax.yaml:2: template attestbrokenrego: "},
		{"parameters against the template's schema", []string{"-f", gk("requiredlabels/template.yaml"), "-f", gk("requiredlabels/constraint-bad-parameters.yaml")},
			"constraint-bad-parameters.yaml:2: constraint AttestRequiredLabels/bad-parameters: "},
		{"inventory without a template", []string{"-f", "testdata/gatekeeper/deployment.yaml", "--inventory", "testdata/gatekeeper/pods.yaml"},
			"--inventory: no ConstraintTemplate among the inputs reads data.inventory"},
		{"--expand-workloads without constraints", []string{"-f", "testdata/gatekeeper/deployment.yaml", "--expand-workloads"}, "--expand-workloads: no Gatekeeper constraint among the inputs"},
		{"inventory and objects both from stdin", []string{"-f", "-", "--inventory", "-"}, "--inventory -: stdin is already read by -f -"},
		{"inventory that cannot be read", []string{"-f", gk("requiredlabels/template.yaml"), "-f", "testdata/gatekeeper/deployment.yaml", "--inventory", "testdata/gatekeeper/missing.yaml"},
			"--inventory: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := checkJSON(t, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.want)
			}
		})
	}
}

// TestValidateGatekeeper: validate compiles ConstraintTemplates (Rego, CEL, schema) and checks Constraints and
// ExpansionTemplates against them, each problem at the line of the YAML file it is about.
func TestValidateGatekeeper(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
	}{
		{"valid template, constraint and expansion", []string{gk("requiredlabels/template.yaml"), gk("requiredlabels/constraint.yaml"), gk("expansion/expansion-deployments.yaml")}, 0,
			[]string{"4 policies valid: AttestRequiredLabels/workloads-have-owner, ConstraintTemplate/attestrequiredlabels, ExpansionTemplate/expand-deployments, no-privileged-rego\n"}},
		{"broken templates, each at its line", []string{gk("broken")}, 1, []string{
			"broken/cel-expression.yaml:17: template attestbrokencel: validation[0]: compilation failed: ERROR: <input>:1:10: undefined field 'undeclared'",
			"broken/cel-variable.yaml:18: template attestbrokencelvariable: variable names: compilation failed:",
			"broken/name-not-kind.yaml:2: template required-labels: invalid ConstraintTemplate: the ConstraintTemplate's name \"required-labels\" is not equal to the lowercase of CRD's Kind",
			"broken/rego-syntax.yaml:19: template attestbrokenrego: invalid ConstraintTemplate: 1 error occurred: template:6: rego_parse_error: unexpected eof token",
			"broken/rego-undefined-function.yaml:17: template attestundefinedfunction: unable to compile modules: 1 error occurred: template:4: rego_type_error: undefined function is_privileged",
		}},
		{"constraint against the template's schema", []string{gk("requiredlabels")}, 1, []string{
			"requiredlabels/constraint-bad-parameters.yaml:2: constraint AttestRequiredLabels/bad-parameters: schema validation failed: [].spec.parameters.labels: Invalid value: \"string\": spec.parameters.labels in body must be of type array",
		}},
		{"constraint without its template", []string{"testdata/gatekeeper/orphan-constraint.yaml"}, 1, []string{
			"testdata/gatekeeper/orphan-constraint.yaml:8: constraint K8sNoSuchTemplate/orphan: no ConstraintTemplate defines the kind K8sNoSuchTemplate",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"policy", "validate"}, tt.args...)
			if tt.code == 0 {
				args = append(args, "testdata/gatekeeper/rego")
			}
			out, errOut, code := attest(t, "", args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestServeGatekeeper: `attest serve --gatekeeper` enforces the constraints of its files in the webhook, over
// real TLS: an enforced constraint denies with the template's message naming the constraint, a dryrun one admits
// without a warning and records the violation (audit annotation), metrics count them by <Kind>/<name>.
func TestServeGatekeeper(t *testing.T) {
	sv := startServe(t, "--config", "testdata/exemptions/policies.yaml",
		"--gatekeeper", gk("requiredlabels/template.yaml"), "--gatekeeper", gk("requiredlabels/constraint.yaml"),
		"--gatekeeper", gk("requiredlabels/constraint-dryrun.yaml"))
	client, webhookURL, metricsURL := sv.client, sv.webhookURL, sv.metricsURL
	unlabelled := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "shop", "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "gcr.io/company/web:1"}}}}
	resp := postReview(t, client, webhookURL+"/validate", admission.ObjectInput(unlabelled, "shop", time.Now()), unlabelled)
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, `[AttestRequiredLabels/workloads-have-owner]: Pod web must have the labels {"owner"}`) {
		t.Errorf("an unlabelled Pod: allowed %v, result %+v", resp.Allowed, resp.Result)
	}
	service := map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "web-frontend", "namespace": "shop"},
		"spec": map[string]any{"ports": []any{map[string]any{"port": 80}}}}
	resp = postReview(t, client, webhookURL+"/validate", admission.ObjectInput(service, "shop", time.Now()), service)
	// dryrun is record-only, as in Gatekeeper: admitted with no warning, the violation in the audit annotation.
	if !resp.Allowed || len(resp.Warnings) > 0 || !strings.Contains(resp.AuditAnnotations["violations"], "AttestRequiredLabels/services-have-app") ||
		resp.AuditAnnotations["decision"] != "allowed" {
		t.Errorf("a Service under a dryrun constraint: allowed %v, warnings %q, audit annotations %v", resp.Allowed, resp.Warnings, resp.AuditAnnotations)
	}
	mresp, err := client.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	_ = mresp.Body.Close()
	for _, want := range []string{
		`attest_policy_evaluations_total{policy="AttestRequiredLabels/workloads-have-owner",result="failed"} 1`,
		`attest_policy_evaluations_total{policy="AttestRequiredLabels/services-have-app",result="failed"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	_, stderrOut, code := attest(t, "", "serve", "--cert-dir", t.TempDir(), "--gatekeeper", gk("requiredlabels/template.yaml"))
	if code != 2 || !strings.Contains(stderrOut, "--gatekeeper: no Constraint in") {
		t.Errorf("serve --gatekeeper without constraints: exit %d, %s", code, stderrOut)
	}
}
