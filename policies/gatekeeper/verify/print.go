package verify

import (
	"fmt"
	"io"
	"strings"
)

// Print writes results as gator verify does (the go test format): failures with their reasons, "ok" or
// "FAIL" per suite with its time, then PASS or FAIL. verbose adds a line per test and case, and print() output.
// It reports whether anything failed.
func Print(w io.Writer, results []SuiteResult, verbose bool) (failed bool, err error) {
	p := &printer{w: w, verbose: verbose}
	for i := range results {
		p.suite(&results[i])
		failed = failed || results[i].Failed()
	}
	if failed {
		p.printf("FAIL\n")
	} else {
		p.printf("PASS\n")
	}
	return failed, p.err
}

type printer struct {
	w       io.Writer
	verbose bool
	err     error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) suite(r *SuiteResult) {
	for i := range r.Tests {
		p.test(&r.Tests[i])
	}
	if r.Failed() {
		p.printf("FAIL\t%s\t%v\n", r.Name, r.Runtime)
	} else {
		p.printf("ok\t%s\t%v\n", r.Name, r.Runtime)
	}
}

func (p *printer) test(r *TestResult) {
	if p.verbose {
		if r.Skipped {
			p.printf("=== SKIP  %s\n", r.Name)
			return
		}
		p.printf("=== RUN   %s\n", r.Name)
	}
	for i := range r.Cases {
		p.testCase(&r.Cases[i])
	}
	switch {
	case r.Failed():
		p.printf("--- FAIL: %s\t(%v)\n", r.Name, r.Runtime)
		if r.Err != nil {
			p.printf("  %v\n", r.Err)
		}
	case p.verbose:
		p.printf("--- PASS: %s\t(%v)\n", r.Name, r.Runtime)
	}
}

func (p *printer) testCase(r *CaseResult) {
	if p.verbose {
		if r.Skipped {
			p.printf("    === SKIP  %s\n", r.Name)
			return
		}
		p.printf("    === RUN   %s\n", r.Name)
		if r.Print != "" {
			p.printf("        === PRINT ===\n")
			for _, line := range strings.Split(strings.TrimSuffix(r.Print, "\n"), "\n") {
				p.printf("        %s\n", line)
			}
		}
	}
	switch {
	case r.Err != nil:
		p.printf("    --- FAIL: %s\t(%v)\n        %v\n", r.Name, r.Runtime, r.Err)
	case p.verbose:
		p.printf("    --- PASS: %s\t(%v)\n", r.Name, r.Runtime)
	}
}
