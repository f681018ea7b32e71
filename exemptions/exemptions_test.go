package exemptions_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/exemptions"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func governance(t *testing.T, c exemptions.Config) *exemptions.Governance {
	t.Helper()
	g, err := exemptions.NewGovernance(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func known(p string) bool {
	return p == "no-privileged" || p == "trusted-registries" || p == "require-attestation" || p == "K8sRequiredLabels/must-have-owner"
}

func annotated(values map[string]string) exemptions.Subject {
	return exemptions.Subject{
		Kind: "Pod", Namespace: "shop", Name: "web", User: "alice", Groups: []string{"break-glass"}, Now: now,
		Annotations: []exemptions.AnnotationSet{{Path: "metadata.annotations", Values: values}},
	}
}

func fourAnnotations(exempt, expires string) map[string]string {
	return map[string]string{
		exemptions.AnnotationExempt: exempt, exemptions.AnnotationReason: "incident 42",
		exemptions.AnnotationApprovedBy: "bob@company.com", exemptions.AnnotationExpires: expires,
	}
}

func TestAnnotationExemptions(t *testing.T) {
	g := governance(t, exemptions.Config{AnnotationGroups: []string{"break-glass"}})
	inAWeek := now.Add(7 * 24 * time.Hour).Format(time.RFC3339)
	tests := []struct {
		name     string
		subject  exemptions.Subject
		policy   string
		exempted bool
		problem  string // in the reasons given when not exempted
		denial   string
	}{
		{"authorized group", annotated(fourAnnotations("true", inAWeek)), "no-privileged", true, "", ""},
		{"listed policy", annotated(fourAnnotations("no-privileged, trusted-registries", inAWeek)), "trusted-registries", true, "", ""},
		{"exempting A never exempts B", annotated(fourAnnotations("trusted-registries", inAWeek)), "no-privileged", false, "", ""},
		{"unauthorized user", func() exemptions.Subject {
			s := annotated(fourAnnotations("true", inAWeek))
			s.User, s.Groups = "mallory", []string{"developers"}
			return s
		}(), "no-privileged", false, "exemption annotations are honoured only for groups break-glass, and mallory is not one of them", ""},
		{"expired", annotated(fourAnnotations("true", now.Add(-time.Hour).Format(time.RFC3339))), "no-privileged", false, "it expired at 2026-11-25T11:00:00Z", ""},
		{"beyond the maximum", annotated(fourAnnotations("true", now.Add(31*24*time.Hour).Format(time.RFC3339))), "no-privileged", false, "expiry beyond the maximum", "beyond the maximum of 30 days from now"},
		{"not RFC 3339", annotated(fourAnnotations("true", "next friday")), "no-privileged", false, `metadata.annotations["policy.attest.continuu.ms/exempt-expires"] "next friday" is not an RFC 3339 time (e.g. 2026-12-02T12:00:00Z)`, ""},
		{"empty reason", func() exemptions.Subject {
			a := fourAnnotations("true", inAWeek)
			a[exemptions.AnnotationReason] = " "
			return annotated(a)
		}(), "no-privileged", false, `metadata.annotations["policy.attest.continuu.ms/exempt-reason"] is missing or empty`, ""},
		{"missing approver", func() exemptions.Subject {
			a := fourAnnotations("true", inAWeek)
			delete(a, exemptions.AnnotationApprovedBy)
			return annotated(a)
		}(), "no-privileged", false, "exempt-approved-by\"] is missing or empty", ""},
		{"a constraint by <Kind>/<name>", annotated(fourAnnotations("no-privileged,K8sRequiredLabels/must-have-owner", inAWeek)), "K8sRequiredLabels/must-have-owner", true, "", ""},
		{"a constraint's name is not its kind's", annotated(fourAnnotations("K8sRequiredLabels/must-have-owner", inAWeek)), "K8sRequiredLabels/other", false, "", ""},
		{"garbage with a slash", annotated(fourAnnotations("K8sRequiredLabels/Must Have", inAWeek)), "K8sRequiredLabels/must-have-owner", false, `"K8sRequiredLabels/Must Have" is neither "true" nor a comma-separated list of policy names`, ""},
		{"unknown constraint", annotated(fourAnnotations("K8sRequiredLabels/nope", inAWeek)), "no-privileged", false, `names unknown policy "K8sRequiredLabels/nope"`, ""},
		{"yes please", annotated(fourAnnotations("yes please", inAWeek)), "no-privileged", false, `"yes please" is neither "true" nor a comma-separated list of policy names`, ""},
		{"unknown policy", annotated(fourAnnotations("no-such-policy", inAWeek)), "no-privileged", false, `names unknown policy "no-such-policy"`, ""},
		{"controller without the stamp", func() exemptions.Subject {
			s := annotated(fourAnnotations("true", inAWeek))
			s.User, s.Groups = "system:serviceaccount:kube-system:replicaset-controller", nil
			return s
		}(), "no-privileged", false, "is not one of them", ""},
		{"controller with the stamp of an authorized user", func() exemptions.Subject {
			a := fourAnnotations("true", inAWeek)
			a[exemptions.AnnotationAuthorizedBy] = "alice"
			s := annotated(a)
			s.User, s.Groups = "system:serviceaccount:kube-system:replicaset-controller", nil
			return s
		}(), "no-privileged", true, "", ""},
		{"a stamp written by anyone else is ignored", func() exemptions.Subject {
			a := fourAnnotations("true", inAWeek)
			a[exemptions.AnnotationAuthorizedBy] = "alice"
			s := annotated(a)
			s.User, s.Groups = "mallory", nil
			return s
		}(), "no-privileged", false, "is not one of them", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := exemptions.Resolve(context.Background(), g, nil, known, tt.subject)
			ex, problems := out.For(g, tt.policy, false)
			if (ex != nil) != tt.exempted {
				t.Fatalf("exempted = %v, want %v (problems %q)", ex != nil, tt.exempted, problems)
			}
			if tt.problem != "" && !strings.Contains(strings.Join(problems, "\n"), tt.problem) {
				t.Errorf("problems %q do not say %q", problems, tt.problem)
			}
			var denials []string
			for _, d := range out.Denials {
				denials = append(denials, d.Path+": "+d.Message+"; "+d.Fix)
			}
			if got := strings.Join(denials, "\n"); (tt.denial == "") != (got == "") || !strings.Contains(got, tt.denial) {
				t.Errorf("denials %q, want one saying %q", got, tt.denial)
			}
		})
	}
}

