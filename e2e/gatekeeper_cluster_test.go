package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/e2e/harness"
)

// The templates TestGatekeeperInTheCluster applies: a Rego one (Deployments need labels) and a CEL one (at most N
// replicas), as a platform team running Gatekeeper writes them.
const (
	gkLabelsTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: atteste2elabels
  annotations:
    metadata.gatekeeper.sh/title: Required labels
spec:
  crd:
    spec:
      names:
        kind: AttestE2eLabels
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels:
              type: array
              items: {type: string}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package atteste2elabels

        violation[{"msg": msg}] {
          required := {l | l := input.parameters.labels[_]}
          provided := {l | input.review.object.metadata.labels[l]}
          missing := required - provided
          count(missing) > 0
          msg := sprintf("%v %v must have the labels %v", [input.review.kind.kind, input.review.object.metadata.name, missing])
        }
`
	gkReplicasTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: atteste2ereplicas
spec:
  crd:
    spec:
      names:
        kind: AttestE2eReplicas
      validation:
        openAPIV3Schema:
          type: object
          properties:
            max: {type: integer}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
              - expression: "!has(object.spec.replicas) || object.spec.replicas <= variables.params.max"
                messageExpression: "'replicas ' + string(object.spec.replicas) + ' is more than ' + string(variables.params.max)"
`
	// owned by someone else: its CRD exists before ATTEST sees the template, without ATTEST's label.
	gkForeignTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: atteste2eforeign
spec:
  crd:
    spec:
      names:
        kind: AttestE2eForeign
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package atteste2eforeign

        violation[{"msg": "foreign says no"}] {
          input.review.object.metadata.name == "forbidden"
        }
`
	gkBrokenRego = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: atteste2ebroken
spec:
  crd:
    spec:
      names:
        kind: AttestE2eBroken
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package atteste2ebroken

        violation[{"msg": msg}] {
          msg := 
        }
`
	gkBrokenCEL = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: atteste2ebrokencel
spec:
  crd:
    spec:
      names:
        kind: AttestE2eBrokenCel
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
              - expression: "object.spec.replicas <="
                message: never compiles
`
)

// gkInventoryTemplate reads data.inventory: a Deployment in a namespace labelled frozen is denied.
const gkInventoryTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: atteste2efrozen
spec:
  crd:
    spec:
      names:
        kind: AttestE2eFrozen
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package atteste2efrozen

        violation[{"msg": msg}] {
          ns := input.review.object.metadata.namespace
          data.inventory.cluster["v1"]["Namespace"][ns].metadata.labels["e2e.attest.continuu.ms/frozen"] == "true"
          msg := sprintf("namespace %v is frozen", [ns])
        }
`

func gkConstraint(kind, name, ns, action, params string) string {
	if params != "" {
		params = "  parameters: " + params + "\n"
	}
	return fmt.Sprintf(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: %s
metadata:
  name: %s
spec:
  enforcementAction: %s
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
    namespaces: [%s]
%s`, kind, name, action, ns, params)
}

func labelledDeployment(ns, name string, replicas int, labels string) string {
	return strings.Replace(deployment(ns, name, replicas, container("app", trustedImage, false)),
		"  namespace: "+ns+"\n", "  namespace: "+ns+"\n  labels: "+labels+"\n", 1)
}

// applyGatekeeperOverlay applies manifests/overlays/gatekeeper as a user would, except its webhook configurations
// (the harness registers ATTEST by URL): the overlay's resource-webhook rules for templates and constraints are
// registered by URL in a configuration of their own, removed when the test ends.
func applyGatekeeperOverlay(t *testing.T, ctx context.Context) {
	t.Helper()
	built, errOut, ok := kubectl(t, "", "kustomize", filepath.Join("..", "manifests", "overlays", "gatekeeper"))
	if !ok {
		t.Fatalf("kustomize the overlay: %s", errOut)
	}
	var keep []string
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	for _, doc := range strings.Split(built, "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ValidatingWebhookConfiguration":
			if err := yaml.Unmarshal([]byte(doc), &vwc); err != nil {
				t.Fatal(err)
			}
		case "MutatingWebhookConfiguration":
		default:
			keep = append(keep, doc)
		}
	}
	if out, errOut, ok := kubectl(t, strings.Join(keep, "\n---\n"), "apply", "--server-side", "--force-conflicts", "-f", "-"); !ok {
		t.Fatalf("apply the overlay: %s%s", out, errOut)
	}
	if _, errOut, ok := kubectl(t, "", "wait", "--for=condition=established", "--timeout=30s",
		"crd/constrainttemplates.templates.gatekeeper.sh", "crd/expansiontemplate.expansion.gatekeeper.sh", "crd/configs.config.gatekeeper.sh"); !ok {
		t.Fatalf("CRDs not established: %s", errOut)
	}
	ca, _, err := cluster.CABundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	local := admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "attest-e2e-gatekeeper"}}
	for _, w := range vwc.Webhooks {
		if w.Name != "resources.attest.continuu.ms" {
			continue
		}
		var rules []admissionregistrationv1.RuleWithOperations
		for _, r := range w.Rules {
			if strings.HasSuffix(r.APIGroups[0], "gatekeeper.sh") {
				rules = append(rules, r)
			}
		}
		if len(rules) != 2 {
			t.Fatalf("the overlay's resource webhook has %d Gatekeeper rules, want 2 (templates, constraints)", len(rules))
		}
		w.Rules = rules
		url := fmt.Sprintf("https://%s:%d%s", harness.WebhookHost, cluster.AttestPort, *w.ClientConfig.Service.Path)
		w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca}
		local.Webhooks = append(local.Webhooks, w)
	}
	vwcs := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := vwcs.Create(ctx, &local, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vwcs.Delete(context.Background(), local.Name, metav1.DeleteOptions{}) })
}

// TestGatekeeperInTheCluster: ATTEST with --gatekeeper-watch and the gatekeeper overlay, against the real API server,
// as issue 14's acceptance lists: a Rego and a CEL template applied, ATTEST creates both constraint CRDs (and not
// one that another owner has), constraints applied and listed by `kubectl get constraints`, a violating Deployment
// denied with the template's message naming the constraint, warn shows Warning:, dryrun admits and logs, a
// PolicyException for the constraint exempts, deleting the constraint stops enforcement within seconds, broken
// templates are refused at apply with the compiler's message, and the constraint's name labels the metrics.
func TestGatekeeperInTheCluster(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	applyGatekeeperOverlay(t, ctx)
	ns := namespace(t, "e2e-gatekeeper-cluster")
	grantExceptions(t, ns)
	// Someone else's constraint CRD (Gatekeeper's, say): made from the template by ATTEST's own code path would be
	// cheating, so it is the plain CRD a user could write, without ATTEST's owner label.
	foreignCRD := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: atteste2eforeign.constraints.gatekeeper.sh
  labels: {gatekeeper.sh/constraint: "yes"}
spec:
  group: constraints.gatekeeper.sh
  names: {kind: AttestE2eForeign, plural: atteste2eforeign, singular: atteste2eforeign, listKind: AttestE2eForeignList, categories: [constraint, constraints]}
  scope: Cluster
  versions:
    - name: v1beta1
      served: true
      storage: true
      subresources: {status: {}}
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`
	if out, errOut, ok := kubectl(t, foreignCRD, "apply", "-f", "-"); !ok {
		t.Fatalf("foreign CRD: %s%s", out, errOut)
	}
	t.Cleanup(func() {
		for _, tmpl := range []string{"atteste2elabels", "atteste2ereplicas", "atteste2eforeign", "atteste2efrozen"} {
			kubectl(t, "", "delete", "constrainttemplate", tmpl, "--ignore-not-found")
		}
		kubectl(t, "", "delete", "crd", "atteste2eforeign.constraints.gatekeeper.sh", "--ignore-not-found")
	})
	if err := cluster.StartAttestWith(ctx, "--gatekeeper-watch"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.StartAttest(context.Background()); err != nil {
			t.Errorf("restart ATTEST: %v", err)
		}
	})
	foreignRV, _, _ := kubectl(t, "", "get", "crd", "atteste2eforeign.constraints.gatekeeper.sh", "-o", "jsonpath={.metadata.resourceVersion}")

	// Broken templates are refused at kubectl apply with the compiler's message, and never stored.
	if _, errOut, ok := kubectl(t, gkBrokenRego, "apply", "-f", "-"); ok || !strings.Contains(errOut, `admission webhook "resources.attest.continuu.ms" denied the request`) || !strings.Contains(errOut, "rego_parse_error") {
		t.Fatalf("a template whose Rego does not parse was not refused with the compiler's message: %s", errOut)
	}
	if _, errOut, ok := kubectl(t, gkBrokenCEL, "apply", "-f", "-"); ok || !strings.Contains(errOut, `denied the request`) || !strings.Contains(errOut, "Syntax error") {
		t.Fatalf("a template whose CEL does not compile was not refused with the compiler's message: %s", errOut)
	}

	for _, tmpl := range []string{gkLabelsTemplate, gkReplicasTemplate, gkForeignTemplate} {
		if out, errOut, ok := kubectl(t, tmpl, "apply", "-f", "-"); !ok {
			t.Fatalf("apply template: %s%s", out, errOut)
		}
	}
	eventually(t, 30*time.Second, func() error {
		for _, kind := range []string{"atteste2elabels", "atteste2ereplicas"} {
			out, errOut, ok := kubectl(t, "", "get", "crd", kind+".constraints.gatekeeper.sh", "-o",
				`jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by} {.metadata.ownerReferences[0].name} {.spec.names.categories}`)
			if !ok || out != "attest "+kind+` ["constraint","constraints"]` {
				return fmt.Errorf("constraint CRD of %s: %q %s", kind, out, errOut)
			}
			out, _, _ = kubectl(t, "", "get", "constrainttemplate", kind, "-o", "jsonpath={.status.created} {.status.byPod[0].id}")
			if !strings.HasPrefix(out, "true attest-") {
				return fmt.Errorf("template %s status: %q", kind, out)
			}
		}
		return nil
	})

	constraints := gkConstraint("AttestE2eLabels", "deploy-must-have-owner", ns, "deny", "{labels: [owner]}") + "---\n" +
		gkConstraint("AttestE2eReplicas", "at-most-three", ns, "warn", "{max: 3}") + "---\n" +
		gkConstraint("AttestE2eForeign", "no-forbidden", ns, "deny", "")
	if out, errOut, ok := kubectl(t, constraints, "apply", "-f", "-"); !ok {
		t.Fatalf("apply constraints: %s%s", out, errOut)
	}
	t.Cleanup(func() {
		kubectl(t, constraints, "delete", "--ignore-not-found", "-f", "-")
	})
	out, errOut, _ := kubectl(t, "", "get", "constraints")
	for _, name := range []string{"atteste2elabels.constraints.gatekeeper.sh/deploy-must-have-owner", "atteste2ereplicas.constraints.gatekeeper.sh/at-most-three", "atteste2eforeign.constraints.gatekeeper.sh/no-forbidden"} {
		if !strings.Contains(out, name) {
			t.Fatalf("kubectl get constraints does not list %s:\n%s%s", name, out, errOut)
		}
	}
	// A constraint whose parameters do not fit the template's schema is refused by the API server (the CRD
	// ATTEST made carries the schema).
	if _, errOut, ok := kubectl(t, gkConstraint("AttestE2eReplicas", "bad-params", ns, "deny", "{max: three}"), "apply", "-f", "-"); ok || !strings.Contains(errOut, "spec.parameters.max") {
		t.Fatalf("a constraint with a string where the schema says integer was not refused: %s", errOut)
	}

	const denial = `[AttestE2eLabels/deploy-must-have-owner]: Deployment web must have the labels {"owner"}`
	eventually(t, 30*time.Second, func() error {
		_, errOut, ok := kubectl(t, deployment(ns, "web", 1, container("app", trustedImage, false)), "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(errOut, denial) {
			return fmt.Errorf("a Deployment without owner: %s", errOut)
		}
		return nil
	})
	out, errOut, ok := kubectl(t, labelledDeployment(ns, "web", 5, "{owner: team-a}"), "apply", "--dry-run=server", "-f", "-")
	if !ok || !strings.Contains(out+errOut, "Warning: audit: [AttestE2eReplicas/at-most-three]: replicas 5 is more than 3") {
		t.Fatalf("warn constraint: admitted %v, want a Warning:\n%s%s", ok, out, errOut)
	}
	// The CRD someone else owns is read, never changed; its constraints are enforced all the same.
	if rv, _, _ := kubectl(t, "", "get", "crd", "atteste2eforeign.constraints.gatekeeper.sh", "-o", "jsonpath={.metadata.resourceVersion}"); rv != foreignRV {
		t.Fatalf("ATTEST changed a CRD it does not own: resourceVersion %s -> %s", foreignRV, rv)
	}
	eventually(t, 30*time.Second, func() error {
		_, errOut, ok := kubectl(t, labelledDeployment(ns, "forbidden", 1, "{owner: team-a}"), "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(errOut, "[AttestE2eForeign/no-forbidden]: foreign says no") {
			return fmt.Errorf("a constraint of a CRD ATTEST does not own: %s", errOut)
		}
		return nil
	})
	// The overlay's admission policy keeps ATTEST's ServiceAccount to constraint CRDs it owns.
	otherCRD := strings.NewReplacer("atteste2eforeign.constraints.gatekeeper.sh", "widgets.example.com", "constraints.gatekeeper.sh", "example.com",
		"AttestE2eForeign", "Widget", "atteste2eforeign", "widgets").Replace(foreignCRD)
	if _, errOut, ok := kubectlAs(t, harness.ServiceAccountUser, []string{"system:serviceaccounts"}, otherCRD, "create", "-f", "-"); ok || !strings.Contains(errOut, "ATTEST may create and change only the constraint CRDs it owns") {
		t.Fatalf("ATTEST's ServiceAccount created a CRD outside constraints.gatekeeper.sh: %s", errOut)
	}

	// dryrun is record-only, as in Gatekeeper: admitted without a warning, the finding in the decision log.
	if out, errOut, ok := kubectl(t, gkConstraint("AttestE2eReplicas", "at-most-three", ns, "dryrun", "{max: 3}"), "apply", "-f", "-"); !ok {
		t.Fatalf("switch to dryrun: %s%s", out, errOut)
	}
	// Until the switch reaches the live set the constraint still warns, so each attempt names its own Deployment and
	// the decision-log line of an attempt that showed nothing must hold the finding. Lines are written in batches
	// (at most 50 ms late), so the lines of the silent attempts so far are looked for on every attempt.
	attempt := 0
	var silent []string
	eventually(t, 15*time.Second, func() error {
		attempt++
		name := fmt.Sprintf("dry-%d", attempt)
		out, errOut, ok := kubectl(t, labelledDeployment(ns, name, 5, "{owner: team-a}"), "apply", "--dry-run=server", "-f", "-")
		if !ok {
			return fmt.Errorf("dryrun constraint denied: %s", errOut)
		}
		if strings.Contains(out+errOut, "AttestE2eReplicas") {
			return fmt.Errorf("a dryrun constraint is record-only, yet kubectl showed it:\n%s", out+errOut)
		}
		silent = append(silent, name)
		found := false
		for _, line := range strings.Split(cluster.AttestLog(), "\n") {
			for _, n := range silent {
				if !strings.Contains(line, `"msg":"admission"`) || !strings.Contains(line, `"name":"`+n+`"`) {
					continue
				}
				if !strings.Contains(line, "AttestE2eReplicas/at-most-three") {
					t.Fatalf("the decision log of Deployment %s, admitted without a warning, has no finding of the dryrun constraint:\n%s", n, line)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("the decision log has no line yet for the Deployments %v (output %s)", silent, out+errOut)
		}
		return nil
	})

	// A PolicyException naming the constraint exempts the Deployment it targets, once approved.
	exception := strings.Replace(policyException(ns, "web-owner", time.Now().Add(7*24*time.Hour)), "policies: [no-privileged]", "policies: [AttestE2eLabels/deploy-must-have-owner]", 1)
	if out, errOut, ok := kubectlAs(t, requester, nil, exception, "apply", "-f", "-"); !ok {
		t.Fatalf("create the exception: %s%s", out, errOut)
	}
	if out, errOut, ok := kubectlAs(t, approver, []string{"security-team"}, "", "annotate", "policyexception", "web-owner", "-n", ns, "policy.attest.continuu.ms/approve=reviewed"); !ok {
		t.Fatalf("approve: %s%s", out, errOut)
	}
	eventually(t, 15*time.Second, func() error {
		out, errOut, ok := kubectl(t, deployment(ns, "web", 1, container("app", trustedImage, false)), "apply", "--dry-run=server", "-f", "-")
		if !ok || !strings.Contains(out+errOut, "exempted by PolicyException "+ns+"/web-owner") {
			return fmt.Errorf("the approved exception does not exempt: %s%s", out, errOut)
		}
		return nil
	})

	// The constraint's name labels the metrics, as a Rego policy's does.
	m := metricsText(t)
	if !strings.Contains(m, `attest_policy_evaluations_total{policy="AttestE2eLabels/deploy-must-have-owner",result="failed"}`) {
		t.Fatalf("no failed evaluation of AttestE2eLabels/deploy-must-have-owner in the metrics")
	}

	// Deleting the constraint stops enforcement within seconds.
	if _, errOut, ok := kubectl(t, deployment(ns, "api", 1, container("app", trustedImage, false)), "apply", "--dry-run=server", "-f", "-"); ok || !strings.Contains(errOut, "[AttestE2eLabels/deploy-must-have-owner]") {
		t.Fatalf("api should be denied before the constraint goes: %s", errOut)
	}
	if out, errOut, ok := kubectl(t, "", "delete", "atteste2elabels.constraints.gatekeeper.sh", "deploy-must-have-owner"); !ok {
		t.Fatalf("delete the constraint: %s%s", out, errOut)
	}
	deleted := time.Now()
	eventually(t, 10*time.Second, func() error {
		if _, errOut, ok := kubectl(t, deployment(ns, "api", 1, container("app", trustedImage, false)), "apply", "--dry-run=server", "-f", "-"); !ok {
			return fmt.Errorf("still denied after the constraint was deleted: %s", errOut)
		}
		return nil
	})
	t.Logf("enforcement stopped %s after the constraint was deleted", time.Since(deleted).Round(10*time.Millisecond))

	// data.inventory from the Config's syncOnly, kept current by informers: a template that reads the namespace's
	// labels from the inventory denies once the label is set.
	if out, errOut, ok := kubectl(t, gkInventoryTemplate, "apply", "-f", "-"); !ok {
		t.Fatalf("apply the inventory template: %s%s", out, errOut)
	}
	config := `apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {name: config, namespace: ` + harness.Namespace + `}
spec:
  sync:
    syncOnly:
      - {group: "", version: v1, kind: Namespace}
`
	if out, errOut, ok := kubectl(t, config, "apply", "-f", "-"); !ok {
		t.Fatalf("apply the Config: %s%s", out, errOut)
	}
	t.Cleanup(func() { kubectl(t, config, "delete", "--ignore-not-found", "-f", "-") })
	frozen := gkConstraint("AttestE2eFrozen", "frozen-namespaces", ns, "deny", "")
	eventually(t, 30*time.Second, func() error {
		_, errOut, ok := kubectl(t, frozen, "apply", "-f", "-")
		if !ok {
			return fmt.Errorf("apply the constraint (its CRD may not be there yet): %s", errOut)
		}
		return nil
	})
	if _, errOut, ok := kubectl(t, "", "label", "namespace", ns, "e2e.attest.continuu.ms/frozen=true"); !ok {
		t.Fatal(errOut)
	}
	eventually(t, 30*time.Second, func() error {
		_, errOut, ok := kubectl(t, labelledDeployment(ns, "late", 1, "{owner: team-a}"), "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(errOut, "[AttestE2eFrozen/frozen-namespaces]: namespace "+ns+" is frozen") {
			return fmt.Errorf("a Deployment in a namespace the inventory says is frozen: %s", errOut)
		}
		return nil
	})

	// ATTEST's exported library runs in the cluster as Gatekeeper templates: its CRD is accepted by the API
	// server and its constraint denies as the library does.
	exported, errOut, ok := func() (string, string, bool) {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cluster.AttestBinary(), "policy", "export", "--format", "gatekeeper", "--policy", "no-privileged").Output()
		return string(out), fmt.Sprint(err), err == nil
	}()
	if !ok {
		t.Fatalf("attest policy export: %s", errOut)
	}
	exportedTemplate, exportedConstraint, _ := strings.Cut(exported, "\n---\n")
	if out, errOut, ok := kubectl(t, exportedTemplate, "apply", "-f", "-"); !ok {
		t.Fatalf("apply the exported template: %s%s", out, errOut)
	}
	t.Cleanup(func() { kubectl(t, "", "delete", "constrainttemplate", "attestnoprivileged", "--ignore-not-found") })
	eventually(t, 30*time.Second, func() error {
		if out, errOut, ok := kubectl(t, exportedConstraint, "apply", "-f", "-"); !ok {
			return fmt.Errorf("apply the exported constraint: %s%s", out, errOut)
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		_, errOut, ok := kubectl(t, strings.Replace(deployment(ns, "priv", 1, container("app", trustedImage, true)), "namespace: "+ns, "namespace: "+ns+"\n  labels: {owner: a}", 1), "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(errOut, "[AttestNoPrivileged/no-privileged]: spec.template.spec.containers[0]: privileged containers are not allowed") {
			return fmt.Errorf("the exported no-privileged does not deny: %s", errOut)
		}
		return nil
	})
	if n := strings.Count(cluster.AttestLog(), "constraint CRD updated"); n > 0 {
		t.Errorf("ATTEST updated its constraint CRDs %d times with no template change (it should see them as current)", n)
	}
}

func metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(cluster.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
