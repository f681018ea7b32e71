//go:build !lean

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
	"github.com/continuums/attest/policies/gatekeeper/export"
)

// exportParams are the parameters both sides run with (the rest are the policies' defaults).
var exportParams = map[string]map[string]any{
	"trusted-registries": {"trusted_registries": []any{"registry.example.com/trusted", "docker.io/library"}},
	"resource-limits":    {"max_cpu": "2", "max_memory": "4Gi"},
}

// TestExportedTemplatesJudgeAsTheLibrary runs the exported templates through the Gatekeeper evaluation path
// (policies/gatekeeper: the constraint framework's Rego driver and Gatekeeper's admission target) beside ATTEST's
// own policies, in one pipeline, on testdata/export/fixtures.yaml: for each object, each exported constraint
// AttestX/x reports the same violations (path, message and fix) as the library policy x.
func TestExportedTemplatesJudgeAsTheLibrary(t *testing.T) {
	ctx := context.Background()
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.Compile(ctx, lib)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := export.Objects(engine, lib, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2*len(export.Policies) {
		t.Fatalf("%d objects for %d policies", len(objs), len(export.Policies))
	}
	// The YAML written is what is loaded: a round trip through the CLI's output.
	text, err := export.YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := gatekeeper.ParseObjects(text)
	if err != nil {
		t.Fatal(err)
	}
	set, err := gatekeeper.NewSet(gatekeeper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range docs {
		if u.GetKind() == "ConstraintTemplate" {
			tmpl, err := gatekeeper.TemplateFrom(u)
			if err != nil {
				t.Fatal(err)
			}
			if err := set.AddTemplate(ctx, tmpl, u.GetName()); err != nil {
				t.Fatalf("exported template does not compile: %v", err)
			}
			continue
		}
		if p := exportParams[u.GetName()]; p != nil {
			for k, v := range p {
				if err := unstructured.SetNestedField(u.Object, v, "spec", "parameters", k); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = unstructured.SetNestedField(u.Object, "deny", "spec", "enforcementAction")
		k, err := gatekeeper.ConstraintFrom(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.AddConstraint(ctx, k, u.GetName()); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := set.Policies()
	if err != nil {
		t.Fatal(err)
	}
	both, err := engine.With(ps...)
	if err != nil {
		t.Fatal(err)
	}
	var cfgText strings.Builder
	cfgText.WriteString("policies:\n")
	for _, p := range engine.Policies() {
		mode := "off"
		if slices.Contains(export.Policies, p.Name) {
			mode = "enforce"
		}
		fmt.Fprintf(&cfgText, "  - name: %s\n    mode: %q\n", p.Name, mode)
		if params := exportParams[p.Name]; params != nil {
			cfgText.WriteString("    parameters:\n")
			for k, v := range params {
				fmt.Fprintf(&cfgText, "      %s: %v\n", k, yamlValue(v))
			}
		}
	}
	cfg, err := config.Parse([]byte(cfgText.String()), both)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, cfgText.String())
	}
	eval, err := admission.New(admission.Options{Engine: both, Config: func() *config.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "export", "fixtures.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fixtures, err := gatekeeper.ParseObjects(raw)
	if err != nil {
		t.Fatal(err)
	}
	nsLabels := map[string]map[string]string{"shop": {"environment": "production"}, "dev": {"environment": "development"}, "production": {}}
	compared := 0
	for _, obj := range fixtures {
		in := admission.ObjectInput(obj.Object, "", time.Now())
		in.NamespaceLabels = nsLabels[in.Request.Namespace]
		d := eval.Evaluate(ctx, in)
		attest := map[string][]string{}
		gk := map[string][]string{}
		for _, v := range d.Violations {
			if v.Err {
				t.Fatalf("%s %s: %s could not be evaluated: %s", in.Request.Kind, in.Request.Name, v.Policy, v.Message)
			}
			if kind, name, ok := strings.Cut(v.Policy, "/"); ok {
				if kind != export.Kind(name) {
					t.Fatalf("unexpected constraint %s", v.Policy)
				}
				gk[name] = append(gk[name], strings.TrimPrefix(v.Message, ""))
				continue
			}
			msg := v.Message
			if v.Path != "" {
				msg = v.Path + ": " + msg
			}
			if v.Fix != "" {
				msg += "; " + v.Fix
			}
			attest[v.Policy] = append(attest[v.Policy], msg)
		}
		for _, name := range export.Policies {
			a, g := attest[name], gk[name]
			sort.Strings(a)
			sort.Strings(g)
			if !slices.Equal(a, g) {
				t.Errorf("%s %s/%s, %s:\n  ATTEST:     %q\n  Gatekeeper: %q", in.Request.Kind, in.Request.Namespace, in.Request.Name, name, a, g)
			}
			compared += len(a)
		}
	}
	if compared < 12 {
		t.Fatalf("only %d violations compared: the fixtures should exercise every exported policy", compared)
	}
	t.Logf("%d objects, %d violations judged alike", len(fixtures), compared)
}

func yamlValue(v any) string {
	switch t := v.(type) {
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprintf("%q", e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return fmt.Sprintf("%q", t)
	}
	return fmt.Sprint(v)
}
