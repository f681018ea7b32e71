package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/audit"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// memSource is a cluster held in memory: objects per namespace and resource, listed in insertion order.
type memSource struct {
	namespaces []audit.Namespace
	objects    map[string][]map[string]any // namespace/resource
	lists      int
	mu         sync.Mutex
}

func (s *memSource) Namespaces(context.Context) ([]audit.Namespace, error) { return s.namespaces, nil }

func (s *memSource) List(_ context.Context, k audit.Kind, ns string, fn func(map[string]any) error) error {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	for _, o := range s.objects[ns+"/"+k.Resource] {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) add(resource string, obj map[string]any) {
	md := obj["metadata"].(map[string]any)
	key := md["namespace"].(string) + "/" + resource
	s.objects[key] = append(s.objects[key], obj)
}

// memSink keeps what was written.
type memSink struct {
	reports  []audit.Report
	finished map[string]int
}

func (s *memSink) Write(_ context.Context, r *audit.Report) error {
	cp := *r
	cp.Results = append([]audit.Result(nil), r.Results...)
	s.reports = append(s.reports, cp)
	return nil
}

func (s *memSink) Finish(_ context.Context, ns string, n int) error {
	if s.finished == nil {
		s.finished = map[string]int{}
	}
	s.finished[ns] = n
	return nil
}

// owned makes obj controlled by owner (UIDs as the API server writes them).
func owned(obj, owner map[string]any) map[string]any {
	omd := owner["metadata"].(map[string]any)
	obj["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{
		"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": omd["name"], "uid": omd["uid"], "controller": true,
	}}
	return obj
}

func withUID(obj map[string]any, uid string) map[string]any {
	obj["metadata"].(map[string]any)["uid"] = uid
	return obj
}

const auditConfig = `
policies:
  - name: no-privileged
    mode: enforce
  - name: trusted-registries
    mode: enforce
    parameters:
      trusted_registries: ["gcr.io/company"]
  - name: disallow-latest-tag
    mode: audit
`

func pipeline(t *testing.T, lookup exemptions.Lookup) (*admission.Evaluator, *policies.Engine, func() *config.Config) {
	t.Helper()
	e := Engine(t, "no-privileged", "trusted-registries", "disallow-latest-tag")
	cfg, err := config.Parse([]byte(auditConfig), e)
	if err != nil {
		t.Fatal(err)
	}
	current := func() *config.Config { return cfg }
	ev, err := admission.New(admission.Options{Engine: e, Config: current, Exemptions: lookup})
	if err != nil {
		t.Fatal(err)
	}
	return ev, e, current
}

