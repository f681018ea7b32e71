//go:build !lean

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/exemptions"
)

var clusterNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeCluster is a controller-runtime fake client behind the CLI's cluster connector; it records the
// kubeconfig and context the command asked for. The real API server path is the e2e suite's.
type fakeCluster struct {
	client           client.Client
	namespace        string
	kubeconfig, kctx string
}

func (f *fakeCluster) connect(kubeconfig, context string) (client.Client, string, error) {
	f.kubeconfig, f.kctx = kubeconfig, context
	return f.client, f.namespace, nil
}

// attestWith runs the CLI against a fake cluster at clusterNow.
func attestWith(t *testing.T, f *fakeCluster, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, clock: clocktesting.NewFakePassiveClock(clusterNow)}
	if f != nil {
		a.cluster = f.connect
	}
	code := runApp(context.Background(), args, a)
	return out.String(), errOut.String(), code
}

func exemptArgs(extra ...string) []string {
	return append([]string{"policy", "exempt", "--policy", "no-privileged", "--resource", "Deployment/shop/web", "--reason", "CHG-7: the agent needs host access", "--duration", "7d"}, extra...)
}

func TestExemptPrintsYAML(t *testing.T) {
	out, errOut, code := attestWith(t, nil, exemptArgs("--ticket", "CHG-7", "--approved-by", "carol")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "exempt.golden.yaml", out)
	var pe v1alpha1.PolicyException
	if err := yaml.UnmarshalStrict([]byte(out), &pe); err != nil {
		t.Fatal(err)
	}
	if !pe.Spec.ExpiresAt.Equal(&metav1.Time{Time: clusterNow.Add(7 * 24 * time.Hour)}) || pe.Namespace != "shop" || pe.Name != "deployment-web-no-privileged" {
		t.Fatalf("%+v", pe)
	}
}

