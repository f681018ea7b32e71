package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/webhook"
)

var update = flag.Bool("update", false, "rewrite golden files")

// attest runs the CLI in-process and returns stdout, stderr and the exit code.
func attest(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// cliCase is one run of the CLI: its arguments, the exit code, what stdout must contain and stderr must contain.
type cliCase struct {
	name   string
	args   []string
	code   int
	stdout []string
	stderr string
}

// runCLICases runs each case as a subtest, its arguments after prefix.
func runCLICases(t *testing.T, prefix []string, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := attest(t, "", append(slices.Clone(prefix), tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to contain %q\nstdout:\n%s", code, tc.code, errOut, tc.stderr, out)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestCheckGolden(t *testing.T) {
	args := []string{"policy", "check", "-f", "testdata/mixed", "-f", "testdata/json", "--config", "testdata/policies.yaml", "--now", "2026-11-25T12:00:00Z"}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := attest(t, "", append(args, "--format", format)...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1 (something is denied); stderr: %s", code, errOut)
			}
			golden(t, "check.golden."+format, out)
		})
	}
}

func TestCheckJSONContract(t *testing.T) {
	out, _, code := attest(t, "", "policy", "check", "-f", "testdata/mixed", "--config", "testdata/policies.yaml", "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var report struct {
		Violations int              `json:"violations"`
		Results    []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, r := range report.Results {
		for _, key := range []string{"file", "kind", "namespace", "name", "policy", "mode", "severity", "path", "message", "denied"} {
			if _, ok := r[key]; !ok {
				t.Errorf("result lacks %q: %v", key, r)
			}
		}
		if r["denied"] == true {
			denied++
		}
	}
	if report.Violations != denied || denied == 0 {
		t.Fatalf("violations = %d, denied results = %d", report.Violations, denied)
	}
}

func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: gcr.io/company/a:1}\n")
	broken := write("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
	malformed := write("malformed.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: nope\n")
	cases := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
	}{
		{"compliant file", "", []string{"-f", good}, 0, ""},
		{"stdin", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: gcr.io/company/a:1, securityContext: {privileged: true}}\n", []string{"-f", "-"}, 1, ""},
		{"audit mode never denies", "", []string{"-f", "testdata/mixed", "--mode", "audit"}, 0, ""},
		{"unparseable file names file and line", "", []string{"-f", broken}, 2, broken + ":5: yaml: line 8: did not find expected ',' or ']'"},
		{"unreadable object names file and line", "", []string{"-f", malformed}, 2, malformed + ":1: Pod p: cannot read the Pod: spec.containers: expected a list of containers, got a string"},
		{"missing file", "", []string{"-f", filepath.Join(dir, "nope.yaml")}, 2, "no such file or directory"},
		{"no input", "", nil, 2, "no input"},
		{"bad format", "", []string{"-f", good, "--format", "xml"}, 2, "--format must be text, json, sarif or junit"},
		{"bad now", "", []string{"-f", good, "--now", "yesterday"}, 2, "--now: parsing time"},
		{"bad config", "", []string{"-f", good, "--config", write("bad-config.yaml", "policies:\n- name: no-such-policy\n")}, 2, `policies[0].name: unknown policy "no-such-policy"`},
		{"unknown flag", "", []string{"--frobnicate"}, 2, "unknown flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"policy", "check", "--config", "testdata/policies.yaml"}, tc.args...)
			if tc.name == "bad config" {
				args = append([]string{"policy", "check"}, tc.args...)
			}
			_, errOut, code := attest(t, tc.stdin, args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, tc.code, errOut, tc.stderr)
			}
		})
	}
}

// TestCheckAndWebhookAgree sends every object that `attest policy check` reads to /validate over HTTPS and
// compares the denial messages line for line.
func TestCheckAndWebhookAgree(t *testing.T) {
	ctx := context.Background()
	engine, err := compileLibrary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("testdata/policies.yaml", engine)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12

	out, _, _ := attest(t, "", "policy", "check", "-f", "testdata/mixed", "-f", "testdata/json", "--config", "testdata/policies.yaml", "--format", "json")
	var report checkReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	cliDenials := map[string][]string{}
	for _, r := range report.Results {
		if r.Denied {
			cliDenials[r.Kind+"/"+r.Name] = append(cliDenials[r.Kind+"/"+r.Name], r.Message)
		}
	}
	sources, err := manifest.Collect([]string{"testdata/mixed", "testdata/json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, src := range sources {
		objs, err := manifest.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs {
			in := admission.ObjectInput(obj.Object, "default", time.Now())
			resp := postReview(t, client, srv.URL+"/validate", in, obj.Object)
			key := in.Request.Kind + "/" + in.Request.Name
			var got []string
			if !resp.Allowed {
				got = strings.Split(resp.Result.Message, "\n")
			}
			if strings.Join(got, "\n") != strings.Join(cliDenials[key], "\n") {
				t.Errorf("%s: webhook denies with\n%s\nCLI reports\n%s", key, strings.Join(got, "\n"), strings.Join(cliDenials[key], "\n"))
			}
			checked++
		}
	}
	if checked < 5 || len(cliDenials) < 3 {
		t.Fatalf("fixture too small: %d objects, %d denied", checked, len(cliDenials))
	}
}

func postReview(t *testing.T, client *http.Client, url string, in admission.Input, obj map[string]any) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":       "u-" + in.Request.Name,
			"kind":      map[string]any{"group": in.Request.Group, "version": in.Request.Version, "kind": in.Request.Kind},
			"namespace": in.Request.Namespace, "name": in.Request.Name, "operation": "CREATE",
			"userInfo": map[string]any{"username": "ci"},
			"object":   json.RawMessage(raw),
		},
	}
	body, _ := json.Marshal(review)
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || string(out.Response.UID) != "u-"+in.Request.Name {
		t.Fatalf("response without the request's uid: %+v", out.Response)
	}
	return out.Response
}
