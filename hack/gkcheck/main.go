// Command gkcheck runs Gatekeeper Suite files (test.gatekeeper.sh/v1alpha1) through `attest policy check`
// instead of `attest policy verify`: each case becomes one check run of the test's template, constraint (and
// expansion) with the case's object, its inventory passed with --inventory and the constraint's policy selected
// with --policy; the JSON results' messages are held to the case's assertions exactly as gator holds its
// violations. It prints one line per failing case and a count, and exits 1 when a case fails.
//
//	go run ./hack/gkcheck -attest /tmp/attest /tmp/gatekeeper-library/library/...
//
// Cases whose object is an AdmissionReview run through check too (it judges the request the review carries, as
// gator does) and are counted apart in the summary.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/continuums/attest/policies/gatekeeper"
	"github.com/continuums/attest/policies/gatekeeper/verify"
)

type tally struct {
	mu                                          sync.Mutex
	suites, tests, cases, passed, reviews, skip int
	failures                                    []string
}

func (t *tally) fail(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = append(t.failures, fmt.Sprintf(format, args...))
}

func main() {
	attest := flag.String("attest", "attest", "the attest binary")
	jobs := flag.Int("j", 2, "check runs at a time")
	verbose := flag.Bool("verbose", false, "print every case")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: gkcheck -attest BIN DIR/... | SUITE.yaml ...")
		os.Exit(2)
	}
	var suites []*verify.Suite
	for _, arg := range flag.Args() {
		name, recursive := strings.CutSuffix(arg, "...")
		if !recursive {
			name = arg
		}
		abs, err := filepath.Abs(name)
		if err != nil {
			fatal(err)
		}
		s, err := verify.ReadSuites(os.DirFS("/"), strings.TrimPrefix(abs, "/"), abs, recursive)
		if err != nil {
			fatal(err)
		}
		suites = append(suites, s...)
	}
	var t tally
	sem := make(chan struct{}, *jobs)
	var wg sync.WaitGroup
	for _, s := range suites {
		if s.Skip {
			continue
		}
		t.suites++
		dir := filepath.Dir("/" + s.Path)
		for _, test := range s.Tests {
			if test.Skip {
				continue
			}
			t.tests++
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				runTest(*attest, dir, s.Path, test, &t, *verbose)
			}()
		}
	}
	wg.Wait()
	for _, f := range t.failures {
		fmt.Println(f)
	}
	fmt.Printf("%d suites, %d tests, %d cases through attest policy check (%d of them AdmissionReviews): %d passed, %d failed, %d skipped\n",
		t.suites, t.tests, t.cases, t.reviews, t.passed, len(t.failures), t.skip)
	if len(t.failures) > 0 {
		os.Exit(1)
	}
}

// runTest runs the cases of one test, one check run each (an invalid constraint: one run that must fail on it).
func runTest(attest, dir, suite string, test verify.Test, t *tally, verbose bool) {
	at := func(p string) string { return filepath.Join(dir, p) }
	name := fmt.Sprintf("%s %s", suite, test.Name)
	base := []string{"policy", "check", "--offline", "--format", "json", "-f", at(test.Template)}
	if test.Expansion != "" {
		base = append(base, "-f", at(test.Expansion))
	}
	data, err := os.ReadFile(at(test.Constraint))
	if err != nil {
		t.fail("FAIL %s: %v", name, err)
		return
	}
	k, err := gatekeeper.ParseConstraint(data)
	if err != nil {
		t.fail("FAIL %s: %v", name, err)
		return
	}
	base = append(base, "-f", at(test.Constraint), "--policy", k.Policy())
	if test.Invalid {
		t.mu.Lock()
		t.cases++
		t.mu.Unlock()
		// An invalid constraint stops the check with exit 2 naming it, whatever the object.
		_, stderr, code := run(attest, base...)
		if code != 2 || !strings.Contains(stderr, "constraint "+k.Policy()) {
			t.fail("FAIL %s: invalid constraint: exit %d, stderr %q", name, code, stderr)
			return
		}
		t.mu.Lock()
		t.passed++
		t.mu.Unlock()
		return
	}
	for _, c := range test.Cases {
		if c.Skip {
			t.mu.Lock()
			t.skip++
			t.mu.Unlock()
			continue
		}
		obj, err := os.ReadFile(at(c.Object))
		if err != nil {
			t.fail("FAIL %s/%s: %v", name, c.Name, err)
			continue
		}
		t.mu.Lock()
		t.cases++
		if isReview(obj) {
			t.reviews++
		}
		t.mu.Unlock()
		args := append(append([]string(nil), base...), "-f", at(c.Object))
		for _, inv := range c.Inventory {
			args = append(args, "--inventory", at(inv))
		}
		msgs, err := check(attest, args, k.Policy())
		if err == nil {
			for _, a := range c.Assertions {
				if err = a.Check(msgs); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.fail("FAIL %s/%s: %v\n\tattest %s", name, c.Name, err, strings.Join(args, " "))
			continue
		}
		if verbose {
			fmt.Printf("ok   %s/%s\n", name, c.Name)
		}
		t.mu.Lock()
		t.passed++
		t.mu.Unlock()
	}
}

// check runs one check and returns the messages of the constraint's results as the template wrote them.
func check(attest string, args []string, policy string) ([]string, error) {
	stdout, stderr, code := run(attest, args...)
	if code != 0 && code != 1 {
		return nil, fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr))
	}
	var report struct {
		Results []struct {
			Policy, Message string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		return nil, fmt.Errorf("read the report: %w", err)
	}
	msgs := []string{}
	prefix := "[" + policy + "]: "
	for _, r := range report.Results {
		if r.Policy != policy {
			return nil, fmt.Errorf("a result of policy %s: --policy selected %s", r.Policy, policy)
		}
		m, ok := strings.CutPrefix(r.Message, prefix)
		if !ok {
			return nil, fmt.Errorf("message %q does not start with %q", r.Message, prefix)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func run(bin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	}
	return out.String(), err.Error(), -1
}

// isReview tells whether an object file holds an AdmissionReview.
func isReview(data []byte) bool {
	objs, err := gatekeeper.ParseObjects(data)
	return err == nil && len(objs) == 1 && objs[0].GetKind() == "AdmissionReview"
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
