//go:build !lean

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/policies/gatekeeper"
)

// gatekeeperDoc is one Gatekeeper document of a YAML file, with the line it starts on.
type gatekeeperDoc struct {
	file string
	line int
	text []byte
	obj  *unstructured.Unstructured
}

func (d gatekeeperDoc) at() string { return fmt.Sprintf("%s:%d", d.file, d.line) }

// gatekeeperValidation validates the Gatekeeper documents of YAML files: the names of the templates and
// constraints that compile, every problem at its line, and whether there were any documents.
func gatekeeperValidation(ctx context.Context, files []string) (names []string, problems []problem, found bool, err error) {
	docs, err := readGatekeeperFiles(files)
	if err != nil {
		return nil, nil, false, err
	}
	names, problems = validateGatekeeper(ctx, docs)
	return names, problems, len(docs) > 0, nil
}

// readGatekeeperFiles reads the Gatekeeper documents (ConstraintTemplates, Constraints, ExpansionTemplates) of
// YAML files; files that mention no gatekeeper.sh group are skipped, and so are their other documents.
func readGatekeeperFiles(files []string) ([]gatekeeperDoc, error) {
	var out []gatekeeperDoc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(data, []byte("gatekeeper.sh")) {
			continue
		}
		for _, d := range splitYAML(data) {
			obj := &unstructured.Unstructured{Object: map[string]any{}}
			if err := gatekeeper.UnmarshalYAML(d.text, obj); err != nil {
				if bytes.Contains(d.text, []byte("gatekeeper.sh")) {
					return nil, fmt.Errorf("%s:%d: %w", f, d.line, err)
				}
				continue
			}
			if !isGatekeeperDocument(obj.Object) {
				continue
			}
			d.file, d.obj = f, obj
			out = append(out, d)
		}
	}
	return out, nil
}

// splitYAML cuts a YAML stream at its "---" lines; each document keeps the line it starts on (its first line
// that is neither blank nor a comment, where an error about the whole document points).
func splitYAML(data []byte) []gatekeeperDoc {
	var out []gatekeeperDoc
	lines := bytes.SplitAfter(data, []byte("\n"))
	start := 0
	flush := func(end int) {
		text := bytes.Join(lines[start:end], nil)
		first := 0
		for i := start; i < end; i++ {
			t := strings.TrimSpace(string(lines[i]))
			if t != "" && !strings.HasPrefix(t, "#") {
				first = i + 1
				break
			}
		}
		if first > 0 {
			// Blank lines in front keep the document's own line numbers those of the file.
			out = append(out, gatekeeperDoc{line: first, text: append(bytes.Repeat([]byte("\n"), start), text...)})
		}
	}
	for i, l := range lines {
		if t := strings.TrimRight(string(l), "\r\n"); t == "---" || strings.HasPrefix(t, "--- ") {
			flush(i)
			start = i + 1
		}
	}
	flush(len(lines))
	return out
}

// validateGatekeeper compiles the templates (Rego and CEL, with the parameters' schema), then checks the
// ExpansionTemplates and the Constraints against them: the names of what is valid (templates by kind,
// constraints as <Kind>/<name>), and a problem at its file and line for what is not.
func validateGatekeeper(ctx context.Context, docs []gatekeeperDoc) ([]string, []problem) {
	names := []string{}
	problems := []problem{}
	if len(docs) == 0 {
		return names, problems
	}
	set, err := gatekeeper.NewSet(gatekeeper.Options{})
	if err != nil {
		return names, []problem{{Message: err.Error()}}
	}
	fail := func(d gatekeeperDoc, line int, err error) {
		if line == 0 {
			line = d.line
		}
		problems = append(problems, problem{File: d.file, Line: line, Message: strings.TrimPrefix(err.Error(), d.at()+": ")})
	}
	byGroup := func(group string) []gatekeeperDoc {
		var out []gatekeeperDoc
		for _, d := range docs {
			if d.obj.GroupVersionKind().Group == group {
				out = append(out, d)
			}
		}
		return out
	}
	for _, d := range byGroup(gatekeeper.TemplateGroup) {
		t, err := gatekeeper.TemplateFrom(d.obj)
		if err != nil {
			fail(d, 0, err)
			continue
		}
		if err := set.AddTemplate(ctx, t, d.at()); err != nil {
			fail(d, gatekeeper.ErrorLine(d.text, err), err)
			continue
		}
		names = append(names, "ConstraintTemplate/"+t.Name())
	}
	for _, d := range byGroup(gatekeeper.ExpansionGroup) {
		e, err := gatekeeper.ExpansionTemplateFrom(d.obj)
		if err == nil {
			err = set.AddExpansionTemplate(e, d.at())
		}
		if err != nil {
			fail(d, 0, err)
			continue
		}
		names = append(names, "ExpansionTemplate/"+e.Name())
	}
	for _, d := range byGroup(gatekeeper.ConstraintGroup) {
		k, err := gatekeeper.ConstraintFrom(d.obj)
		if err == nil {
			err = set.AddConstraint(ctx, k, d.at())
		}
		if err != nil {
			fail(d, 0, err)
			continue
		}
		names = append(names, k.Policy())
	}
	return names, problems
}
