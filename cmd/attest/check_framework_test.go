package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckFramework(t *testing.T) {
	out, errOut, code := attest(t, "", append(formatArgs, "--framework", "soc2", "--format", "json")...)
	if code != 1 {
		t.Fatalf("exit %d (the denials still fail the check): %s", code, errOut)
	}
	var r frameworkCheck
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	controls := map[string]controlCheck{}
	for _, c := range r.Controls {
		controls[c.Control] = c
	}
	cases := []struct {
		control                             string
		evaluated, denied, warned, exempted int
	}{
		{"CC6.1", 9, 6, 0, 3}, // no-privileged
		{"CC7.1", 9, 1, 0, 0}, // trusted-registries (require-attestation is off)
		{"A1.1", 0, 0, 0, 0},  // resource-limits and production-replicas are off: no evidence
	}
	for _, tc := range cases {
		c, ok := controls[tc.control]
		if !ok || c.Evaluated != tc.evaluated || c.Denied != tc.denied || c.Warned != tc.warned || c.Exempted != tc.exempted || len(c.Results) != tc.denied+tc.warned+tc.exempted {
			t.Errorf("%s: %+v", tc.control, c)
		}
	}
	if r.Framework != "soc2" || r.Objects != 9 || r.Violations != 8 {
		t.Errorf("framework %s, objects %d, violations %d", r.Framework, r.Objects, r.Violations)
	}
	text, _, _ := attest(t, "", append(mixedArgs, "--framework", "gdpr")...)
	golden(t, "check-framework.golden.text", text)
	for _, tc := range []struct{ args, stderr string }{
		{"--framework soc2 --format sarif", "--framework reports as text or json, not sarif"},
		{"--framework pci", `no policy maps framework "pci"`},
	} {
		_, errOut, code := attest(t, "", append(mixedArgs, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: exit %d, %q", tc.args, code, errOut)
		}
	}
}
