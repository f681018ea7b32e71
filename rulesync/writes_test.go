package rulesync_test

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/continuums/attest/rulesync"
)

func TestWriteRules(t *testing.T) {
	base := []admissionregistrationv1.RuleWithOperations{rule("", []string{"pods"}, c, u), rule("apps", []string{"deployments"}, c, u), rule("batch", []string{"jobs"}, d)}
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"none", nil, ""},
		{"a kind the webhook is not sent", []string{"/configmaps"}, "/configmaps:CREATE,UPDATE"},
		{"one rule per group, resources sorted", []string{"/secrets", "rbac.authorization.k8s.io/rolebindings", "/configmaps"}, "/configmaps,secrets:CREATE,UPDATE rbac.authorization.k8s.io/rolebindings:CREATE,UPDATE"},
		{"what the webhook's rules send is left out", []string{"/pods", "apps/deployments", "/services"}, "/services:CREATE,UPDATE"},
		{"a DELETE rule does not send writes", []string{"batch/jobs"}, "batch/jobs:CREATE,UPDATE"},
		{"the same resource once", []string{"/configmaps", "/configmaps"}, "/configmaps:CREATE,UPDATE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(rulesync.WriteRules(base, tc.writes)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	wild := []admissionregistrationv1.RuleWithOperations{rule("*", []string{"*"}, admissionregistrationv1.OperationAll)}
	if got := describe(rulesync.WriteRules(wild, []string{"/configmaps"})); got != "" {
		t.Fatalf("a wildcard rule sends everything, got %s", got)
	}
}

func TestResources(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: "rbac.authorization.k8s.io", Version: "v1"}, {Version: "v1"}})
	mapper.Add(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	got := strings.Join(rulesync.Resources([]string{"/ConfigMap", "rbac.authorization.k8s.io/RoleBinding", "example.com/Widget", "/ConfigMap"}, mapper), ",")
	if want := "/configmaps,rbac.authorization.k8s.io/rolebindings"; got != want {
		t.Fatalf("got %q, want %q (a kind the cluster does not serve is left out)", got, want)
	}
}

// TestSyncWrites keeps the writes webhook's rules equal to the resources no rule of the main webhook sends, and
// fails with the entry named when the configuration has none but writes are judged.
func TestSyncWrites(t *testing.T) {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "attest"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{
		{Name: "attest.continuu.ms", Rules: []admissionregistrationv1.RuleWithOperations{rule("apps", []string{"deployments"}, c, u)}},
		{Name: "kinds.attest.continuu.ms"},
	}}
	client := fake.NewClientset(vwc)
	var writes []string
	s, err := rulesync.New(rulesync.Options{Client: client, Configuration: "attest", Webhook: "attest.continuu.ms", WritesWebhook: "kinds.attest.continuu.ms",
		Needed: func() []string { return nil }, Writes: func() []string { return writes }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, step := range []struct {
		writes  []string
		needed  []string
		changed bool
		want    string
	}{
		{[]string{"/configmaps", "apps/deployments"}, nil, true, "/configmaps:CREATE,UPDATE"},
		{[]string{"apps/deployments", "/configmaps"}, nil, false, "/configmaps:CREATE,UPDATE"},
		{[]string{"/configmaps"}, []string{"DELETE"}, true, "/configmaps:CREATE,UPDATE"},
		{nil, nil, true, ""},
	} {
		writes = step.writes
		changed, err := s.Sync(ctx, step.needed)
		if err != nil || changed != step.changed {
			t.Fatalf("sync %v %v: changed %v, err %v", step.writes, step.needed, changed, err)
		}
		got, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "attest", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d := describe(got.Webhooks[1].Rules); d != step.want {
			t.Fatalf("writes %v: rules %q, want %q", step.writes, d, step.want)
		}
	}
	noEntry := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{
		{Name: "attest.continuu.ms", Rules: []admissionregistrationv1.RuleWithOperations{rule("apps", []string{"deployments"}, c, u)}},
	}}
	old, _ := rulesync.New(rulesync.Options{Client: fake.NewClientset(noEntry), Configuration: "old", Webhook: "attest.continuu.ms", WritesWebhook: "kinds.attest.continuu.ms",
		Needed: func() []string { return nil }, Writes: func() []string { return []string{"/configmaps"} }})
	if _, err := old.Sync(ctx, nil); err == nil || !strings.Contains(err.Error(), "has no webhook kinds.attest.continuu.ms") {
		t.Fatalf("err %v, want the missing entry named", err)
	}
	if changed, err := old.Sync(ctx, []string{"DELETE"}); err == nil || !changed {
		t.Fatalf("changed %v, err %v: the main webhook's rules must be kept though the writes entry is missing", changed, err)
	}
}
