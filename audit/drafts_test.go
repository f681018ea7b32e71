package audit_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/audit"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
)

// fakeDynamic is client-go's fake dynamic client with server-side apply as create-or-replace (its tracker applies
// only to objects that exist), keeping labels other managers set, as the API server's field ownership does.
func fakeDynamic(t *testing.T) *dynamicfake.FakeDynamicClient {
	t.Helper()
	c := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		audit.PolicyExceptionDrafts: "PolicyExceptionDraftList",
		audit.PolicyReports:         "PolicyReportList",
	})
	c.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(pa.GetPatch(), &u.Object); err != nil {
			return true, nil, err
		}
		old, err := c.Tracker().Get(pa.GetResource(), pa.GetNamespace(), pa.GetName())
		if err != nil {
			return true, u, c.Tracker().Create(pa.GetResource(), u, pa.GetNamespace())
		}
		labels := u.GetLabels()
		for k, v := range old.(*unstructured.Unstructured).GetLabels() {
			if _, ours := labels[k]; !ours {
				labels[k] = v
			}
		}
		u.SetLabels(labels)
		return true, u, c.Tracker().Update(pa.GetResource(), u, pa.GetNamespace())
	})
	return c
}

func drafts(t *testing.T, c *dynamicfake.FakeDynamicClient) map[string]v1alpha1.PolicyExceptionDraft {
	t.Helper()
	list, err := c.Resource(audit.PolicyExceptionDrafts).Namespace("shop").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1alpha1.PolicyExceptionDraft{}
	for _, u := range list.Items {
		var d v1alpha1.PolicyExceptionDraft
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
			t.Fatal(err)
		}
		out[d.Name] = d
	}
	return out
}

func names(m map[string]v1alpha1.PolicyExceptionDraft) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// draftRig audits the cluster of audit_test.go with a configuration the test switches between runs.
type draftRig struct {
	t     *testing.T
	src   *memSource
	cfg   *config.Config
	clock *clocktesting.FakePassiveClock
	dyn   *dynamicfake.FakeDynamicClient
	a     *audit.Auditor
}

