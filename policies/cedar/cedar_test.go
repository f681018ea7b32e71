package cedar_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// noon is a request time inside business hours.
var noon = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

type opt func(*policies.Input)

func input(op, group, version, kind string, opts ...opt) *policies.Input {
	in := &policies.Input{Request: policies.Request{UID: "u-1", Operation: op, Group: group, Version: version, Kind: kind,
		Namespace: "default", Name: "web", Username: "alice", TimestampNS: noon.UnixNano()}}
	for _, o := range opts {
		o(in)
	}
	return in
}

func object(obj map[string]any) opt    { return func(in *policies.Input) { in.Resource = obj } }
func oldObject(obj map[string]any) opt { return func(in *policies.Input) { in.OldResource = obj } }
func user(name string, groups ...string) opt {
	return func(in *policies.Input) { in.Request.Username, in.Request.Groups = name, groups }
}
func extra(k string, v ...string) opt {
	return func(in *policies.Input) { in.Request.Extra = map[string][]string{k: v} }
}
func production(in *policies.Input) {
	in.Namespace = policies.Namespace{Name: "prod", Labels: map[string]string{"environment": "production"}, Production: true}
	in.Request.Namespace = "prod"
}
func at(t time.Time) opt { return func(in *policies.Input) { in.Request.TimestampNS = t.UnixNano() } }

func pod(hostNetwork bool, labels map[string]any) map[string]any {
	md := map[string]any{"name": "web", "namespace": "default"}
	if labels != nil {
		md["labels"] = labels
	}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": md,
		"spec": map[string]any{"hostNetwork": hostNetwork, "containers": []any{map[string]any{"name": "app", "image": "nginx"}}}}
}

func parse(t *testing.T, text string) *cedar.Set {
	t.Helper()
	s, err := cedar.Parse(cedar.Source{Name: "test.cedar", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

const hostNetwork = `@id("no-host-network")
@message("pods may not use the host network")
@severity("high")
@fix("remove spec.hostNetwork")
forbid (principal, action in [k8s::admission::Action::"create", k8s::admission::Action::"update"], resource is core::v1::Pod)
when { resource has spec && resource.spec has hostNetwork && resource.spec.hostNetwork == true };
`

func TestDecide(t *testing.T) {
	const owners = `forbid (principal is k8s::User in k8s::Group::"requires-labels",
    action in [k8s::admission::Action::"create", k8s::admission::Action::"update", k8s::admission::Action::"delete"], resource)
unless { resource has metadata && resource.metadata has labels && resource.metadata.labels.contains({"key": "owner", "value": principal.name}) };
forbid (principal is k8s::User in k8s::Group::"requires-labels", action == k8s::admission::Action::"update", resource)
unless { resource has oldObject && resource.oldObject has metadata && resource.oldObject.metadata has labels &&
    resource.oldObject.metadata.labels.contains({"key": "owner", "value": principal.name}) };
`
	const mfa = `@id("prod-mfa") @message("production changes need MFA")
forbid (principal, action, resource) when { context.namespace.production && !context.mfa };`
	const hours = `@id("hours") @message("outside business hours")
forbid (principal, action, resource) when { context.time.toTime() < duration("8h") || context.time.toTime() >= duration("18h") };`
	const scoped = `@id("production") @default("deny") @message("only SRE may change production")
permit (principal, action, resource) when { context.namespace.production };
@id("sre") permit (principal in k8s::Group::"sre", action, resource);`
	mine := map[string]any{"owner": "alice"}
	tests := []struct {
		name     string
		policy   string
		in       *policies.Input
		allowed  bool
		reasons  []string
		findings []policies.Finding
	}{
		{"forbid matches", hostNetwork, input("CREATE", "", "v1", "Pod", object(pod(true, nil))), false, []string{"no-host-network"},
			[]policies.Finding{{Message: "pods may not use the host network", Severity: policies.SeverityHigh, Path: "spec.hostNetwork", Fix: "remove spec.hostNetwork"}}},
		{"forbid does not match", hostNetwork, input("CREATE", "", "v1", "Pod", object(pod(false, nil))), true, nil, nil},
		{"other kinds are not in the forbid's scope", hostNetwork, input("CREATE", "apps", "v1", "Deployment", object(map[string]any{"spec": map[string]any{"hostNetwork": true}})), true, nil, nil},
		{"group member without owner label", owners, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), user("alice", "requires-labels")), false, []string{"test.cedar:1"},
			[]policies.Finding{{Message: "forbidden by the Cedar policy test.cedar:1", Severity: policies.SeverityMedium, Path: "metadata.labels"}}},
		{"group member with owner label", owners, input("CREATE", "", "v1", "Pod", object(pod(false, mine)), user("alice", "requires-labels")), true, nil, nil},
		{"not a group member", owners, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), user("bob", "dev")), true, nil, nil},
		{"update of an object not owned", owners, input("UPDATE", "", "v1", "Pod", object(pod(false, mine)), oldObject(pod(false, nil)), user("alice", "requires-labels")), false, []string{"test.cedar:4"}, nil},
		{"update of an owned object", owners, input("UPDATE", "", "v1", "Pod", object(pod(false, mine)), oldObject(pod(false, mine)), user("alice", "requires-labels")), true, nil, nil},
		{"delete reads the old object", owners, input("DELETE", "", "v1", "Pod", oldObject(pod(false, nil)), user("alice", "requires-labels")), false, []string{"test.cedar:1"}, nil},
		{"mfa missing in production", mfa, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), production), false, []string{"prod-mfa"}, nil},
		{"mfa from userInfo.extra amr", mfa, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), production, extra("amr", "pwd", "mfa")), true, nil, nil},
		{"inside business hours", hours, input("CREATE", "", "v1", "Pod", object(pod(false, nil))), true, nil, nil},
		{"outside business hours", hours, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), at(noon.Add(7*time.Hour))), false, []string{"hours"}, nil},
		{"default-deny scope, permitted", scoped, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), production, user("sam", "sre")), true, []string{"sre"}, nil},
		{"default-deny scope, not permitted", scoped, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), production, user("dev", "developers")), false, []string{"production"},
			[]policies.Finding{{Message: "only SRE may change production", Severity: policies.SeverityMedium}}},
		{"outside the default-deny scope", scoped, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), user("dev", "developers")), true, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := parse(t, tc.policy)
			d, err := s.Decide(cedar.Options{}, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.allowed || strings.Join(d.Reasons, ",") != strings.Join(tc.reasons, ",") || len(d.Errors) > 0 {
				t.Fatalf("allowed %v reasons %v errors %v, want %v %v", d.Allowed, d.Reasons, d.Errors, tc.allowed, tc.reasons)
			}
			if tc.findings != nil && !equalFindings(d.Findings, tc.findings) {
				t.Fatalf("findings %+v, want %+v", d.Findings, tc.findings)
			}
		})
	}
}

