package cedar_test

import (
	"strings"
	"testing"

	"github.com/continuums/attest/policies/cedar"
)

func TestWriteKinds(t *testing.T) {
	const create, update, del = `k8s::admission::Action::"create"`, `k8s::admission::Action::"update"`, `k8s::admission::Action::"delete"`
	cases := []struct {
		name, text, want string
	}{
		{"create of ConfigMaps", `forbid (principal, action == ` + create + `, resource is core::v1::ConfigMap);`, "/ConfigMap"},
		{"update, built-in group as served", `forbid (principal, action == ` + update + `, resource is rbac::v1::RoleBinding);`, "rbac.authorization.k8s.io/RoleBinding"},
		{"any action names create and update", `forbid (principal in k8s::Group::"audit", action, resource is core::v1::Secret);`, "/Secret"},
		{"both, once", `forbid (principal, action in [` + create + `, ` + update + `], resource is core::v1::Service);
forbid (principal, action == ` + update + `, resource is core::v1::Service);`, "/Service"},
		{"a default-deny scope", `@default("deny") permit (principal, action == ` + create + `, resource is core::v1::ConfigMap);`, "/ConfigMap"},
		{"a custom resource", `forbid (principal, action == ` + create + `, resource is com::example::widgets::v1::Widget);`, "widgets.example.com/Widget"},
		{"an untyped scope adds none", `forbid (principal, action == ` + create + `, resource);`, ""},
		{"delete only adds none", `forbid (principal, action == ` + del + `, resource is core::v1::ConfigMap);`, ""},
		{"a permit adds none", `permit (principal, action == ` + create + `, resource is core::v1::ConfigMap);`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cedar.Parse(cedar.Source{Name: "w.cedar", Text: tc.text})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.WriteKinds(), ","); got != tc.want {
				t.Fatalf("WriteKinds() = %q, want %q", got, tc.want)
			}
		})
	}
}
