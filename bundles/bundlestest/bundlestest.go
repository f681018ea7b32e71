// Package bundlestest holds the policy bundle that the tests of several packages build and push: a Rego policy
// that denies workloads without a team label, and its Rego tests.
package bundlestest

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/bundles"
)

// TeamLabelMessage is the policy's message, which tests replace to tell two versions of the bundle apart.
const TeamLabelMessage = "workloads carry a team label"

// TeamLabelPolicy denies workloads without a team label (policy acme-team-label, enforce, under root acme).
const TeamLabelPolicy = `# METADATA
# title: Team label
# custom:
#   name: acme-team-label
#   severity: high
#   mode: enforce
package acme.team_label

import rego.v1

violation contains {"message": "` + TeamLabelMessage + `", "path": "metadata.labels.team"} if {
	not input.resource.metadata.labels.team
}
`

// TeamLabelTest is TeamLabelPolicy's Rego tests: both pass.
const TeamLabelTest = `package acme.team_label_test

import rego.v1

import data.acme.team_label

test_denies_without_label if {
	count(team_label.violation) == 1 with input as {"resource": {"metadata": {"labels": {}}}}
}

test_allows_with_label if {
	count(team_label.violation) == 0 with input as {"resource": {"metadata": {"labels": {"team": "a"}}}}
}
`

//go:embed all:mixed
var mixed embed.FS

// Mixed is a bundle of other languages, by path (with its .manifest): the Cedar set no-host-network (cedar/no-host-network.cedar) and a
// Gatekeeper template with its constraint AcmeRequiredLabels/pods-have-owner (gatekeeper/required-labels.yaml).
func Mixed() map[string]string {
	out := map[string]string{}
	err := fs.WalkDir(mixed, "mixed", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := mixed.ReadFile(p)
		out[strings.TrimPrefix(p, "mixed/")] = string(data)
		return err
	})
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	return out
}

// PushSignedDir pushes the bundle in dir to reg as repoTag without checking it (bundles.Push, as another tool
// could) and signs its digest with key.
func PushSignedDir(t testing.TB, reg *attestationtest.Registry, key *attestationtest.Signer, dir, repoTag string) name.Digest {
	t.Helper()
	d, err := bundles.Push(context.Background(), ArchiveDir(t, dir), reg.Ref(t, repoTag), nil)
	if err != nil {
		t.Fatal(err)
	}
	key.Sign(t, d)
	return d
}

// ArchiveDir reads the bundle directory dir (default limits) and returns its archive.
func ArchiveDir(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := bundles.ReadDir(dir, bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := b.Archive()
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

// WriteDir writes files (slash path → text) into a new temporary directory of t, as a bundle directory.
func WriteDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, text := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
