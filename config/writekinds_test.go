package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/config"
)

// TestWriteKinds: the kinds beyond the workload kinds whose writes enabled Cedar sets judge, once each; a set that
// is off adds none.
func TestWriteKinds(t *testing.T) {
	dir := t.TempDir()
	writeCedarFile(t, filepath.Join(dir, "cedar", "configs.cedar"), `forbid (principal in k8s::Group::"developers", action == k8s::admission::Action::"create", resource is core::v1::ConfigMap);
forbid (principal in k8s::Group::"developers", action == k8s::admission::Action::"update", resource is rbac::v1::RoleBinding);`)
	writeCedarFile(t, filepath.Join(dir, "cedar", "more.cedar"), `forbid (principal, action, resource is core::v1::ConfigMap) when { principal.name == "mallory" };`)
	kinds := func(extra string) string {
		writeCedarFile(t, filepath.Join(dir, "policies.yaml"), "cedar:\n  directories: [cedar]\n"+extra)
		cfg, err := config.LoadFiles([]string{filepath.Join(dir, "policies.yaml")}, newEngine(t), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(cfg.WriteKinds(nil), ",")
	}
	if got, want := kinds(""), "/ConfigMap,rbac.authorization.k8s.io/RoleBinding"; got != want {
		t.Fatalf("write kinds %q, want %q", got, want)
	}
	if got, want := kinds("policies:\n  - name: configs\n    mode: \"off\"\n"), "/ConfigMap"; got != want {
		t.Fatalf("with configs off: write kinds %q, want %q", got, want)
	}
}