func TestNonExemptablePolicies(t *testing.T) {
	g := governance(t, exemptions.Config{AnnotationGroups: []string{"break-glass"}, NonExemptable: []exemptions.NonExemptable{{Policy: "require-attestation", ProductionOnly: true}}})
	out := exemptions.Resolve(context.Background(), g, nil, known, annotated(fourAnnotations("true", now.Add(time.Hour).Format(time.RFC3339))))
	if ex, problems := out.For(g, "require-attestation", true); ex != nil || len(problems) == 0 {
		t.Fatalf("require-attestation exempted in production (problems %q)", problems)
	}
	if ex, _ := out.For(g, "require-attestation", false); ex == nil {
		t.Fatal("productionOnly also blocked the exemption outside production")
	}
}

// owned wires a Pod → ReplicaSet → Deployment chain in a static lookup.
func owned(exceptions ...v1alpha1.PolicyException) (*exemptions.Static, []metav1.OwnerReference) {
	deploy := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: types.UID("d-1")}}
	rs := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "ReplicaSet"}, ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "web-5d4f", UID: types.UID("rs-1"),
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: "d-1", Controller: ptr.To(true)}},
	}}
	podOwners := []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d4f", UID: "rs-1", Controller: ptr.To(true)}}
	return exemptions.NewStatic(exceptions, []metav1.PartialObjectMetadata{deploy, rs}), podOwners
}