func TestExemptRefusals(t *testing.T) {
	dir := t.TempDir()
	strict := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(strict, []byte("exemptions:\n  maxDuration: 14d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"policy", "exempt", "--resource", "Deployment/shop/web", "--reason", "r"}
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"nothing", []string{"policy", "exempt"}, "required: --duration, --policy, --reason, --resource"},
		{"beyond the default maximum", append(base, "--policy", "no-privileged", "--duration", "45d"), "--duration 45d is beyond the maximum of 30d (exemptions.maxDuration); ask for at most 30d"},
		{"beyond the configured maximum", append(base, "--policy", "no-privileged", "--duration", "3w", "--config", strict), "--duration 3w is beyond the maximum of 14d"},
		{"not a duration", append(base, "--policy", "no-privileged", "--duration", "soon"), `--duration: "soon" is not a duration`},
		{"unknown policy", append(base, "--policy", "no-such", "--duration", "1d"), `spec.policies[0]: unknown policy "no-such"`},
		{"resource without namespace", []string{"policy", "exempt", "--resource", "Deployment/web", "--reason", "r", "--policy", "no-privileged", "--duration", "1d"}, `--resource "Deployment/web": want KIND/NAMESPACE/NAME`},
		{"bad namespace", []string{"policy", "exempt", "--resource", "Deployment/Shop_1/web", "--reason", "r", "--policy", "no-privileged", "--duration", "1d"}, `namespace "Shop_1"`},
		{"bad name", append(base, "--policy", "no-privileged", "--duration", "1d", "--name", "Web!"), `--name "Web!"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := attestWith(t, nil, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q, want it to contain %q", code, errOut, tc.stderr)
			}
		})
	}
	t.Run("within the configured maximum", func(t *testing.T) {
		_, errOut, code := attestWith(t, nil, append(base, "--policy", "no-privileged", "--duration", "2w", "--config", strict)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func TestExceptionName(t *testing.T) {
	cases := []struct {
		kind, name string
		policies   []string
		want       string
	}{
		{"Deployment", "web", []string{"no-privileged"}, "deployment-web-no-privileged"},
		{"CronJob", "nightly.report", []string{"no-privileged", "trusted-registries"}, "cronjob-nightly-report-no-privileged-trusted-registries"},
		{"Deployment", "a-very-long-deployment-name-for-the-payments-service", []string{"require-attestation"}, "deployment-a-very-long-deployment-name-for-the-payments-service"},
		{"Pod", "x-", []string{"resource-limits"}, "pod-x--resource-limits"},
		{"StatefulSet", strings.Repeat("d", 48), []string{"no-privileged"}, "statefulset-" + strings.Repeat("d", 48) + "-no"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			got := exceptionName(tc.kind, tc.name, tc.policies)
			if got != tc.want || len(got) > 63 {
				t.Fatalf("exceptionName = %q (%d), want %q", got, len(got), tc.want)
			}
		})
	}
}

func newFakeCluster(t *testing.T, ns string, objs ...client.Object) *fakeCluster {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(clusterScheme()).WithObjects(objs...).Build()
	return &fakeCluster{client: c, namespace: ns}
}

func TestExemptApply(t *testing.T) {
	f := newFakeCluster(t, "default")
	out, errOut, code := attestWith(t, f, exemptArgs("--apply", "--kubeconfig", "/tmp/kc", "--context", "prod")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if f.kubeconfig != "/tmp/kc" || f.kctx != "prod" {
		t.Errorf("connected with kubeconfig %q context %q", f.kubeconfig, f.kctx)
	}
	if !strings.Contains(out, "policyexception.policy.attest.continuu.ms/deployment-web-no-privileged created in namespace shop: Pending until approved (attest policy exempt approve deployment-web-no-privileged -n shop)") {
		t.Errorf("output %q", out)
	}
	var pe v1alpha1.PolicyException
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "deployment-web-no-privileged"}, &pe); err != nil {
		t.Fatal(err)
	}
	if pe.Spec.Policies[0] != "no-privileged" || pe.Spec.Targets[0].Kinds[0] != "Deployment" || pe.Spec.Targets[0].Names[0] != "web" || pe.Spec.ApprovedBy != "pending" {
		t.Errorf("created %+v", pe.Spec)
	}
	_, errOut, code = attestWith(t, f, exemptArgs("--apply")...)
	if code != 1 || !strings.Contains(errOut, "PolicyException shop/deployment-web-no-privileged already exists") {
		t.Fatalf("second create: exit %d, %s", code, errOut)
	}
}

// governingCluster is a fake cluster whose Patch does what ATTEST's mutating webhook does with an approve
// annotation (exemptions.Govern, from the approver's identity), so the CLI's whole approve path runs.
func governingCluster(t *testing.T, approver exemptions.Writer, objs ...client.Object) *fakeCluster {
	t.Helper()
	g, err := exemptions.NewGovernance(exemptions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(clusterScheme()).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			old := &v1alpha1.PolicyException{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), old); err != nil {
				return err
			}
			if err := c.Patch(ctx, obj, patch, opts...); err != nil {
				return err
			}
			pe := obj.(*v1alpha1.PolicyException)
			annotations, status, err := exemptions.Govern(g, approver, pe, old, clusterNow)
			if err != nil {
				_ = c.Update(ctx, old) // the webhook refused the write: nothing changes
				return apierrors.NewForbidden(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "policyexceptions"}, pe.Name, err)
			}
			pe.Annotations, pe.Status = annotations, status
			return c.Update(ctx, pe)
		},
	}).Build()
	return &fakeCluster{client: c, namespace: "shop"}
}

func pendingException(name, creator string) *v1alpha1.PolicyException {
	return &v1alpha1.PolicyException{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Annotations: map[string]string{v1alpha1.AnnotationCreatedBy: creator}},
		Spec: v1alpha1.PolicyExceptionSpec{
			Policies: []string{"no-privileged"}, Targets: []v1alpha1.ExceptionTarget{{Kinds: []string{"Deployment"}, Names: []string{"web"}}},
			ExpiresAt: metav1.NewTime(clusterNow.Add(72 * time.Hour)), Reason: "r", ApprovedBy: "carol",
		},
	}
}

func TestExemptApprove(t *testing.T) {
	carol := exemptions.Writer{User: "carol", Groups: []string{"security-team"}}
	t.Run("an approver's approval is recorded", func(t *testing.T) {
		f := governingCluster(t, carol, pendingException("web", "bob"))
		out, errOut, code := attestWith(t, f, "policy", "exempt", "approve", "web", "--comment", "until the operator ships")
		if code != 0 || out != "PolicyException shop/web approved: Approved, 1 valid approvals\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		var pe v1alpha1.PolicyException
		if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "web"}, &pe); err != nil {
			t.Fatal(err)
		}
		if len(pe.Status.Approvals) != 1 || pe.Status.Approvals[0].User != "carol" || pe.Status.Approvals[0].Comment != "until the operator ships" {
			t.Errorf("approvals %+v", pe.Status.Approvals)
		}
	})
	t.Run("the creator cannot approve", func(t *testing.T) {
		f := governingCluster(t, carol, pendingException("web", "carol"))
		_, errOut, code := attestWith(t, f, "policy", "exempt", "approve", "web", "-n", "shop")
		if code != 1 || !strings.Contains(errOut, "carol created PolicyException web and cannot approve it") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("not found", func(t *testing.T) {
		f := governingCluster(t, carol)
		_, errOut, code := attestWith(t, f, "policy", "exempt", "approve", "nope", "-n", "prod")
		if code != 1 || !strings.Contains(errOut, "PolicyException prod/nope not found") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("without ATTEST's webhook the annotation stays and the CLI says so", func(t *testing.T) {
		f := newFakeCluster(t, "shop", pendingException("web", "bob"))
		out, _, code := attestWith(t, f, "policy", "exempt", "approve", "web", "--comment", "ok")
		if code != 1 || !strings.Contains(out, "no ATTEST webhook recorded it") {
			t.Fatalf("exit %d: %q", code, out)
		}
		var pe v1alpha1.PolicyException
		if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "web"}, &pe); err != nil {
			t.Fatal(err)
		}
		if pe.Annotations[v1alpha1.AnnotationApprove] != "ok" || pe.Annotations[v1alpha1.AnnotationCreatedBy] != "bob" {
			t.Errorf("annotations after the merge patch: %v", pe.Annotations)
		}
	})
	t.Run("a name is required", func(t *testing.T) {
		_, errOut, code := attestWith(t, newFakeCluster(t, "shop"), "policy", "exempt", "approve")
		if code != 2 || !strings.Contains(errOut, "accepts 1 arg(s)") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

// exceptionsFixture: one exception of each status, in two namespaces.
func exceptionsFixture() []client.Object {
	approved := func(pe *v1alpha1.PolicyException) *v1alpha1.PolicyException {
		hash := exemptions.SpecHash(pe.Spec)
		pe.Status = v1alpha1.PolicyExceptionStatus{Phase: exemptions.PhaseApproved, ApprovalCount: 1, SpecHash: hash, Approvals: []v1alpha1.Approval{
			{User: "carol", Groups: []string{"security-team"}, Time: metav1.NewTime(clusterNow.Add(-time.Hour)), SpecHash: hash, Comment: "ok"},
		}}
		return pe
	}
	active := approved(pendingException("active", "bob"))
	pending := pendingException("pending", "bob")
	expired := pendingException("expired", "bob")
	expired.Spec.ExpiresAt = metav1.NewTime(clusterNow.Add(-3 * 24 * time.Hour))
	expired = approved(expired)
	changed := approved(pendingException("changed", "bob"))
	changed.Spec.Policies = []string{"no-privileged", "trusted-registries"} // edited behind the webhook's back
	other := pendingException("other", "dave")
	other.Namespace = "payments"
	other.Spec.Targets = []v1alpha1.ExceptionTarget{{Kinds: []string{"Pod"}, Names: []string{"batch-*"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}}}}
	other = approved(other)
	return []client.Object{active, pending, expired, changed, other}
}

func TestExemptionsList(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string // namespace/name:status
	}{
		{"context namespace", nil, []string{"shop/active:active", "shop/changed:pending", "shop/expired:expired", "shop/pending:pending"}},
		{"-n", []string{"-n", "payments"}, []string{"payments/other:active"}},
		{"-A", []string{"-A"}, []string{"payments/other:active", "shop/active:active", "shop/changed:pending", "shop/expired:expired", "shop/pending:pending"}},
		{"pending", []string{"-A", "--status", "pending"}, []string{"shop/changed:pending", "shop/pending:pending"}},
		{"active", []string{"--status", "active"}, []string{"shop/active:active"}},
		{"expired", []string{"-A", "--status", "expired"}, []string{"shop/expired:expired"}},
		{"none", []string{"-n", "empty"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster(t, "shop", exceptionsFixture()...)
			out, errOut, code := attestWith(t, f, append([]string{"policy", "exemptions", "list", "--format", "json"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var entries []exceptionEntry
			if err := json.Unmarshal([]byte(out), &entries); err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, e := range entries {
				got = append(got, e.Namespace+"/"+e.Name+":"+e.Status)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		f := newFakeCluster(t, "shop", exceptionsFixture()...)
		out, errOut, code := attestWith(t, f, "policy", "exemptions", "list", "-A")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		golden(t, "exemptions-list.golden.text", out)
		out, _, _ = attestWith(t, f, "policy", "exemptions", "list", "-n", "empty")
		if out != "No PolicyExceptions found in namespace empty.\n" {
			t.Errorf("empty: %q", out)
		}
	})
	t.Run("errors", func(t *testing.T) {
		f := newFakeCluster(t, "shop")
		for args, want := range map[string]string{
			"--status approved": "--status must be pending, active or expired",
			"-A -n shop":        "-n and -A exclude each other",
			"--format yaml":     "--format must be text or json",
		} {
			_, errOut, code := attestWith(t, f, append([]string{"policy", "exemptions", "list"}, strings.Fields(args)...)...)
			if code != 2 || !strings.Contains(errOut, want) {
				t.Errorf("%s: exit %d, %q", args, code, errOut)
			}
		}
	})
}

func TestRelative(t *testing.T) {
	for d, want := range map[time.Duration]string{
		36 * time.Hour:            "in 1d12h",
		-72 * time.Hour:           "3d ago",
		5*time.Hour + time.Minute: "in 5h",
		14 * 24 * time.Hour:       "in 14d",
	} {
		if got := relative(d); got != want {
			t.Errorf("relative(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestKubeconfigCluster: the connector reads kubeconfig like kubectl: the explicit file, the chosen context and
// its namespace ("default" when it names none); no API call is made until a command needs one.
func TestKubeconfigCluster(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: dev
  context: {cluster: c, user: u}
- name: prod
  context: {cluster: c, user: u, namespace: payments}
current-context: dev
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ context, ns string }{{"", "default"}, {"prod", "payments"}} {
		c, ns, err := kubeconfigCluster(path, tc.context)
		if err != nil || c == nil || ns != tc.ns {
			t.Errorf("context %q: namespace %q, %v", tc.context, ns, err)
		}
	}
	if _, _, err := kubeconfigCluster(path, "staging"); err == nil || !strings.Contains(err.Error(), `context "staging"`) {
		t.Errorf("unknown context: %v", err)
	}
	_, errOut, code := attest(t, "", "policy", "exemptions", "list", "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if code != 2 || !strings.Contains(errOut, "kubeconfig") {
		t.Errorf("missing kubeconfig: exit %d, %q", code, errOut)
	}
}
