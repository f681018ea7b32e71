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

func rule(group string, resources []string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources}}
}

const (
	c = admissionregistrationv1.Create
	u = admissionregistrationv1.Update
	d = admissionregistrationv1.Delete
	x = admissionregistrationv1.Connect
)

func describe(rules []admissionregistrationv1.RuleWithOperations) string {
	var parts []string
	for _, r := range rules {
		var ops []string
		for _, op := range r.Operations {
			ops = append(ops, string(op))
		}
		parts = append(parts, strings.Join(r.APIGroups, ",")+"/"+strings.Join(r.Resources, ",")+":"+strings.Join(ops, ","))
	}
	return strings.Join(parts, " ")
}

func TestRules(t *testing.T) {
	base := []admissionregistrationv1.RuleWithOperations{rule("", []string{"pods"}, c, u), rule("apps", []string{"deployments"}, c, u)}
	tests := []struct {
		name   string
		rules  []admissionregistrationv1.RuleWithOperations
		needed []string
		want   string
	}{
		{"nothing needed", base, nil, "/pods:CREATE,UPDATE apps/deployments:CREATE,UPDATE"},
		{"deletes", base, []string{"DELETE"}, "/pods:CREATE,UPDATE,DELETE apps/deployments:CREATE,UPDATE,DELETE"},
		{"connect", base, []string{"CONNECT"}, "/pods:CREATE,UPDATE apps/deployments:CREATE,UPDATE /pods/attach,pods/exec,pods/portforward,pods/proxy,services/proxy,nodes/proxy:CONNECT"},
		{"no longer needed", rulesync.Rules(base, []string{"DELETE", "CONNECT"}), nil, "/pods:CREATE,UPDATE apps/deployments:CREATE,UPDATE"},
		{"idempotent", rulesync.Rules(base, []string{"DELETE"}), []string{"DELETE"}, "/pods:CREATE,UPDATE,DELETE apps/deployments:CREATE,UPDATE,DELETE"},
		{"a wildcard operation is narrowed", []admissionregistrationv1.RuleWithOperations{rule("", []string{"pods"}, admissionregistrationv1.OperationAll)}, nil, "/pods:CREATE,UPDATE"},
		{"deletes of one resource", base, []string{"DELETE apps/deployments"}, "/pods:CREATE,UPDATE apps/deployments:CREATE,UPDATE apps/deployments:DELETE"},
		{"deletes of a resource no rule covers", base, []string{"DELETE /namespaces", "DELETE /pods"}, "/pods:CREATE,UPDATE /pods:DELETE apps/deployments:CREATE,UPDATE /namespaces:DELETE"},
		{"narrowed deletes re-synced", rulesync.Rules(base, []string{"DELETE apps/deployments", "DELETE /namespaces"}), []string{"DELETE /pods"}, "/pods:CREATE,UPDATE /pods:DELETE apps/deployments:CREATE,UPDATE"},
		{"narrowed, then every resource", rulesync.Rules(base, []string{"DELETE apps/deployments"}), []string{"DELETE"}, "/pods:CREATE,UPDATE,DELETE apps/deployments:CREATE,UPDATE,DELETE"},
		{"every resource wins over narrowed", base, []string{"DELETE", "DELETE apps/deployments"}, "/pods:CREATE,UPDATE,DELETE apps/deployments:CREATE,UPDATE,DELETE"},
		{"a resource of another group is not the rule's", base, []string{"DELETE batch/deployments"}, "/pods:CREATE,UPDATE apps/deployments:CREATE,UPDATE batch/deployments:DELETE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(rulesync.Rules(tc.rules, tc.needed)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestSync updates only the named webhook of the named configuration, and only when something changes. The real
// API server path is covered by e2e's TestCedarPolicies, which relies on the sync for deletions.
func TestSync(t *testing.T) {
	vwc := func(name string) *admissionregistrationv1.ValidatingWebhookConfiguration {
		return &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "attest.continuu.ms", Rules: []admissionregistrationv1.RuleWithOperations{rule("apps", []string{"deployments"}, c, u)}},
			{Name: "resources.attest.continuu.ms", Rules: []admissionregistrationv1.RuleWithOperations{rule("policy.attest.continuu.ms", []string{"policies"}, c, u)}},
		}}
	}
	client := fake.NewClientset(vwc("attest"), vwc("other"))
	s, err := rulesync.New(rulesync.Options{Client: client, Configuration: "attest", Webhook: "attest.continuu.ms", Needed: func() []string { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, step := range []struct {
		needed  []string
		changed bool
		want    string
	}{
		{[]string{"DELETE"}, true, "apps/deployments:CREATE,UPDATE,DELETE"},
		{[]string{"DELETE"}, false, "apps/deployments:CREATE,UPDATE,DELETE"},
		{nil, true, "apps/deployments:CREATE,UPDATE"},
	} {
		changed, err := s.Sync(ctx, step.needed)
		if err != nil || changed != step.changed {
			t.Fatalf("sync %v: changed %v, err %v", step.needed, changed, err)
		}
		got, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "attest", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d := describe(got.Webhooks[0].Rules); d != step.want || describe(got.Webhooks[1].Rules) != "policy.attest.continuu.ms/policies:CREATE,UPDATE" {
			t.Fatalf("rules %s / %s", d, describe(got.Webhooks[1].Rules))
		}
	}
	other, _ := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "other", metav1.GetOptions{})
	if describe(other.Webhooks[0].Rules) != "apps/deployments:CREATE,UPDATE" {
		t.Fatal("another configuration was changed")
	}
	missing, _ := rulesync.New(rulesync.Options{Client: client, Configuration: "nope", Webhook: "attest.continuu.ms", Needed: func() []string { return nil }})
	if _, err := missing.Sync(ctx, []string{"DELETE"}); err == nil || !strings.Contains(err.Error(), "ValidatingWebhookConfiguration nope not found") {
		t.Fatalf("err %v", err)
	}
}

func TestNeeds(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: "apps", Version: "v1"}, {Version: "v1"}})
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	tests := []struct {
		name    string
		opKinds map[string][]string
		want    string
	}{
		{"none", nil, ""},
		{"kinds to resources", map[string][]string{"DELETE": {"apps/Deployment", "/Namespace"}}, "DELETE /namespaces,DELETE apps/deployments"},
		{"every kind", map[string][]string{"DELETE": nil, "CONNECT": nil}, "CONNECT,DELETE"},
		{"a kind the cluster does not serve: every resource, never a miss", map[string][]string{"DELETE": {"apps/Deployment", "example.com/Widget"}}, "DELETE"},
		{"create and update are the manifests' own", map[string][]string{"CREATE": nil, "UPDATE": nil, "DELETE": {"/Namespace"}}, "DELETE /namespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(rulesync.Needs(tc.opKinds, mapper), ","); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