func exception(ns, name string, approvals int, targets ...v1alpha1.ExceptionTarget) v1alpha1.PolicyException {
	pe := v1alpha1.PolicyException{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{v1alpha1.AnnotationCreatedBy: "dev@company.com"}},
		Spec: v1alpha1.PolicyExceptionSpec{
			Policies: []string{"no-privileged"}, Targets: targets, ExpiresAt: metav1.NewTime(now.Add(24 * time.Hour)),
			Reason: "vendor agent needs it", ApprovedBy: "security-team",
		},
	}
	for i := 0; i < approvals; i++ {
		pe.Status.Approvals = append(pe.Status.Approvals, v1alpha1.Approval{User: []string{"sec1", "sec2", "sec3"}[i], Groups: []string{"security-team"}, SpecHash: exemptions.SpecHash(pe.Spec)})
	}
	return pe
}

func TestPolicyExceptionTargets(t *testing.T) {
	g := governance(t, exemptions.Config{})
	web := v1alpha1.ExceptionTarget{Kinds: []string{"Deployment"}, Names: []string{"web"}}
	glob := v1alpha1.ExceptionTarget{Names: []string{"web-*"}}
	controller := "system:serviceaccount:kube-system:replicaset-controller"
	tests := []struct {
		name     string
		pe       v1alpha1.PolicyException
		subject  func(owners []metav1.OwnerReference) exemptions.Subject
		exempted bool
		problem  string
	}{
		{"the Deployment itself", exception("shop", "web", 1, web), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Deployment", Namespace: "shop", Name: "web", User: "dev", Now: now}
		}, true, ""},
		{"its Pods, created by the ReplicaSet controller", exception("shop", "web", 1, web), func(o []metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Pod", Namespace: "shop", Owners: o, User: controller, Now: now}
		}, true, ""},
		{"a Pod claiming the same owners, created by a person", exception("shop", "web", 1, web), func(o []metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Pod", Namespace: "shop", Name: "web-x", Owners: o, User: "mallory", Now: now}
		}, false, ""},
		{"a Pod named web-x not owned by it", exception("shop", "web", 1, web), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Pod", Namespace: "shop", Name: "web-x", User: controller, Now: now}
		}, false, ""},
		{"an owner reference with the wrong UID", exception("shop", "web", 1, web), func(o []metav1.OwnerReference) exemptions.Subject {
			forged := []metav1.OwnerReference{o[0]}
			forged[0].UID = "other"
			return exemptions.Subject{Kind: "Pod", Namespace: "shop", Owners: forged, User: controller, Now: now}
		}, false, ""},
		{"glob in its namespace", exception("shop", "glob", 1, glob), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Pod", Namespace: "shop", Name: "web-1", User: "dev", Now: now}
		}, true, ""},
		{"glob never reaches another namespace", exception("shop", "glob", 1, glob), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Pod", Namespace: "other", Name: "web-1", User: "dev", Now: now}
		}, false, ""},
		{"a target naming another namespace selects nothing", exception("shop", "ns", 1, v1alpha1.ExceptionTarget{Names: []string{"web"}, Namespace: "other"}), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Deployment", Namespace: "shop", Name: "web", User: "dev", Now: now}
		}, false, ""},
		{"pending until approved", exception("shop", "web", 0, web), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Deployment", Namespace: "shop", Name: "web", User: "dev", Now: now}
		}, false, "PolicyException shop/web is pending: 0 of 1 required approvals"},
		{"expired", exception("shop", "web", 1, web), func([]metav1.OwnerReference) exemptions.Subject {
			return exemptions.Subject{Kind: "Deployment", Namespace: "shop", Name: "web", User: "dev", Now: now.Add(48 * time.Hour)}
		}, false, "PolicyException shop/web expired at 2026-11-26T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup, owners := owned(tt.pe)
			out := exemptions.Resolve(context.Background(), g, lookup, known, tt.subject(owners))
			ex, problems := out.For(g, "no-privileged", false)
			if (ex != nil) != tt.exempted {
				t.Fatalf("exempted = %v, want %v (problems %q)", ex != nil, tt.exempted, problems)
			}
			if tt.problem != "" && !strings.Contains(strings.Join(problems, "\n"), tt.problem) {
				t.Errorf("problems %q do not say %q", problems, tt.problem)
			}
			if ex, _ := out.For(g, "trusted-registries", false); ex != nil {
				t.Error("an exception for no-privileged exempted trusted-registries")
			}
		})
	}
}

