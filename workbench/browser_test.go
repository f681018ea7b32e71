package workbench_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium to drive: $ATTEST_CHROMIUM, else Debian's chromium on PATH. Without one the browser
// test skips on a developer's machine and fails in CI ($CI set), where `make test` installs it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ATTEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI must run the browser test: `make chromium` installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed: the workbench browser test is skipped (`make chromium` installs it; CI fails without it)")
	return ""
}

// TestWorkbenchInBrowser clicks through the workbench in headless Chromium: the decision log the webhook wrote,
// colour-coded newest first; a recorded denial re-evaluated unchanged with its trace; the policy edited so that
// it denies what was allowed (the diff names the new message); a syntax error shown at its line; and a saved
// snapshot test. With ATTEST_SCREENSHOTS=DIR it writes the README's screenshots there.
func TestWorkbenchInBrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	srcs := sources(t, dir)
	log := recordedLog(t, srcs,
		deployment("one", 1, "gcr.io/company/web:1", false),
		deployment("two", 2, "gcr.io/company/web:1", false),
		deployment("priv", 3, "gcr.io/company/web:1", true),
		deployment("elsewhere", 2, "quay.io/someone/web:1", false),
	)
	wb := newWorkbench(t, dir, log)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- wb.Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	url := "http://" + l.Addr().String() + "/"

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1440, 1000), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	first, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	// The first run starts the browser and must not have a deadline; the rest of the test has one.
	if err := chromedp.Do(first, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	bctx, tcancel := context.WithTimeout(first, 90*time.Second)
	defer tcancel()
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	setValue := func(sel, v string) chromedp.Action[chromedp.Void] { return chromedp.SetValue(chromedp.CSS(sel), v) }
	wait := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	shots := os.Getenv("ATTEST_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The list: newest first, coloured by decision.
	do(wait(`body[data-ready="true"]`))
	classes, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#records li")).map(li => li.className)`))
	if err != nil {
		t.Fatal(err)
	}
	if first := text(`#records li[data-id="0"] .what`); strings.Join(classes, " ") != "denied denied allowed denied" || first != "CREATE Deployment shop/elsewhere" {
		t.Fatalf("records %q, first %q:\n%s", classes, first, text("#records"))
	}

	// A recorded denial, re-evaluated as it is: the same verdict, min-replicas' finding, the trace.
	do(click(`#records li[data-id="3"]`), setValue(`#explain`, "full"), click(`#evaluate`), wait(`#decision`))
	decision, findings, diffSummary, trace := text(`#decision`), text(`#findings`), text(`#diff-summary`), text(`#trace`)
	if decision != "denied" || !strings.Contains(findings, "[min-replicas] spec.replicas: 1 replica(s) is too few") ||
		!strings.HasPrefix(diffSummary, "unchanged") || !strings.Contains(trace, "Enter data.company.min_replicas.violation") {
		t.Fatalf("re-evaluated record: decision %q findings %q diff %q trace %d bytes", decision, findings, diffSummary, len(trace))
	}
	shot("workbench-evaluate.png")

	// The policy edited: at least four replicas. The allowed two-replica Deployment is now denied.
	do(click(`#records li[data-id="2"]`))
	source, err := chromedp.Run(bctx, chromedp.Value(chromedp.CSS(`#source`)))
	if err != nil {
		t.Fatal(err)
	}
	if source != minReplicas {
		t.Fatalf("the page shows another source:\n%s", source)
	}
	do(setValue(`#source`, strings.Replace(minReplicas, "r < 2", "r < 4", 1)), click(`#evaluate`), wait(`#diff li.added`))
	decision, diffSummary, added := text(`#decision`), text(`#diff-summary`), text(`#diff li.added`)
	if decision != "denied" || !strings.HasPrefix(diffSummary, "changed: allowed → denied") || added != "+ [min-replicas] spec.replicas: 2 replica(s) is too few; set spec.replicas to 2 or more" {
		t.Fatalf("edited policy: decision %q diff %q added %q", decision, diffSummary, added)
	}
	shot("workbench-diff.png")

	// A syntax error: shown at its line, and clicking it selects that line.
	do(setValue(`#source`, strings.Replace(minReplicas, "r < 2", "r < < 2", 1)), click(`#evaluate`), wait(`#compile-errors li`))
	compileErr := text(`#compile-errors li`)
	do(click(`#compile-errors li`))
	selected, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => { const t = document.getElementById("source"); return t.value.substring(t.selectionStart, t.selectionEnd); })()`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(compileErr, "min-replicas.rego:16:6: rego_parse_error: unexpected lt token") || strings.TrimSpace(selected) != "r < < 2" {
		t.Fatalf("compile error %q, selected line %q", compileErr, selected)
	}
	shot("workbench-compile-error.png")

	// Save as test, with the policy as written: a file that `attest policy test` passes.
	do(setValue(`#source`, minReplicas), setValue(`#test-name`, "two replicas"), click(`#save`), wait(`#saved:not(:empty)`))
	file := filepath.Join(dir, "min-replicas_two_replicas_test.rego")
	if saved := text(`#saved`); saved != "wrote test_two_replicas to "+file {
		t.Fatalf("saved: %q", saved)
	}
	if failed := runTests(t, srcs[len(srcs)-1:], readTests(t, dir)); failed != 0 {
		t.Fatal("the saved test fails on the policy it was saved from")
	}
}
