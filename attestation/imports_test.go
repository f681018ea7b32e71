package attestation_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports pins the dependency rules of DESIGN.md section 3 and of the cosign library: attestation sits below
// admission and beside policies (it gets neither), and it uses cosign's library packages only — never
// cmd/cosign/..., which drags in dozens of cloud-credential modules and reads the environment.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/sigstore/cosign/v3/cmd/",
		"github.com/continuums/attest/policies",
		"github.com/continuums/attest/admission",
		"github.com/continuums/attest/config",
		"github.com/continuums/attest/webhook",
		"github.com/continuums/attest/cmd",
	}
	pkgs := strings.Fields(string(out))
	if !strings.Contains(string(out), "github.com/sigstore/cosign/v3/pkg/cosign\n") {
		t.Fatalf("go list did not list cosign's library among %d packages", len(pkgs))
	}
	for _, pkg := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("attestation depends on %s", pkg)
			}
		}
	}
}
