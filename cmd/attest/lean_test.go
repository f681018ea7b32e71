//go:build !lean

package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/continuums/attest/policies/gatekeeper"
)

// TestLeanBuildLeavesOutTheServerMachinery: the lean build (bin/attest) must not link what only the full build's
// commands need. Package initialisation of these is most of a full build's start-up (client-go schemes,
// controller-runtime and apiserver metrics, cosign and its Rekor client, Gatekeeper's schemas), and their code
// most of its size. Prometheus' client (the CLI serves no metrics) and santhosh-tekuri/jsonschema, which compiles
// five drafts' metaschemas at initialisation, cost the CLI's start-up 3 and 12 ms.
func TestLeanBuildLeavesOutTheServerMachinery(t *testing.T) {
	// Standard output only: stderr may say "go: downloading <module>", which is no package.
	out, err := exec.Command("go", "list", "-tags", "lean", "-deps", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/client-go/",
		"sigs.k8s.io/controller-runtime",
		"k8s.io/apiserver/",
		"github.com/sigstore/cosign/",
		"github.com/open-policy-agent/frameworks/",
		"github.com/open-policy-agent/gatekeeper/",
		"github.com/google/go-containerregistry/pkg/v1/remote",
		"github.com/continuums/attest/webhook",
		"github.com/continuums/attest/certs",
		"github.com/continuums/attest/policies/gatekeeper",
		"github.com/continuums/attest/tracing",
		"go.opentelemetry.io/",
		"github.com/prometheus/",
		"github.com/santhosh-tekuri/jsonschema/",
	}
	// export writes the library as Gatekeeper YAML and imports none of the above (the other entries check it).
	// jsonschema's kind package renders parameter messages and has no initialisation of note.
	allowed := map[string]bool{"github.com/continuums/attest/policies/gatekeeper/export": true,
		"github.com/santhosh-tekuri/jsonschema/v6/kind": true}
	var linked []string
	for _, pkg := range strings.Fields(string(out)) {
		if allowed[pkg] {
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				linked = append(linked, pkg)
				break
			}
		}
	}
	if len(linked) > 0 {
		t.Errorf("the lean build links %d packages only the full build may (move their use behind `//go:build !lean`):\n%s",
			len(linked), strings.Join(linked, "\n"))
	}
}

// TestGatekeeperGroups: the groups the lean build recognises are policies/gatekeeper's.
func TestGatekeeperGroups(t *testing.T) {
	for _, g := range [][2]string{
		{templatesGroup, gatekeeper.TemplateGroup},
		{constraintsGroup, gatekeeper.ConstraintGroup},
		{expansionGroup, gatekeeper.ExpansionGroup},
	} {
		if g[0] != g[1] {
			t.Errorf("group %q, policies/gatekeeper says %q", g[0], g[1])
		}
	}
}
