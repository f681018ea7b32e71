package attestation

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestPredicateCheckVersions(t *testing.T) {
	srcs := map[string]string{
		"v1":              "package predicate\ndeny contains msg if { input.predicate.builder.id != \"b\"; msg := sprintf(\"builder %s\", [input.predicate.builder.id]) }\n",
		"v0 with rego.v1": "package predicate\nimport rego.v1\ndeny contains msg if { input.predicate.builder.id != \"b\"; msg := sprintf(\"builder %s\", [input.predicate.builder.id]) }\n",
		"v0":              "package predicate\ndeny[msg] { input.predicate.builder.id != \"b\"; msg := sprintf(\"builder %s\", [input.predicate.builder.id]) }\n",
	}
	for name, src := range srcs {
		t.Run(name, func(t *testing.T) {
			c, err := compilePredicateCheck("p.rego", src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.eval(context.Background(), "t", map[string]any{"builder": map[string]any{"id": "x"}}, "img")
			if err != nil || !reflect.DeepEqual(got, []string{"builder x"}) {
				t.Fatalf("deny = %v, %v", got, err)
			}
			got, err = c.eval(context.Background(), "t", map[string]any{"builder": map[string]any{"id": "b"}}, "img")
			if err != nil || len(got) != 0 {
				t.Fatalf("deny = %v, %v", got, err)
			}
		})
	}
}

func TestPredicateCheckInput(t *testing.T) {
	c, err := compilePredicateCheck("p.rego", `package q
import rego.v1
deny contains input.image if input.predicate_type == "t"
deny contains {"msg": "object form"} if true
`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.eval(context.Background(), "t", nil, "reg/app@sha256:x")
	if err != nil || !reflect.DeepEqual(got, []string{"object form", "reg/app@sha256:x"}) {
		t.Fatalf("deny = %v, %v", got, err)
	}
}

func TestPredicateCheckRefusesImpureBuiltins(t *testing.T) {
	calls := map[string]string{
		"http.send":          `http.send({"method": "GET", "url": "http://127.0.0.1"})`,
		"net.lookup_ip_addr": `net.lookup_ip_addr("example.com")`,
		"opa.runtime":        `opa.runtime()`,
		"rego.parse_module":  `rego.parse_module("a", "package a")`,
		"trace":              `trace("x")`,
		"time.now_ns":        `time.now_ns()`,
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			src := "package p\nimport rego.v1\ndeny contains \"x\" if { x := " + call + "; x }\n"
			_, err := compilePredicateCheck("p.rego", src)
			if err == nil || !strings.Contains(err.Error(), name+" is not allowed in predicate checks") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// The capabilities refuse them too, without the name check.
	for name := range calls {
		for _, b := range pureCapabilities().Builtins {
			if b.Name == name {
				t.Errorf("%s is in the capabilities", name)
			}
		}
	}
}

func TestPredicateCheckNeedsDeny(t *testing.T) {
	_, err := compilePredicateCheck("p.rego", "package p\nallow := true\n")
	if err == nil || err.Error() != "package data.p defines no deny rule: nothing to check" {
		t.Fatalf("err = %v", err)
	}
	_, err = compilePredicateCheck("p.rego", "package p\ndeny contains x if {")
	if err == nil || !strings.Contains(err.Error(), "parse as Rego") {
		t.Fatalf("err = %v", err)
	}
}
