//go:build cgo

package main

import (
	"os"
	"testing"

	xsdvalidate "github.com/terminalstatic/go-xsd-validate"
)

// TestCheckJUnitValidatesAgainstXSD validates `--format junit` with libxml2 against the two schemas CI systems
// read JUnit XML by: Jenkins' junit-10.xsd and the Apache Ant JUnit schema (the stricter one).
func TestCheckJUnitValidatesAgainstXSD(t *testing.T) {
	if err := xsdvalidate.Init(); err != nil {
		t.Fatal(err)
	}
	defer xsdvalidate.Cleanup()
	docs := map[string]string{}
	for name, args := range map[string][]string{"mixed": mixedArgs, "exemptions": formatArgs} {
		out, _, code := attest(t, "", append(args, "--format", "junit")...)
		if code != 1 {
			t.Fatalf("%s: exit %d", name, code)
		}
		docs[name] = out
	}
	for _, schema := range []string{"junit-10.xsd", "ant-junit.xsd"} {
		xsd, err := os.ReadFile("testdata/schemas/" + schema)
		if err != nil {
			t.Fatal(err)
		}
		h, err := xsdvalidate.NewXsdHandlerMem(xsd, xsdvalidate.ParsErrVerbose)
		if err != nil {
			t.Fatalf("%s: %v", schema, err)
		}
		for name, doc := range docs {
			t.Run(schema+"/"+name, func(t *testing.T) {
				if err := h.ValidateMem([]byte(doc), xsdvalidate.ValidErrDefault); err != nil {
					t.Fatalf("JUnit output does not validate against %s: %v", schema, err)
				}
			})
		}
		t.Run(schema+"/the validator rejects a testcase without name", func(t *testing.T) {
			bad := []byte(`<?xml version="1.0"?><testsuites><testsuite name="x" package="x" id="0" tests="1" failures="0" errors="0" time="0" timestamp="2026-11-25T12:00:00" hostname="h"><properties/><testcase classname="c" time="0"/><system-out/><system-err/></testsuite></testsuites>`)
			if err := h.ValidateMem(bad, xsdvalidate.ValidErrDefault); err == nil {
				t.Fatal("accepted")
			}
		})
		h.Free()
	}
}
