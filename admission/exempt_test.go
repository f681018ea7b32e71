package admission_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
)

const breakGlassConfig = TrustedConfig + `
exemptions:
  annotationGroups: [break-glass]
`

// exemptionEvaluator is the real pipeline with the break-glass governance and lookup for PolicyExceptions.
func exemptionEvaluator(t *testing.T, lookup exemptions.Lookup) *admission.Evaluator {
	t.Helper()
	e := Engine(t, Foundation...)
	cfg, err := config.Parse([]byte(breakGlassConfig), e)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := admission.New(admission.Options{Engine: e, Config: func() *config.Config { return cfg }, Exemptions: lookup})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func annotate(obj map[string]any, values map[string]string) map[string]any {
	md := obj["metadata"].(map[string]any)
	a := map[string]any{}
	for k, v := range values {
		a[k] = v
	}
	md["annotations"] = a
	return obj
}

func asUser(in admission.Input, user string, groups ...string) admission.Input {
	in.Request.Username, in.Request.Groups = user, groups
	return in
}

func TestAnnotationExemptionThroughThePipeline(t *testing.T) {
	ev := exemptionEvaluator(t, nil)
	ann := map[string]string{
		exemptions.AnnotationExempt: "no-privileged", exemptions.AnnotationReason: "incident 42",
		exemptions.AnnotationApprovedBy: "bob@company.com", exemptions.AnnotationExpires: "2026-11-27T12:00:00Z",
	}
	pod := func() map[string]any {
		return annotate(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", Privileged())}}), ann)
	}
	t.Run("unauthorized: denied, and the denial says why the exemption was ignored", func(t *testing.T) {
		d := ev.Evaluate(context.Background(), asUser(Create(pod()), "mallory", "developers"))
		want := "[no-privileged] spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException (exemption ignored: exemption annotations are honoured only for groups break-glass, and mallory is not one of them)"
		if d.Allowed || d.Message != want {
			t.Fatalf("allowed=%v message:\n%s\nwant:\n%s", d.Allowed, d.Message, want)
		}
	})
	t.Run("break-glass: allowed, with a warning naming the exemption, approver and expiry", func(t *testing.T) {
		d := ev.Evaluate(context.Background(), asUser(Create(pod()), "alice", "break-glass"))
		if !d.Allowed {
			t.Fatalf("denied: %s", d.Message)
		}
		want := `exempted by annotation metadata.annotations["policy.attest.continuu.ms/exempt"] (approved by bob@company.com (applied by alice), expires 2026-11-27T12:00:00Z): [no-privileged] spec.containers[0] (app): privileged containers are not allowed; remove secur…`
		if len(d.Warnings) < 2 || d.Warnings[0] != want || !strings.Contains(d.Warnings[1], "expires in 48h0m0s (2026-11-27T12:00:00Z)") {
			t.Fatalf("warnings:\n%s\nwant first:\n%s\nand an expiring-soon warning", strings.Join(d.Warnings, "\n"), want)
		}
		if got := d.Results[0]; got.Policy != "no-privileged" || got.Outcome != admission.OutcomeExempted {
			t.Fatalf("result %+v, want no-privileged exempted", got)
		}
		if !strings.Contains(d.AuditAnnotations[admission.AnnotationViolations], `"exempted":"annotation metadata.annotations[\"policy.attest.continuu.ms/exempt\"]"`) {
			t.Fatalf("audit annotation lacks the exemption: %s", d.AuditAnnotations[admission.AnnotationViolations])
		}
	})
	t.Run("exempting one policy never exempts another", func(t *testing.T) {
		obj := annotate(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "quay.io/evil/app:1")}}), ann)
		d := ev.Evaluate(context.Background(), asUser(Create(obj), "alice", "break-glass"))
		if d.Allowed || !strings.HasPrefix(d.Message, "[trusted-registries]") {
			t.Fatalf("an untrusted image passed on a no-privileged exemption: %s", d.Message)
		}
	})
	t.Run("expiry beyond the maximum is itself denied", func(t *testing.T) {
		far := annotate(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}}), map[string]string{
			exemptions.AnnotationExempt: "true", exemptions.AnnotationReason: "r", exemptions.AnnotationApprovedBy: "bob", exemptions.AnnotationExpires: "2027-06-01T00:00:00Z",
		})
		d := ev.Evaluate(context.Background(), asUser(Create(far), "alice", "break-glass"))
		want := `[exemptions] metadata.annotations["policy.attest.continuu.ms/exempt-expires"]: exemption expiry 2027-06-01T00:00:00Z is beyond the maximum of 30 days from now; set an expiry no later than 2026-12-25T12:00:00Z`
		if d.Allowed || d.Message != want {
			t.Fatalf("message:\n%s\nwant:\n%s", d.Message, want)
		}
	})
	t.Run("an exemption on a compliant Deployment's pod template alone is still checked", func(t *testing.T) {
		obj := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}})
		tmpl := obj["spec"].(map[string]any)["template"].(map[string]any)
		tmpl["metadata"] = map[string]any{"annotations": map[string]any{
			exemptions.AnnotationExempt: "true", exemptions.AnnotationReason: "r", exemptions.AnnotationApprovedBy: "bob", exemptions.AnnotationExpires: "2027-06-01T00:00:00Z",
		}}
		d := ev.Evaluate(context.Background(), asUser(Create(obj), "alice", "break-glass"))
		if d.Allowed || !strings.HasPrefix(d.Message, `[exemptions] spec.template.metadata.annotations["policy.attest.continuu.ms/exempt-expires"]: exemption expiry 2027-06-01T00:00:00Z is beyond the maximum`) {
			t.Fatalf("allowed=%v message:\n%s", d.Allowed, d.Message)
		}
	})
	t.Run("a pod template's exemption, stamped by ATTEST, carries to the Pods its controller creates", func(t *testing.T) {
		stamped := map[string]string{exemptions.AnnotationAuthorizedBy: "alice"}
		for k, v := range ann {
			stamped[k] = v
		}
		obj := annotate(Object(Pod, "shop", "web-abcde", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", Privileged())}}), stamped)
		if d := ev.Evaluate(context.Background(), asUser(Create(obj), "system:serviceaccount:kube-system:replicaset-controller")); !d.Allowed {
			t.Fatalf("controller-created pod denied: %s", d.Message)
		}
		if d := ev.Evaluate(context.Background(), asUser(Create(obj), "mallory")); d.Allowed {
			t.Fatal("a person writing the stamp was exempted")
		}
	})
}

func TestPolicyExceptionThroughThePipeline(t *testing.T) {
	pe := v1alpha1.PolicyException{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-agent", Annotations: map[string]string{v1alpha1.AnnotationCreatedBy: "dev"}},
		Spec: v1alpha1.PolicyExceptionSpec{
			Policies: []string{"no-privileged"}, Targets: []v1alpha1.ExceptionTarget{{Kinds: []string{"Deployment"}, Names: []string{"web"}}},
			ExpiresAt: metav1.NewTime(time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)), Reason: "vendor agent", ApprovedBy: "security-team",
		},
	}
	pe.Status.Approvals = []v1alpha1.Approval{{User: "sec1", Groups: []string{"security-team"}, SpecHash: exemptions.SpecHash(pe.Spec)}}
	deploy := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "d-1"}}
	rs := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "ReplicaSet"}, ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-5d4f", UID: "rs-1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: "d-1", Controller: ptr.To(true)}}}}
	ev := exemptionEvaluator(t, exemptions.NewStatic([]v1alpha1.PolicyException{pe}, []metav1.PartialObjectMetadata{deploy, rs}))
	privileged := PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", Privileged())}}

	d := ev.Evaluate(context.Background(), asUser(Create(Object(Deployment, "shop", "web", privileged)), "dev"))
	if !d.Allowed || !strings.HasPrefix(d.Warnings[0], "exempted by PolicyException shop/web-agent (approved by sec1, expires 2026-12-20T00:00:00Z): [no-privileged]") {
		t.Fatalf("Deployment web: allowed=%v %s %q", d.Allowed, d.Message, d.Warnings)
	}
	pod := Object(Pod, "shop", "web-5d4f-x1", privileged)
	pod["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "rs-1", "controller": true}}
	if d := ev.Evaluate(context.Background(), asUser(Create(pod), "system:serviceaccount:kube-system:replicaset-controller")); !d.Allowed {
		t.Fatalf("the ReplicaSet controller's Pod of web was denied: %s", d.Message)
	}
	if d := ev.Evaluate(context.Background(), asUser(Create(Object(Pod, "shop", "web-x", privileged)), "dev")); d.Allowed {
		t.Fatal("a Pod web-x not owned by web was exempted")
	}
}