func newDraftRig(t *testing.T, configYAML string) *draftRig {
	src, pes := cluster()
	r := &draftRig{t: t, src: src, clock: clocktesting.NewFakePassiveClock(now), dyn: fakeDynamic(t)}
	r.setConfig(configYAML)
	e := Engine(t, "no-privileged", "trusted-registries", "disallow-latest-tag")
	current := func() *config.Config { return r.cfg }
	ev, err := admission.New(admission.Options{Engine: e, Config: current, Exemptions: exemptions.NewStatic(pes, nil), Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.a, err = audit.New(audit.Options{Source: src, Evaluator: ev, Config: current, Engine: e, Sink: &memSink{}, Clock: r.clock,
		Observer: audit.NewDrafts(r.dyn, current, nil).WithClock(r.clock)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *draftRig) setConfig(s string) {
	cfg, err := config.Parse([]byte(s), Engine(r.t, "no-privileged", "trusted-registries", "disallow-latest-tag"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.cfg = cfg
}

func (r *draftRig) run() {
	r.t.Helper()
	if _, err := r.a.Run(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

const rolloutConfig = auditConfig + `    enforceAfter: "2026-12-01T00:00:00Z"
`

func TestDraftsForARollout(t *testing.T) {
	cfg := strings.Replace(rolloutConfig, "name: disallow-latest-tag\n    mode: audit", "name: disallow-latest-tag\n    mode: enforce", 1)
	r := newDraftRig(t, cfg)
	r.run()
	got := drafts(t, r.dyn)
	if names(got) != "deployment-web-disallow-latest-tag" {
		t.Fatalf("drafts %s; want one for Deployment web only (api and debug comply, no-privileged is not being rolled out)", names(got))
	}
	d := got["deployment-web-disallow-latest-tag"]
	if d.Spec.Policy != "disallow-latest-tag" || d.Spec.Target.Kinds[0] != "Deployment" || d.Spec.Target.Names[0] != "web" ||
		len(d.Spec.Violations) != 1 || !strings.HasPrefix(d.Spec.Violations[0], "[disallow-latest-tag] spec.template.spec.containers[0] (app): ") ||
		d.Spec.EnforceAfter == nil || !d.Spec.EnforceAfter.Equal(&metav1.Time{Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}) ||
		!d.Spec.ValidUntil.Time.Equal(now.Add(30*24*time.Hour)) || !d.Spec.LastSeen.Time.Equal(now) ||
		d.Spec.Reason != "existing Deployment web violated disallow-latest-tag before it is enforced from 2026-12-01T00:00:00Z" {
		t.Errorf("draft: %+v", d.Spec)
	}
	if d.Labels[v1alpha1.LabelPolicy] != "disallow-latest-tag" || d.Labels[v1alpha1.LabelValidUntil] != "20261225T120000Z" ||
		d.Labels[v1alpha1.LabelWorkloadLastSeen] != "20261125T120000Z" || d.Labels["app.kubernetes.io/managed-by"] != "attest" {
		t.Errorf("labels: %v", d.Labels)
	}

	// Refreshed while the workload still violates the policy.
	r.clock.SetTime(now.Add(time.Hour))
	r.run()
	d = drafts(t, r.dyn)["deployment-web-disallow-latest-tag"]
	if d.Labels[v1alpha1.LabelWorkloadLastSeen] != "20261125T130000Z" || !d.Spec.LastSeen.Time.Equal(now.Add(time.Hour)) ||
		d.Labels[v1alpha1.LabelValidUntil] != "20261225T120000Z" {
		t.Errorf("after a second audit: labels %v, lastSeen %s", d.Labels, d.Spec.LastSeen)
	}

	// Removed once the workload is fixed.
	fixed := withUID(Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1.0", Privileged())}}), "u-web")
	r.src.objects["shop/deployments"][0] = fixed
	r.run()
	if got := drafts(t, r.dyn); len(got) != 0 {
		t.Errorf("drafts %s after the workload was fixed", names(got))
	}
}

// TestDraftsOnTransitions: a policy moved to enforce, or newly enabled, drafts its violators in the run that sees
// the change, and no draft is written for a policy whose settings stay as they were.
func TestDraftsOnTransitions(t *testing.T) {
	off := strings.Replace(auditConfig, "name: disallow-latest-tag\n    mode: audit", "name: disallow-latest-tag\n    mode: \"off\"", 1)
	enforce := strings.Replace(auditConfig, "name: disallow-latest-tag\n    mode: audit", "name: disallow-latest-tag\n    mode: enforce", 1)
	cases := map[string]struct{ before, after, reason string }{
		"moved to enforce": {auditConfig, enforce, "existing Deployment web violated disallow-latest-tag when it moved to enforce"},
		"newly enabled":    {off, auditConfig, "existing Deployment web violated disallow-latest-tag when it was enabled (audit)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := newDraftRig(t, tc.before)
			r.run()
			r.run()
			if got := drafts(t, r.dyn); len(got) != 0 {
				t.Fatalf("drafts %s with unchanged settings", names(got))
			}
			r.setConfig(tc.after)
			r.run()
			got := drafts(t, r.dyn)
			if names(got) != "deployment-web-disallow-latest-tag" || got["deployment-web-disallow-latest-tag"].Spec.Reason != tc.reason {
				t.Fatalf("drafts %s: %+v", names(got), got)
			}
		})
	}
}

// TestDraftRemovedWhenExempted: once an approved exception waives the violation, the draft has done its job.
func TestDraftRemovedWhenExempted(t *testing.T) {
	r := newDraftRig(t, auditConfig)
	r.run()
	r.setConfig(strings.Replace(auditConfig, "name: no-privileged\n    mode: enforce", "name: no-privileged\n    mode: enforce\n    enforceAfter: \"2026-12-01T00:00:00Z\"", 1))
	r.run()
	got := drafts(t, r.dyn)
	// legacy's violation is waived by its approved PolicyException: no draft for it.
	if names(got) != "deployment-web-no-privileged" {
		t.Fatalf("drafts %s", names(got))
	}
}

func TestDraftName(t *testing.T) {
	cases := map[string]struct{ kind, name, policy, want string }{
		"plain":     {"Deployment", "web", "no-privileged", "deployment-web-no-privileged"},
		"dots":      {"StatefulSet", "db.primary", "resource-limits", "statefulset-db-primary-resource-limits"},
		"truncated": {"Deployment", strings.Repeat("very-long-name-", 5), "disallow-latest-tag", ""},
	}
	for n, tc := range cases {
		got := audit.DraftName(tc.kind, tc.name, tc.policy)
		if tc.want != "" && got != tc.want {
			t.Errorf("%s: %q, want %q", n, got, tc.want)
		}
		if len(got) > 63 || strings.HasSuffix(got, "-") || strings.HasPrefix(got, "-") {
			t.Errorf("%s: %q is not a DNS label", n, got)
		}
	}
	a := audit.DraftName("Deployment", strings.Repeat("x", 70)+"a", "p")
	b := audit.DraftName("Deployment", strings.Repeat("x", 70)+"b", "p")
	if a == b {
		t.Errorf("two long names share the draft %q", a)
	}
}
