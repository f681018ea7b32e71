package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/continuums/attest/policies"
)

// frameworkCheck is `attest policy check --framework F --format json`: the check's results grouped by the
// framework's controls, so an auditor sees the evidence for each control.
type frameworkCheck struct {
	Framework string `json:"framework"`
	// Violations counts what `kubectl apply` would refuse, as in the plain report.
	Violations int            `json:"violations"`
	Objects    int            `json:"objects"`
	Controls   []controlCheck `json:"controls"`
}

// controlCheck is one control: the policies that serve it, how many objects they were evaluated on, and their
// results.
type controlCheck struct {
	Control     string   `json:"control"`
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies"`
	// Evaluated counts the objects on which at least one of the control's policies ran.
	Evaluated int           `json:"evaluated"`
	Denied    int           `json:"denied"`
	Warned    int           `json:"warned"`
	Exempted  int           `json:"exempted"`
	Results   []checkResult `json:"results"`
}

// byControl groups a check's results under the framework's controls (a result appears under every control its
// policy serves).
func byControl(run *checkRun, fw frameworkReport) frameworkCheck {
	out := frameworkCheck{Framework: fw.Framework, Violations: run.report.Violations, Objects: run.report.Objects, Controls: []controlCheck{}}
	for _, c := range fw.Controls {
		cc := controlCheck{Control: c.Control, Description: c.Description, Results: []checkResult{}}
		serves := map[string]bool{}
		for _, p := range c.Policies {
			cc.Policies = append(cc.Policies, p.Name)
			serves[p.Name] = true
		}
		for _, obj := range run.objects {
			for _, p := range obj.Policies {
				if serves[p.Policy] {
					cc.Evaluated++
					break
				}
			}
			for _, i := range obj.Results {
				r := run.report.Results[i]
				if !serves[r.Policy] {
					continue
				}
				switch {
				case r.Denied:
					cc.Denied++
				case r.Exemption != nil:
					cc.Exempted++
				default:
					cc.Warned++
				}
				cc.Results = append(cc.Results, r)
			}
		}
		out.Controls = append(out.Controls, cc)
	}
	return out
}

func writeFrameworkCheckText(w io.Writer, r frameworkCheck) {
	for _, c := range r.Controls {
		fmt.Fprintf(w, "%s %s", r.Framework, c.Control)
		if c.Description != "" {
			fmt.Fprintf(w, " (%s)", c.Description)
		}
		fmt.Fprintf(w, " — %s: %d objects evaluated, %d denied, %d warned, %d exempted\n", strings.Join(c.Policies, ", "), c.Evaluated, c.Denied, c.Warned, c.Exempted)
		for _, res := range c.Results {
			writeResultLine(w, "  ", res)
		}
	}
	fmt.Fprintf(w, "%d objects checked, %d violations would be denied\n", r.Objects, r.Violations)
}

// frameworkOf validates --framework before anything is evaluated.
func frameworkOf(run *checkRun, framework string) (frameworkReport, error) {
	metas := make([]policies.Metadata, 0, len(run.engine.Policies()))
	for _, p := range run.engine.Policies() {
		metas = append(metas, p.Metadata)
	}
	return byFramework(metas, run.cfg, strings.ToLower(framework))
}
