//go:build !lean

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/api/v1alpha1"
)

func draft(ns, kind, name, policy string, validUntil time.Time) *v1alpha1.PolicyExceptionDraft {
	ea := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	return &v1alpha1.PolicyExceptionDraft{
		ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower(kind + "-" + name + "-" + policy), Namespace: ns,
			Labels: map[string]string{v1alpha1.LabelPolicy: policy}},
		Spec: v1alpha1.PolicyExceptionDraftSpec{
			Policy: policy, Target: v1alpha1.ExceptionTarget{Kinds: []string{kind}, Names: []string{name}},
			Violations:   []string{"[" + policy + "] spec.template.spec.containers[0] (app): privileged containers are not allowed", "[" + policy + "] second"},
			Reason:       "existing " + kind + " " + name + " violated " + policy + " before it is enforced from 2026-12-01T00:00:00Z",
			EnforceAfter: &ea, ValidUntil: metav1.NewTime(validUntil), LastSeen: metav1.NewTime(clusterNow.Add(-time.Hour)),
		},
	}
}

func TestDraftsList(t *testing.T) {
	f := newFakeCluster(t, "shop",
		draft("shop", "Deployment", "web", "no-privileged", clusterNow.Add(10*24*time.Hour)),
		draft("other", "StatefulSet", "db", "no-privileged", clusterNow.Add(24*time.Hour)))
	out, errOut, code := attestWith(t, f, "policy", "exemptions", "drafts")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") ||
		!strings.Contains(lines[1], "deployment-web-no-privileged  no-privileged  Deployment/web  2026-12-01T00:00:00Z  2026-11-25T11:00:00Z  2026-12-05T12:00:00Z (in 10d)  -") ||
		!strings.HasSuffix(lines[1], "[no-privileged] spec.template.spec.containers[0] (app): p... (+1)") {
		t.Fatalf("text:\n%s", out)
	}
	out, _, code = attestWith(t, f, "policy", "exemptions", "drafts", "-A", "--format", "json")
	var entries []draftEntry
	if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if len(entries) != 2 || entries[0].Namespace != "other" || entries[1].Workload != "web" || entries[1].Kind != "Deployment" || len(entries[1].Violations) != 2 {
		t.Fatalf("json: %+v", entries)
	}
	out, _, code = attestWith(t, f, "policy", "exemptions", "drafts", "-n", "empty")
	if code != 0 || out != "No PolicyExceptionDrafts found in namespace empty.\n" {
		t.Fatalf("exit %d: %q", code, out)
	}
	if _, errOut, code := attestWith(t, f, "policy", "exemptions", "drafts", "-n", "a", "-A"); code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Fatalf("-n with -A: exit %d: %s", code, errOut)
	}
}

func TestPromote(t *testing.T) {
	cases := map[string]struct {
		args    []string
		valid   time.Time
		expires time.Time
		reason  string
	}{
		"until the draft's valid-until": {nil, clusterNow.Add(10 * 24 * time.Hour), clusterNow.Add(10 * 24 * time.Hour), "existing Deployment web violated no-privileged before it is enforced from 2026-12-01T00:00:00Z"},
		"duration and reason":           {[]string{"--duration", "7d", "--reason", "CHG-9"}, clusterNow.Add(10 * 24 * time.Hour), clusterNow.Add(7 * 24 * time.Hour), "CHG-9"},
		"valid-until passed":            {nil, clusterNow.Add(-time.Hour), clusterNow.Add(30 * 24 * time.Hour), "existing Deployment web violated no-privileged before it is enforced from 2026-12-01T00:00:00Z"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeCluster(t, "shop", draft("shop", "Deployment", "web", "no-privileged", tc.valid))
			out, errOut, code := attestWith(t, f, append([]string{"policy", "exempt", "promote", "deployment-web-no-privileged", "-n", "shop"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.HasPrefix(out, "policyexception.policy.attest.continuu.ms/deployment-web-no-privileged created in namespace shop from draft deployment-web-no-privileged: Pending until approved (attest policy exempt approve deployment-web-no-privileged -n shop)") {
				t.Errorf("output %q", out)
			}
			var pe v1alpha1.PolicyException
			if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "deployment-web-no-privileged"}, &pe); err != nil {
				t.Fatal(err)
			}
			if pe.Spec.Policies[0] != "no-privileged" || pe.Spec.Targets[0].Kinds[0] != "Deployment" || pe.Spec.Targets[0].Names[0] != "web" ||
				!pe.Spec.ExpiresAt.Time.Equal(tc.expires) || pe.Spec.Reason != tc.reason || pe.Spec.ApprovedBy != "pending" || pe.Status.Phase != "" {
				t.Errorf("exception %+v", pe.Spec)
			}
			var d v1alpha1.PolicyExceptionDraft
			if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "deployment-web-no-privileged"}, &d); err != nil {
				t.Fatal(err)
			}
			if d.Labels[v1alpha1.LabelPromoted] != pe.Name || d.Labels[v1alpha1.LabelPolicy] != "no-privileged" {
				t.Errorf("draft labels %v", d.Labels)
			}
			if _, errOut, code := attestWith(t, f, "policy", "exempt", "promote", "deployment-web-no-privileged", "-n", "shop"); code != 1 || !strings.Contains(errOut, "already exists: the draft was promoted before") {
				t.Errorf("second promote: exit %d: %s", code, errOut)
			}
		})
	}
	f := newFakeCluster(t, "shop")
	if _, errOut, code := attestWith(t, f, "policy", "exempt", "promote", "nope"); code != 1 || !strings.Contains(errOut, "PolicyExceptionDraft shop/nope not found") {
		t.Errorf("missing draft: exit %d: %s", code, errOut)
	}
	f = newFakeCluster(t, "shop", draft("shop", "Deployment", "web", "no-privileged", clusterNow.Add(time.Hour)))
	if _, errOut, code := attestWith(t, f, "policy", "exempt", "promote", "deployment-web-no-privileged", "--duration", "90d"); code != 2 || !strings.Contains(errOut, "beyond the maximum of 30d") {
		t.Errorf("too long: exit %d: %s", code, errOut)
	}
}
