package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCommandName(t *testing.T) {
	for _, tc := range []struct{ argv0, want string }{
		{"attest", "attest"},
		{"/usr/local/bin/attest", "attest"},
		{"bin/attest-full", "attest"},
		{"/home/u/.krew/bin/kubectl-attest", "kubectl attest"},
		{"kubectl-attest", "kubectl attest"},
		{"/opt/kubectl-other", "attest"},
	} {
		if got := commandName(tc.argv0); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.argv0, got, tc.want)
		}
	}
}

// TestPluginUsageNamesKubectl: run as the kubectl plugin, help shows the command line the user types.
func TestPluginUsageNamesKubectl(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runApp(context.Background(), []string{"policy", "--help"}, app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, name: "kubectl attest"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "kubectl attest policy [command]") {
		t.Errorf("usage does not name kubectl attest:\n%s", out.String())
	}
}
