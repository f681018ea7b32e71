//go:build !lean

package bundles_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
	"github.com/continuums/attest/policies"
)

// syncFixture is a syncer over one source, policies/acme:prod of a test registry, trusted when signed by key.
type syncFixture struct {
	reg     *testRegistry
	key     *attestationtest.Signer
	clock   *clocktesting.FakeClock
	syncer  *bundles.Syncer
	metrics *prometheus.Registry
	changes [][]bundles.Loaded
}

func newSyncFixture(t *testing.T) *syncFixture {
	t.Helper()
	f := &syncFixture{reg: newTestRegistry(t), key: attestationtest.NewKey(t), clock: clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0)), metrics: prometheus.NewRegistry()}
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	v := verifierFor(t, f.reg, f.key)
	f.syncer, err = bundles.NewSyncer(bundles.SyncerOptions{
		Sources: func() []bundles.Source {
			return []bundles.Source{{Name: "acme", Ref: f.reg.host() + "/policies/acme:prod", TrustPolicy: "policy-bundles", Interval: time.Minute}}
		},
		Verifier:   func() *attestation.Verifier { return v },
		Library:    lib,
		OnChange:   func(l []bundles.Loaded) { f.changes = append(f.changes, l) },
		Registerer: f.metrics,
		Clock:      f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// push pushes a bundle to policies/acme:prod, signed by key when sign is set.
func (f *syncFixture) push(t *testing.T, fs map[string]string, sign bool) name.Digest {
	t.Helper()
	d, err := bundles.Push(context.Background(), archiveOf(t, fs), f.reg.ref(t, "policies/acme:prod"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sign {
		f.key.Sign(t, d)
	}
	return d
}

func (f *syncFixture) status(t *testing.T) bundles.Status {
	t.Helper()
	st := f.syncer.Statuses()
	if len(st) != 1 {
		t.Fatalf("statuses %+v", st)
	}
	return st[0]
}

// count is attest_policy_source_sync_total{source="acme",result}.
func (f *syncFixture) count(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := f.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "attest_policy_source_sync_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == "acme" && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestSyncerKeepsTheLastGoodBundle(t *testing.T) {
	ctx := context.Background()
	f := newSyncFixture(t)

	// Nothing pushed yet: unavailable, nothing loaded.
	f.syncer.SyncDue(ctx)
	if st := f.status(t); st.Ready || st.Result != bundles.ResultUnavailable || len(f.changes) != 0 {
		t.Fatalf("before any push: %+v, changes %d", st, len(f.changes))
	}

	// A signed bundle loads at the next interval.
	v1 := f.push(t, files(), true)
	f.clock.Step(time.Minute)
	f.syncer.SyncDue(ctx)
	st := f.status(t)
	if !st.Ready || st.Result != bundles.ResultLoaded || st.Digest != v1.DigestStr() || st.Signer != f.key.KeyID(t) ||
		st.Revision != "v1" || strings.Join(st.Policies, ",") != "acme-team-label" || !st.LastSuccess.Equal(f.clock.Now()) {
		t.Fatalf("signed: %+v", st)
	}
	if len(f.changes) != 1 || len(f.changes[0]) != 1 || f.changes[0][0].Policies[0].File != "PolicySource/acme@"+v1.DigestStr()+"/acme/team_label.rego" {
		t.Fatalf("changes %+v", f.changes)
	}
	if d := f.changes[0][0].Policies[0].Digest; !strings.HasPrefix(d, v1.DigestStr()+"/") || len(d) != len(v1.DigestStr())+1+16 {
		t.Errorf("policy digest %q does not name the bundle and the source", d)
	}
	// Before the interval has passed, nothing is asked.
	f.reg.down.Store(true)
	f.clock.Step(30 * time.Second)
	f.syncer.SyncDue(ctx)
	if st := f.status(t); !st.Ready {
		t.Fatalf("synced before the interval: %+v", st)
	}
	// Registry down at the interval: the last good bundle stays, the status says why.
	f.clock.Step(30 * time.Second)
	f.syncer.SyncDue(ctx)
	st = f.status(t)
	if st.Ready || st.Result != bundles.ResultUnavailable || st.Digest != v1.DigestStr() || !strings.Contains(st.Message, "could not verify") {
		t.Fatalf("registry down: %+v", st)
	}
	if len(f.changes) != 1 || len(f.syncer.Loaded()) != 1 {
		t.Fatalf("registry down changed the loaded bundles: %+v", f.syncer.Loaded())
	}
	f.reg.down.Store(false)

	// The tag moved to an unsigned digest: refused, the last good stays.
	f.push(t, files(with("acme/team_label.rego", strings.Replace(bundlestest.TeamLabelPolicy, "team label", "team label!", 1))), false)
	f.clock.Step(time.Minute)
	f.syncer.SyncDue(ctx)
	st = f.status(t)
	if st.Ready || st.Result != bundles.ResultUntrusted || st.Digest != v1.DigestStr() || !strings.Contains(st.Message, "no signature from authority 'policy-ci'") {
		t.Fatalf("unsigned: %+v", st)
	}

	// The tag moved to a signed digest whose tests fail: refused, the last good stays.
	failing := strings.Replace(bundlestest.TeamLabelTest, "count(team_label.violation) == 0", "count(team_label.violation) == 2", 1)
	f.push(t, files(with("acme/team_label_test.rego", failing)), true)
	f.clock.Step(time.Minute)
	f.syncer.SyncDue(ctx)
	st = f.status(t)
	if st.Ready || st.Result != bundles.ResultRefused || st.Digest != v1.DigestStr() || !strings.Contains(st.Message, "1 of 2 bundle tests failed") {
		t.Fatalf("failing tests: %+v", st)
	}

	// The tag moved to a new signed digest: picked up at the next interval.
	v2 := f.push(t, files(with(".manifest", `{"revision": "v2", "roots": ["acme"]}`)), true)
	f.clock.Step(time.Minute)
	f.syncer.SyncDue(ctx)
	st = f.status(t)
	if !st.Ready || st.Digest != v2.DigestStr() || st.Revision != "v2" || len(f.changes) != 2 || f.changes[1][0].Digest != v2.DigestStr() {
		t.Fatalf("moved tag: %+v, changes %d", st, len(f.changes))
	}
	// Same digest again: unchanged, no swap.
	f.clock.Step(time.Minute)
	f.syncer.SyncDue(ctx)
	if st := f.status(t); !st.Ready || st.Result != bundles.ResultUnchanged || len(f.changes) != 2 {
		t.Fatalf("unchanged: %+v", st)
	}

	for result, want := range map[string]float64{bundles.ResultLoaded: 2, bundles.ResultUnchanged: 1, bundles.ResultUnavailable: 2, bundles.ResultUntrusted: 1, bundles.ResultRefused: 1} {
		if got := f.count(t, result); got != want {
			t.Errorf("sync_total{result=%s} = %v, want %v", result, got, want)
		}
	}
	if err := testutil.GatherAndCompare(f.metrics, strings.NewReader(`
# HELP attest_policy_source_last_success_timestamp_seconds When each policy source last verified and checked its bundle (Unix seconds).
# TYPE attest_policy_source_last_success_timestamp_seconds gauge
attest_policy_source_last_success_timestamp_seconds{source="acme"} `+strconv.FormatInt(f.clock.Now().Unix(), 10)+`
`), "attest_policy_source_last_success_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

// TestSyncerLoadsCedarAndGatekeeper: a signed bundle's Cedar set and constraint load with their Rego, each policy's
// digest naming the bundle; a signed bundle whose Cedar does not parse, or whose constraint lacks its template,
// is refused and the last good one stays.
func TestSyncerLoadsCedarAndGatekeeper(t *testing.T) {
	ctx := context.Background()
	f := newSyncFixture(t)
	all := func(opts ...func(map[string]string)) map[string]string {
		m := mixedFiles(t, with("acme/team_label.rego", bundlestest.TeamLabelPolicy), with("acme/team_label_test.rego", bundlestest.TeamLabelTest))
		for _, o := range opts {
			o(m)
		}
		return m
	}
	v1 := f.push(t, all(), true)
	f.syncer.SyncDue(ctx)
	st := f.status(t)
	if !st.Ready || st.Digest != v1.DigestStr() ||
		strings.Join(st.Policies, ",") != "acme-team-label,no-host-network,AcmeRequiredLabels/pods-have-owner" {
		t.Fatalf("mixed bundle: %+v", st)
	}
	loaded := f.syncer.Loaded()
	if len(loaded) != 1 || len(loaded[0].Policies) != 3 {
		t.Fatalf("loaded %+v", loaded)
	}
	for _, p := range loaded[0].Policies {
		if !strings.HasPrefix(p.Digest, v1.DigestStr()+"/") || len(p.Digest) <= len(v1.DigestStr())+1 {
			t.Errorf("%s: digest %q does not name the bundle and the policy's source", p.Name, p.Digest)
		}
		if !strings.HasPrefix(p.File, "PolicySource/acme@"+v1.DigestStr()+"/") {
			t.Errorf("%s: file %q", p.Name, p.File)
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"broken cedar", all(with("cedar/no-host-network.cedar", "forbid (principal, action, resource)\nwhen { };")), "invalid Cedar policy: parser error"},
		{"constraint without its template", all(without("gatekeeper/required-labels.yaml"), with("gatekeeper/services.yaml", constraint)),
			"no ConstraintTemplate of the bundle defines the kind AcmeRequiredLabels"},
	} {
		f.push(t, tc.files, true)
		f.clock.Step(time.Minute)
		f.syncer.SyncDue(ctx)
		st = f.status(t)
		if st.Ready || st.Result != bundles.ResultRefused || st.Digest != v1.DigestStr() || !strings.Contains(st.Message, tc.want) {
			t.Errorf("%s: %+v", tc.name, st)
		}
		if l := f.syncer.Loaded(); len(l) != 1 || l[0].Digest != v1.DigestStr() {
			t.Errorf("%s: the last good bundle was dropped: %+v", tc.name, l)
		}
	}
}