func TestGovernanceOfApprovals(t *testing.T) {
	g := governance(t, exemptions.Config{})
	sec := exemptions.Writer{User: "sec1", Groups: []string{"security-team"}}
	created := func() *v1alpha1.PolicyException {
		pe := exception("shop", "web", 0, v1alpha1.ExceptionTarget{Names: []string{"web"}})
		ann, status, err := exemptions.Govern(g, exemptions.Writer{User: "dev@company.com"}, &pe, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		pe.Annotations, pe.Status = ann, status
		return &pe
	}
	approve := func(old *v1alpha1.PolicyException, w exemptions.Writer, edit func(*v1alpha1.PolicyException)) (*v1alpha1.PolicyException, error) {
		pe := old.DeepCopy()
		pe.Annotations[v1alpha1.AnnotationApprove] = "looks fine"
		if edit != nil {
			edit(pe)
		}
		ann, status, err := exemptions.Govern(g, w, pe, old, now)
		if err != nil {
			return nil, err
		}
		pe.Annotations, pe.Status = ann, status
		return pe, nil
	}
	t.Run("an approver from the group approves", func(t *testing.T) {
		pe, err := approve(created(), sec, nil)
		if err != nil || pe.Status.Phase != exemptions.PhaseApproved || pe.Status.Approvals[0].User != "sec1" {
			t.Fatalf("phase %q, approvals %+v, err %v", pe.Status.Phase, pe.Status.Approvals, err)
		}
		if _, ok := pe.Annotations[v1alpha1.AnnotationApprove]; ok {
			t.Error("the approve request annotation was kept")
		}
	})
	t.Run("creator cannot approve", func(t *testing.T) {
		if _, err := approve(created(), exemptions.Writer{User: "dev@company.com", Groups: []string{"security-team"}}, nil); err == nil || !strings.Contains(err.Error(), "cannot approve it") {
			t.Fatalf("self-approval: err = %v", err)
		}
	})
	t.Run("non-member cannot approve", func(t *testing.T) {
		if _, err := approve(created(), exemptions.Writer{User: "eve", Groups: []string{"developers"}}, nil); err == nil || !strings.Contains(err.Error(), "approvers are groups security-team") {
			t.Fatalf("non-member approval: err = %v", err)
		}
	})
	t.Run("approval typed into status by the creator is replaced", func(t *testing.T) {
		old := created()
		pe := old.DeepCopy()
		pe.Status.Approvals = []v1alpha1.Approval{{User: "sec1", Groups: []string{"security-team"}, SpecHash: exemptions.SpecHash(pe.Spec)}}
		ann, status, err := exemptions.Govern(g, exemptions.Writer{User: "dev@company.com"}, pe, old, now)
		if err != nil || len(status.Approvals) != 0 || status.Phase != exemptions.PhasePending || ann[v1alpha1.AnnotationCreatedBy] != "dev@company.com" {
			t.Fatalf("status %+v, err %v", status, err)
		}
	})
	t.Run("created-by cannot be rewritten", func(t *testing.T) {
		old := created()
		pe := old.DeepCopy()
		pe.Annotations[v1alpha1.AnnotationCreatedBy] = "someone-else"
		ann, _, err := exemptions.Govern(g, exemptions.Writer{User: "dev@company.com"}, pe, old, now)
		if err != nil || ann[v1alpha1.AnnotationCreatedBy] != "dev@company.com" {
			t.Fatalf("created-by = %q, err %v", ann[v1alpha1.AnnotationCreatedBy], err)
		}
	})
	t.Run("a spec change drops approvals", func(t *testing.T) {
		approved, err := approve(created(), sec, nil)
		if err != nil {
			t.Fatal(err)
		}
		pe := approved.DeepCopy()
		pe.Spec.Policies = append(pe.Spec.Policies, "trusted-registries")
		_, status, err := exemptions.Govern(g, exemptions.Writer{User: "dev@company.com"}, pe, approved, now)
		if err != nil || len(status.Approvals) != 0 || status.Phase != exemptions.PhasePending {
			t.Fatalf("after a spec change: %+v, err %v", status, err)
		}
	})
	t.Run("approving on creation is refused", func(t *testing.T) {
		pe := exception("shop", "web", 0, v1alpha1.ExceptionTarget{Names: []string{"web"}})
		pe.Annotations[v1alpha1.AnnotationApprove] = "me"
		if _, _, err := exemptions.Govern(g, sec, &pe, nil, now); err == nil {
			t.Fatal("approval at creation accepted")
		}
	})
	t.Run("an emergency override needs two approvers", func(t *testing.T) {
		pe := created()
		pe.Spec.Emergency = true
		first, err := approve(pe, sec, nil)
		if err != nil || first.Status.Phase != exemptions.PhasePending {
			t.Fatalf("one approval of an emergency: phase %q err %v", first.Status.Phase, err)
		}
		again, err := approve(first, sec, nil)
		if err != nil || again.Status.Phase != exemptions.PhasePending || len(again.Status.Approvals) != 1 {
			t.Fatalf("the same approver twice: %+v err %v", again.Status, err)
		}
		second, err := approve(first, exemptions.Writer{User: "sec2", Groups: []string{"security-team"}}, nil)
		if err != nil || second.Status.Phase != exemptions.PhaseApproved {
			t.Fatalf("two approvals of an emergency: phase %q err %v", second.Status.Phase, err)
		}
	})
}

func TestValidateException(t *testing.T) {
	g := governance(t, exemptions.Config{NonExemptable: []exemptions.NonExemptable{{Policy: "require-attestation"}}})
	good := exception("shop", "web", 0, v1alpha1.ExceptionTarget{Kinds: []string{"Deployment"}, Names: []string{"web-*"}})
	tests := []struct {
		name string
		edit func(*v1alpha1.PolicyException)
		want string
	}{
		{"valid", func(*v1alpha1.PolicyException) {}, ""},
		{"no policies", func(p *v1alpha1.PolicyException) { p.Spec.Policies = nil }, "spec.policies: name at least one policy"},
		{"unknown policy", func(p *v1alpha1.PolicyException) { p.Spec.Policies = []string{"nope"} }, `spec.policies[0]: unknown policy "nope"`},
		{"a constraint by <Kind>/<name>", func(p *v1alpha1.PolicyException) { p.Spec.Policies = []string{"K8sRequiredLabels/must-have-owner"} }, ""},
		{"unknown constraint", func(p *v1alpha1.PolicyException) { p.Spec.Policies = []string{"K8sRequiredLabels/other"} }, `spec.policies[0]: unknown policy "K8sRequiredLabels/other"`},
		{"non-exemptable", func(p *v1alpha1.PolicyException) { p.Spec.Policies = []string{"require-attestation"} }, "cannot be exempted"},
		{"no targets", func(p *v1alpha1.PolicyException) { p.Spec.Targets = nil }, "spec.targets: name at least one target"},
		{"empty target", func(p *v1alpha1.PolicyException) { p.Spec.Targets = []v1alpha1.ExceptionTarget{{}} }, "spec.targets[0]: a target needs kinds, names or a selector"},
		{"other namespace", func(p *v1alpha1.PolicyException) { p.Spec.Targets[0].Namespace = "prod" }, `spec.targets[0].namespace: "prod" is outside the exception's namespace "shop"`},
		{"bad glob", func(p *v1alpha1.PolicyException) { p.Spec.Targets[0].Names = []string{"web-["} }, `spec.targets[0].names[0]: "web-[" is not a name or glob`},
		{"bad selector", func(p *v1alpha1.PolicyException) {
			p.Spec.Targets[0].Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Sometimes"}}}
		}, "spec.targets[0].selector"},
		{"no reason", func(p *v1alpha1.PolicyException) { p.Spec.Reason = "" }, "spec.reason"},
		{"no approver", func(p *v1alpha1.PolicyException) { p.Spec.ApprovedBy = "" }, "spec.approvedBy"},
		{"expired", func(p *v1alpha1.PolicyException) { p.Spec.ExpiresAt = metav1.NewTime(now.Add(-time.Minute)) }, "spec.expiresAt: 2026-11-25T11:59:00Z is in the past"},
		{"beyond the maximum", func(p *v1alpha1.PolicyException) { p.Spec.ExpiresAt = metav1.NewTime(now.Add(31 * 24 * time.Hour)) }, "is beyond the maximum of 30 days from now (latest allowed: 2026-12-25T12:00:00Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe := good.DeepCopy()
			tt.edit(pe)
			errs := strings.Join(exemptions.ValidateException(g, known, pe, nil, now), "\n")
			if (tt.want == "") != (errs == "") || !strings.Contains(errs, tt.want) {
				t.Fatalf("errors %q, want %q", errs, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30d", 30 * 24 * time.Hour, false}, {"720h", 720 * time.Hour, false}, {"2w", 14 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false}, {"90m", 90 * time.Minute, false},
		{"", 0, true}, {"0d", 0, true}, {"-5d", 0, true}, {"1.5d", 0, true}, {"30 days", 0, true}, {"P30D", 0, true}, {"d", 0, true}, {"999999w999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := exemptions.ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "1d12h", "720h", "", "-1d", "999999w999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := exemptions.ParseDuration(s)
		if err == nil && d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v without error", s, d)
		}
	})
}

// FuzzAnnotationExemption: whatever the four annotations say, reading them never panics, an unauthorized
// requester is never exempted, and an expiry beyond the maximum is never honoured.
func FuzzAnnotationExemption(f *testing.F) {
	f.Add("true", "incident", "bob", "2026-11-26T12:00:00Z", true)
	f.Add("no-privileged, trusted-registries", "r", "a", "2027-11-26T12:00:00Z", true)
	f.Add("yes please", "", "", "next week", false)
	f.Add(",,", " ", "x", "2026-11-25T12:00:00+14:00", true)
	g, err := exemptions.NewGovernance(exemptions.Config{AnnotationGroups: []string{"break-glass"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, exempt, reason, approver, expires string, authorized bool) {
		s := annotated(map[string]string{
			exemptions.AnnotationExempt: exempt, exemptions.AnnotationReason: reason,
			exemptions.AnnotationApprovedBy: approver, exemptions.AnnotationExpires: expires,
		})
		if !authorized {
			s.User, s.Groups = "mallory", nil
		}
		out := exemptions.Resolve(context.Background(), g, nil, known, s)
		ex, _ := out.For(g, "no-privileged", false)
		if ex == nil {
			return
		}
		if !authorized {
			t.Fatalf("unauthorized requester exempted by %+v", ex)
		}
		if ex.Expires.After(now.Add(g.MaxDuration)) || !ex.Expires.After(now) {
			t.Fatalf("exemption honoured with expiry %s", ex.Expires)
		}
	})
}