// cluster builds namespace shop: Deployment web (privileged, :latest) with its ReplicaSet and two Pods, Deployment
// api (compliant), Deployment legacy (privileged; an approved PolicyException waives it), and an unowned Pod
// debug (untrusted registry).
func cluster() (*memSource, []v1alpha1.PolicyException) {
	s := &memSource{namespaces: []audit.Namespace{{Name: "shop"}, {Name: "empty"}}, objects: map[string][]map[string]any{}}
	web := withUID(Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:latest", Privileged())}}), "u-web")
	rs := owned(withUID(Object(ReplicaSet, "shop", "web-7d9f", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:latest", Privileged())}}), "u-rs"), web)
	s.add("deployments", web)
	s.add("deployments", withUID(Object(Deployment, "shop", "api", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/api:1.2")}}), "u-api"))
	s.add("deployments", withUID(Object(Deployment, "shop", "legacy", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/legacy:3", Privileged())}}), "u-legacy"))
	s.add("replicasets", rs)
	for i := range 2 {
		s.add("pods", owned(withUID(Object(Pod, "shop", fmt.Sprintf("web-7d9f-%d", i), PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:latest", Privileged())}}), fmt.Sprintf("u-pod%d", i)), rs))
	}
	s.add("pods", withUID(Object(Pod, "shop", "debug", PodSpec{Containers: []Container{NewContainer("sh", "quay.io/evil/sh:1")}}), "u-debug"))
	pe := v1alpha1.PolicyException{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy-privileged", Namespace: "shop", Annotations: map[string]string{v1alpha1.AnnotationCreatedBy: "bob"}},
		Spec: v1alpha1.PolicyExceptionSpec{Policies: []string{"no-privileged"}, Targets: []v1alpha1.ExceptionTarget{{Kinds: []string{"Deployment"}, Names: []string{"legacy"}}},
			ExpiresAt: metav1.NewTime(now.Add(72 * time.Hour)), Reason: "CHG-1", ApprovedBy: "carol"},
	}
	hash := exemptions.SpecHash(pe.Spec)
	pe.Status = v1alpha1.PolicyExceptionStatus{Phase: exemptions.PhaseApproved, ApprovalCount: 1, SpecHash: hash,
		Approvals: []v1alpha1.Approval{{User: "carol", Groups: []string{"security-team"}, Time: metav1.NewTime(now.Add(-time.Hour)), SpecHash: hash}}}
	return s, []v1alpha1.PolicyException{pe}
}

func newAuditor(t *testing.T, src audit.Source, sink audit.Sink, max int, lookup exemptions.Lookup) *audit.Auditor {
	t.Helper()
	ev, e, current := pipeline(t, lookup)
	a, err := audit.New(audit.Options{Source: src, Evaluator: ev, Config: current, Engine: e, Sink: sink, Workers: 3,
		MaxReportBytes: max, Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// verdicts are the results as "Kind/name policy result", in no particular order.
func verdicts(rs []audit.Report) map[string]audit.Result {
	out := map[string]audit.Result{}
	for _, r := range rs {
		for _, res := range r.Results {
			for _, o := range res.Resources {
				if _, dup := out[o.Kind+"/"+o.Name+" "+res.Policy]; dup {
					panic("two results for " + o.Kind + "/" + o.Name + " " + res.Policy)
				}
				out[o.Kind+"/"+o.Name+" "+res.Policy] = res
			}
		}
	}
	return out
}

func TestReportContent(t *testing.T) {
	src, pes := cluster()
	sink := &memSink{}
	st, err := newAuditor(t, src, sink, 0, exemptions.NewStatic(pes, nil)).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := verdicts(sink.reports)
	want := map[string]string{
		"Deployment/web no-privileged":          audit.ResultFail,
		"Deployment/web trusted-registries":     audit.ResultPass,
		"Deployment/web disallow-latest-tag":    audit.ResultWarn,
		"Deployment/api no-privileged":          audit.ResultPass,
		"Deployment/api trusted-registries":     audit.ResultPass,
		"Deployment/api disallow-latest-tag":    audit.ResultPass,
		"Deployment/legacy no-privileged":       audit.ResultSkip,
		"Deployment/legacy trusted-registries":  audit.ResultPass,
		"Deployment/legacy disallow-latest-tag": audit.ResultPass,
		"Pod/debug no-privileged":               audit.ResultPass,
		"Pod/debug trusted-registries":          audit.ResultFail,
		"Pod/debug disallow-latest-tag":         audit.ResultPass,
	}
	for k, w := range want {
		if got[k].Result != w {
			t.Errorf("%s: result %q, want %q", k, got[k].Result, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d results, want %d (folded objects must not be reported): %v", len(got), len(want), keys(got))
	}
	fail := got["Deployment/web no-privileged"]
	if fail.Message != "[no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException" ||
		fail.Severity != "critical" || fail.Source != "attest" || fail.Rule != "no-privileged" || !fail.Scored ||
		fail.Timestamp.Seconds != now.Unix() || fail.Props["mode"] != "enforce" ||
		fail.Resources[0] != (audit.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", UID: "u-web"}) {
		t.Errorf("fail result: %+v", fail)
	}
	if want := "gdpr Art. 32; hipaa 164.312(a)(1); soc2 CC6.1, CC6.8"; fail.Category != want {
		t.Errorf("category %q, want the policy's compliance controls %q", fail.Category, want)
	}
	if w := got["Deployment/web disallow-latest-tag"]; w.Props["mode"] != "audit" || !strings.HasPrefix(w.Message, "[disallow-latest-tag] spec.template.spec.containers[0] (app): ") {
		t.Errorf("warn result: %+v", w)
	}
	skip := got["Deployment/legacy no-privileged"]
	if skip.Props["exemption"] != "PolicyException shop/legacy-privileged" || skip.Props["approver"] != "carol" ||
		skip.Props["expires"] != now.Add(72*time.Hour).Format(time.RFC3339) || !strings.Contains(skip.Message, "privileged containers are not allowed") {
		t.Errorf("skip result: %+v", skip)
	}
	if pass := got["Deployment/api no-privileged"]; len(pass.Resources) != 2 || pass.Message != "" {
		t.Errorf("the passes of no-privileged are not one result listing api and debug: %+v", pass)
	}
	if len(sink.reports) != 1 || sink.reports[0].Name != "attest" || sink.reports[0].Namespace != "shop" ||
		sink.reports[0].Summary != (audit.Summary{Pass: 8, Fail: 2, Warn: 1, Skip: 1}) {
		t.Errorf("reports: %+v", sink.reports)
	}
	if sink.finished["shop"] != 1 || sink.finished["empty"] != 0 {
		t.Errorf("finished: %v (a namespace with nothing must have its stale reports removed)", sink.finished)
	}
	if st.Objects != 7 || st.Folded != 3 || st.Namespaces != 2 ||
		st.Violations[audit.ViolationKey{Policy: "no-privileged", Namespace: "shop", Mode: "enforce"}] != 1 ||
		st.Violations[audit.ViolationKey{Policy: "disallow-latest-tag", Namespace: "shop", Mode: "audit"}] != 1 {
		t.Errorf("stats: %+v", st)
	}
}

func keys(m map[string]audit.Result) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestOwnerFolding: Pods and ReplicaSets fold into the Deployment that controls them; an owner that was not
// listed (deleted, or a kind the audit does not cover) leaves its Pod reported on its own.
func TestOwnerFolding(t *testing.T) {
	cases := map[string]struct {
		build    func(s *memSource)
		reported []string
		folded   int
	}{
		"pod of a replicaset of a deployment": {func(s *memSource) {
			d := withUID(Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}), "d")
			rs := owned(withUID(Object(ReplicaSet, "shop", "web-1", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}), "rs"), d)
			s.add("deployments", d)
			s.add("replicasets", rs)
			s.add("pods", owned(withUID(Object(Pod, "shop", "web-1-a", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}), "p"), rs))
		}, []string{"Deployment/web"}, 2},
		"job of a cronjob and its pod": {func(s *memSource) {
			cj := withUID(Object(CronJob, "shop", "nightly", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/batch:1")}}), "cj")
			j := owned(withUID(Object(Job, "shop", "nightly-1", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/batch:1")}}), "j"), cj)
			s.add("cronjobs", cj)
			s.add("jobs", j)
			s.add("pods", owned(withUID(Object(Pod, "shop", "nightly-1-x", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/batch:1")}}), "p"), j))
		}, []string{"CronJob/nightly"}, 2},
		"orphaned pod": {func(s *memSource) {
			gone := withUID(Object(ReplicaSet, "shop", "gone", PodSpec{}), "gone")
			s.add("pods", owned(withUID(Object(Pod, "shop", "left", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}), "p"), gone))
		}, []string{"Pod/left"}, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src := &memSource{namespaces: []audit.Namespace{{Name: "shop"}}, objects: map[string][]map[string]any{}}
			tc.build(src)
			sink := &memSink{}
			st, err := newAuditor(t, src, sink, 0, nil).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			objs := map[string]bool{}
			for res := range verdicts(sink.reports) {
				objs[strings.Fields(res)[0]] = true
			}
			if len(objs) != len(tc.reported) || st.Folded != tc.folded {
				t.Fatalf("reported %v, folded %d; want %v, %d", objs, st.Folded, tc.reported, tc.folded)
			}
			for _, o := range tc.reported {
				if !objs[o] {
					t.Errorf("%s not reported (got %v)", o, objs)
				}
			}
		})
	}
}

// TestReportSplitting: a namespace whose results pass the size limit is split into reports that each stay within
// it, numbered attest, attest-2, ..., with every result in exactly one and the summaries adding up.
func TestReportSplitting(t *testing.T) {
	src := &memSource{namespaces: []audit.Namespace{{Name: "big"}}, objects: map[string][]map[string]any{}}
	const n = 120
	for i := range n {
		src.add("deployments", withUID(Object(Deployment, "big", fmt.Sprintf("app-%03d", i), PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:latest", Privileged())}}), fmt.Sprintf("u%d", i)))
	}
	const limit = 16 << 10
	sink := &memSink{}
	if _, err := newAuditor(t, src, sink, limit, nil).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.reports) < 3 {
		t.Fatalf("%d reports for %d results within %d bytes", len(sink.reports), 3*n, limit)
	}
	var total audit.Summary
	seen := map[string]bool{}
	for i, r := range sink.reports {
		if want := audit.ReportName(i); r.Name != want || r.Chunk != i {
			t.Errorf("report %d is %s (chunk %d), want %s", i, r.Name, r.Chunk, want)
		}
		b, err := json.Marshal(r.Object("replica-a"))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > limit {
			t.Errorf("report %s is %d bytes, over the %d limit", r.Name, len(b), limit)
		}
		total.Pass += r.Summary.Pass
		total.Fail += r.Summary.Fail
		total.Warn += r.Summary.Warn
		for _, res := range r.Results {
			for _, o := range res.Resources {
				k := o.Name + " " + res.Policy
				if seen[k] {
					t.Errorf("%s in two reports", k)
				}
				seen[k] = true
			}
		}
	}
	if len(seen) != 3*n || total != (audit.Summary{Pass: n, Fail: n, Warn: n}) {
		t.Errorf("%d results, summary %+v", len(seen), total)
	}
	if sink.finished["big"] != len(sink.reports) {
		t.Errorf("finished with %d, wrote %d", sink.finished["big"], len(sink.reports))
	}
}

// TestBackgroundCreate: every object is evaluated as a CREATE marked background, with its namespace's metadata.
func TestBackgroundCreate(t *testing.T) {
	src := &memSource{namespaces: []audit.Namespace{{Name: "prod", Labels: map[string]string{"environment": "production"}}}, objects: map[string][]map[string]any{}}
	src.add("deployments", Object(Deployment, "prod", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}))
	rec := &recorder{}
	a, err := audit.New(audit.Options{Source: src, Evaluator: rec, Config: func() *config.Config { return &config.Config{} }, Engine: Engine(t, "no-privileged"), Sink: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.ins) != 1 {
		t.Fatalf("%d evaluations", len(rec.ins))
	}
	r := rec.ins[0]
	if r.Request.Operation != "CREATE" || !r.Request.Background || r.Request.Kind != "Deployment" || r.Request.Group != "apps" ||
		r.Request.Namespace != "prod" || r.Request.Name != "web" || r.NamespaceLabels["environment"] != "production" {
		t.Errorf("input: %+v", r.Request)
	}
}

type recorder struct {
	mu  sync.Mutex
	ins []admission.Input
}

func (r *recorder) Evaluate(_ context.Context, in admission.Input) admission.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ins = append(r.ins, in)
	return admission.Decision{Allowed: true, Code: 200}
}

func TestFingerprint(t *testing.T) {
	e := Engine(t, "no-privileged", "trusted-registries", "disallow-latest-tag")
	parse := func(s string) *config.Config {
		cfg, err := config.Parse([]byte(s), e)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	base := parse(auditConfig)
	if audit.Fingerprint(base) != audit.Fingerprint(parse(auditConfig)) {
		t.Error("the same configuration loaded again changed the fingerprint")
	}
	for name, changed := range map[string]string{
		"mode":         strings.Replace(auditConfig, "name: disallow-latest-tag\n    mode: audit", "name: disallow-latest-tag\n    mode: enforce", 1),
		"enforceAfter": strings.Replace(auditConfig, "name: disallow-latest-tag\n    mode: audit", "name: disallow-latest-tag\n    mode: enforce\n    enforceAfter: 2027-01-01T00:00:00Z", 1),
		"parameters":   strings.Replace(auditConfig, `["gcr.io/company"]`, `["gcr.io/company", "quay.io/ok"]`, 1),
	} {
		if audit.Fingerprint(base) == audit.Fingerprint(parse(changed)) {
			t.Errorf("a change of %s kept the fingerprint", name)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := audit.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	src, pes := cluster()
	ev, e, current := pipeline(t, exemptions.NewStatic(pes, nil))
	a, err := audit.New(audit.Options{Source: src, Evaluator: ev, Config: current, Engine: e, Sink: &memSink{}, Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan audit.Stats, 1)
	go a.Loop(ctx, audit.LoopOptions{Interval: time.Hour, Metrics: m, Done: func(st audit.Stats, err error) {
		if err != nil {
			t.Error(err)
		}
		done <- st
	}})
	<-done
	cancel()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += " " + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"attest_audit_violations mode=audit namespace=shop policy=disallow-latest-tag":  1,
		"attest_audit_violations mode=enforce namespace=shop policy=no-privileged":      1,
		"attest_audit_violations mode=enforce namespace=shop policy=trusted-registries": 1,
		"attest_audit_objects":                    7,
		"attest_audit_duration_seconds":           0,
		"attest_audit_last_run_timestamp_seconds": float64(now.Unix()),
		"attest_audit_api_requests_total":         0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
}

// TestSkipNamespaces: namespaces the webhooks leave out are not audited, unless asked for by name.
func TestSkipNamespaces(t *testing.T) {
	src := &memSource{namespaces: []audit.Namespace{{Name: "kube-system"}, {Name: "shop"}}, objects: map[string][]map[string]any{}}
	src.add("pods", Object(Pod, "kube-system", "kube-proxy", PodSpec{Containers: []Container{NewContainer("p", "registry.k8s.io/kube-proxy:v1", Privileged())}}))
	src.add("pods", Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}))
	ev, e, current := pipeline(t, nil)
	for name, tc := range map[string]struct {
		namespace string
		want      string
	}{"all": {"", "shop"}, "by name": {"kube-system", "kube-system"}} {
		t.Run(name, func(t *testing.T) {
			sink := &memSink{}
			a, err := audit.New(audit.Options{Source: src, Evaluator: ev, Config: current, Engine: e, Sink: sink,
				Namespace: tc.namespace, SkipNamespaces: audit.DefaultSkipNamespaces})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(sink.finished) != 1 || sink.finished[tc.want] != 1 {
				t.Errorf("audited %v, want %s only", sink.finished, tc.want)
			}
		})
	}
}

// goneSink fails every write to namespace gone as the API server does once the namespace is deleted or deleting.
type goneSink struct {
	memSink
	gone string
	err  error
}

func (s *goneSink) Write(ctx context.Context, r *audit.Report) error {
	if r.Namespace == s.gone {
		return fmt.Errorf("write PolicyReport %s/attest: %w", r.Namespace, s.err)
	}
	return s.memSink.Write(ctx, r)
}

// A namespace deleted while the audit runs is no failure of the audit (its other namespaces are reported and the
// run counts as done); any other error of a namespace still is.
func TestNamespaceDeletedDuringTheAudit(t *testing.T) {
	src := &memSource{namespaces: []audit.Namespace{{Name: "old"}, {Name: "shop"}}, objects: map[string][]map[string]any{}}
	for _, ns := range []string{"old", "shop"} {
		src.add("pods", Object(Pod, ns, "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/web:1")}}))
	}
	terminating := apierrors.NewForbidden(schema.GroupResource{Group: "wgpolicyk8s.io", Resource: "policyreports"}, "attest", errors.New("unable to create new content in namespace old because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: "namespace old is being terminated", Field: "metadata.namespace"}}
	ev, e, current := pipeline(t, nil)
	for _, tc := range []struct {
		name    string
		err     error
		wantErr string
	}{
		{name: "namespace not found", err: apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "old")},
		{name: "namespace terminating", err: terminating},
		{name: "another namespace's not found", err: apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "shop"), wantErr: "namespace old: write PolicyReport old/attest"},
		{name: "report not found", err: apierrors.NewNotFound(schema.GroupResource{Group: "wgpolicyk8s.io", Resource: "policyreports"}, "attest"), wantErr: "namespace old: write PolicyReport old/attest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &goneSink{gone: "old", err: tc.err}
			a, err := audit.New(audit.Options{Source: src, Evaluator: ev, Config: current, Engine: e, Sink: sink})
			if err != nil {
				t.Fatal(err)
			}
			st, err := a.Run(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Run: %v, want %q", err, tc.wantErr)
			}
			if sink.finished["shop"] != 1 {
				t.Errorf("shop was not reported: %v", sink.finished)
			}
			if tc.wantErr == "" && st.Namespaces != 1 {
				t.Errorf("%d namespaces counted, want 1: the deleted one is not", st.Namespaces)
			}
		})
	}
}
