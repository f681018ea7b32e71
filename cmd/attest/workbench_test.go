package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPlaygroundServes: `attest policy playground` prints its loopback URL and serves the manifest's objects with
// the user's policy selected, until its context ends (Ctrl-C), then exits 0.
func TestPlaygroundServes(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "deploy.yaml")
	if err := os.WriteFile(manifest, []byte(firstRunDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "replicas.rego")
	if err := os.WriteFile(pol, []byte("# METADATA\n# title: t\n# custom:\n#   name: min-replicas\n#   severity: low\npackage company.min_replicas\n\nviolation[{\"message\": \"few\"}] { input.resource.spec.replicas < 2 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"policy", "playground", "--policy", pol, "--input", manifest, "--config", filepath.Join("testdata", "policies.yaml")}, strings.NewReader(""), pw, io.Discard)
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !strings.HasPrefix(line, "workbench: http://127.0.0.1:") || !strings.Contains(line, "(1 recorded inputs, 11 policies;") {
		t.Fatalf("first line: %q", line)
	}
	url := strings.Fields(line)[1]
	resp, err := http.Get(url + "api/state")
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Records []struct {
			Kind, Name string
		}
		Selected string
	}
	err = json.NewDecoder(resp.Body).Decode(&state)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Records) != 1 || state.Records[0].Kind != "Deployment" || state.Records[0].Name != "web" || state.Selected != "min-replicas" {
		t.Fatalf("state: %+v", state)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after Ctrl-C", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the workbench did not stop")
	}
}

func TestWorkbenchUsage(t *testing.T) {
	dir := t.TempDir()
	badLog := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badLog, []byte("{\"msg\":\"admission\"}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"listen beyond loopback", []string{"policy", "workbench", "--listen", "0.0.0.0:0"}, "--listen: 0.0.0.0 is not a loopback address"},
		{"listen on a name", []string{"policy", "workbench", "--listen", "example.com:0"}, "--listen: example.com is not a loopback address"},
		{"a log line that is not JSON", []string{"policy", "workbench", "--log", badLog}, badLog + ":2: not a decision log line"},
		{"a missing log", []string{"policy", "workbench", "--log", filepath.Join(dir, "nope.jsonl")}, "--log: open"},
		{"playground without input", []string{"policy", "playground", "--policy", dir}, "--policy and --input are required"},
		{"an unknown policy to select", []string{"policy", "workbench", "--select", "nope", "--listen", "127.0.0.1:0"}, `no policy named "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := attest(t, "", append(c.args, "--config", filepath.Join("testdata", "policies.yaml"))...)
			if code != 2 || !strings.Contains(errOut, c.stderr) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q", code, errOut, c.stderr)
			}
		})
	}
}