func equalFindings(a, b []policies.Finding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
		validate         bool
	}{
		{"syntax error names file:line:column", "permit(principal, action, resource);\n\nforbid(principal, action resource);", "parse error at bad.cedar:3:", false},
		{"empty set", "// nothing\n", "no policies in bad.cedar", false},
		{"duplicate ids", "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);", `bad.cedar:2:1: policy id "a" is already the id of the policy at bad.cedar:1:1`, false},
		{"bad severity", "@severity(\"urgent\") forbid(principal, action, resource);", `bad.cedar:1:1: @severity: unknown severity "urgent"`, false},
		{"default deny on a forbid", "@default(\"deny\") forbid(principal, action, resource);", `@default("deny") belongs on a permit`, false},
		{"unknown entity type", "forbid(principal, action == k8s::admission::Action::\"create\", resource is core::v1::Nope);", "bad.cedar:1:1: policy bad.cedar:1: unrecognized entity type `core::v1::Nope`", true},
		{"unguarded optional attribute", "forbid(principal, action == k8s::admission::Action::\"create\", resource is core::v1::Pod) when { resource.spec.hostNetwork };", "unable to guarantee safety of access to optional attribute `spec`", true},
		{"context type error", "forbid(principal, action, resource) when { context.mfa == 1 };", "bad.cedar:1:1: policy bad.cedar:1:", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cedar.Parse(cedar.Source{Name: "bad.cedar", Text: tc.text})
			if tc.validate {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				err = s.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, cedar.ErrInvalid) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOperations(t *testing.T) {
	s := parse(t, hostNetwork+`forbid (principal, action == k8s::admission::Action::"delete", resource is apps::v1::Deployment);
permit (principal, action == k8s::admission::Action::"connect", resource);`)
	if got := strings.Join(s.Operations(), ","); got != "CREATE,DELETE,UPDATE" {
		t.Fatalf("operations %s", got)
	}
	if got := strings.Join(parse(t, `forbid (principal, action, resource);`).Operations(), ","); got != "CONNECT,CREATE,DELETE,UPDATE" {
		t.Fatalf("operations of an unscoped forbid %s", got)
	}
}

func TestEvaluatorFailsClosed(t *testing.T) {
	// Unvalidated (as a Cedar for Kubernetes policy with validation off may be): the attribute is missing.
	s, err := cedar.Parse(cedar.Source{Name: "x.cedar", Text: `forbid (principal, action, resource is core::v1::Pod) when { resource.spec.nodeName == "n1" };`})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cedar.NewPolicy("pods", "cedar/x.cedar", s, "text", cedar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Engine() != "cedar" {
		t.Errorf("engine %q, want cedar", p.Engine())
	}
	doc, err := policies.NewDocument(*input("CREATE", "", "v1", "Pod", object(pod(false, nil))))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Eval(context.Background(), doc, policies.Settings{})
	if err == nil || !strings.Contains(err.Error(), "the Cedar policy x.cedar:1 (x.cedar:1:1) could not be evaluated") {
		t.Fatalf("error %v", err)
	}
}

// TestAuthorizationPoliciesValidate: Cedar for Kubernetes files mix authorization policies (k8s::Action,
// k8s::Resource) with admission ones; they validate, and never match an admission request.
func TestAuthorizationPoliciesValidate(t *testing.T) {
	s := parse(t, `permit (principal is k8s::User, action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
when { resource.apiGroup == "" && resource has namespace && resource.namespace == "default" };
forbid (principal in k8s::Group::"requires-labels", action == k8s::Action::"list", resource is k8s::Resource)
unless { resource has labelSelector && resource.labelSelector.contains({"key": "owner", "operator": "=", "values": [principal.name]}) };
forbid (principal, action, resource) when { context.dryRun };`)
	d, err := s.Decide(cedar.Options{}, input("CREATE", "", "v1", "Pod", object(pod(false, nil)), user("alice", "requires-labels")))
	if err != nil || !d.Allowed {
		t.Fatalf("decision %+v %v", d, err)
	}
}

func TestOperationKinds(t *testing.T) {
	const del = `k8s::admission::Action::"delete"`
	cases := []struct {
		name, text string
		want       map[string]string // operation → kinds joined, "*" for every kind
	}{
		{"one kind", `forbid (principal, action == ` + del + `, resource is apps::v1::Deployment);`, map[string]string{"DELETE": "apps/Deployment"}},
		{"kinds of two forbids, built-in groups as served", `forbid (principal, action == ` + del + `, resource is apps::v1::Deployment);
forbid (principal, action == ` + del + `, resource is rbac::v1::Role);
forbid (principal, action == ` + del + `, resource is core::v1::Namespace);`, map[string]string{"DELETE": "/Namespace,apps/Deployment,rbac.authorization.k8s.io/Role"}},
		{"a custom resource's group read back", `forbid (principal, action == ` + del + `, resource is com::example::widgets::v1::Widget);`, map[string]string{"DELETE": "widgets.example.com/Widget"}},
		{"any resource: every kind", `forbid (principal, action == ` + del + `, resource is apps::v1::Deployment);
forbid (principal in k8s::Group::"audit", action == ` + del + `, resource);`, map[string]string{"DELETE": "*"}},
		{"resource in: every kind", `forbid (principal, action == ` + del + `, resource in core::v1::Namespace::"prod");`, map[string]string{"DELETE": "*"}},
		{"create and update are not listed", `forbid (principal, action in [k8s::admission::Action::"create", ` + del + `], resource is core::v1::Pod);`, map[string]string{"DELETE": "/Pod"}},
		{"a permit names no operation", `permit (principal, action == ` + del + `, resource is core::v1::Pod);`, map[string]string{}},
		{"connect to every kind", `forbid (principal, action == k8s::admission::Action::"connect", resource);`, map[string]string{"CONNECT": "*"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cedar.Parse(cedar.Source{Name: "k.cedar", Text: tc.text}) // unvalidated: a CRD's kind is not in the schema
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for op, kinds := range s.OperationKinds() {
				got[op] = "*"
				if kinds != nil {
					got[op] = strings.Join(kinds, ",")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
