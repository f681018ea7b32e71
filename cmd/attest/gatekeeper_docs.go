package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/continuums/attest/manifest"
)

// gatekeeperGroups are the groups of the Gatekeeper documents `attest policy check` reads as policy, not as
// objects to check.
var gatekeeperGroups = []string{templatesGroup, constraintsGroup, expansionGroup}

// Gatekeeper's groups, as policies/gatekeeper names them (TestGatekeeperGroups): spelled out here so that the lean
// build, which leaves Gatekeeper's library out, still recognises the documents and hands them to attest-full.
const (
	templatesGroup   = "templates.gatekeeper.sh"
	constraintsGroup = "constraints.gatekeeper.sh"
	expansionGroup   = "expansion.gatekeeper.sh"
)

// isGatekeeperDocument reports whether a manifest object is a ConstraintTemplate, a Constraint or an
// ExpansionTemplate.
func isGatekeeperDocument(obj map[string]any) bool {
	apiVersion, _ := obj["apiVersion"].(string)
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return false
	}
	for _, g := range gatekeeperGroups {
		if group == g {
			return true
		}
	}
	return false
}

// gatekeeperInputs are the Gatekeeper documents found among check's inputs, each with where it was written.
type gatekeeperInputs struct {
	templates, constraints, expansions []manifest.Object
}

func (g *gatekeeperInputs) empty() bool {
	return len(g.templates)+len(g.constraints)+len(g.expansions) == 0
}

// readGatekeeperInputs finds the Gatekeeper documents among the inputs. Only documents that mention
// gatekeeper.sh are parsed; documents that cannot be read are left to the check, which reports them.
func readGatekeeperInputs(sources []manifest.Source) gatekeeperInputs {
	var g gatekeeperInputs
	for _, src := range sources {
		for doc, err := range manifest.Documents(src) {
			if err != nil || !doc.Mentions([]byte("gatekeeper.sh")) {
				continue
			}
			objs, err := doc.Objects()
			if err != nil {
				continue
			}
			for _, obj := range objs {
				apiVersion, _ := obj.Object["apiVersion"].(string)
				switch group, _, _ := strings.Cut(apiVersion, "/"); group {
				case templatesGroup:
					g.templates = append(g.templates, obj)
				case constraintsGroup:
					g.constraints = append(g.constraints, obj)
				case expansionGroup:
					g.expansions = append(g.expansions, obj)
				}
			}
		}
	}
	return g
}

// splitValidatePaths sets YAML files apart from the paths validate compiles as Rego; a directory is both (its
// .rego files, and its YAML files that hold Gatekeeper documents).
func splitValidatePaths(paths []string) (rego, yamlFiles []string, err error) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !info.IsDir() {
			if isYAMLFile(p) {
				yamlFiles = append(yamlFiles, p)
			} else {
				rego = append(rego, p)
			}
			continue
		}
		hasRego := false
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
			case isYAMLFile(path):
				yamlFiles = append(yamlFiles, path)
			case filepath.Ext(path) == ".rego":
				hasRego = true
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if hasRego {
			rego = append(rego, p)
		}
	}
	return rego, yamlFiles, nil
}

func isYAMLFile(p string) bool {
	ext := filepath.Ext(p)
	return ext == ".yaml" || ext == ".yml"
}
