package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// streamObject is the i-th object of a generated stream: a Pod, Deployment, StatefulSet or CronJob; every fifth
// has an untrusted image, every seventh a privileged container. It is streamObjectLines lines long.
func streamObject(i int) string {
	image := fmt.Sprintf("gcr.io/company/app:%d", i)
	if i%5 == 0 {
		image = fmt.Sprintf("quay.io/evil/app:%d", i)
	}
	spec := fmt.Sprintf("containers:\n- name: app\n  image: %s\n  securityContext: {privileged: %t}\n- name: sidecar\n  image: nginx:1.27\n", image, i%7 == 0)
	indent := func(s, pad string) string {
		return pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad) + "\n"
	}
	head := func(apiVersion, kind string) string {
		return fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata: {name: w%d, namespace: shop}\nspec:\n", apiVersion, kind, i)
	}
	switch i % 4 {
	case 0:
		return head("v1", "Pod") + indent(spec, "  ") + "  # padding\n  # padding\n  # padding\n  # padding\n  # padding\n"
	case 1:
		return head("apps/v1", "Deployment") + "  replicas: 2\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n" + indent(spec, "      ")
	case 2:
		return head("apps/v1", "StatefulSet") + "  replicas: 2\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n" + indent(spec, "      ")
	}
	return head("batch/v1", "CronJob") + "  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n" + indent(spec, "          ")
}

const streamObjectLines = 15 // lines of each object, plus one for its "---"

// `kustomize build | attest policy check -f -` on a stream of 100,000 objects: every object is checked and every
// finding reported, with the line where its object starts, in input order.
func TestCheckReadsOneHundredThousandObjectsFromStdin(t *testing.T) {
	bin := cluster.AttestBinary()
	if bin == "" {
		t.Skip("needs the attest binary (local harness)")
	}
	const n = 100000
	dir := t.TempDir()
	config := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(config, []byte("policies:\n- name: trusted-registries\n  parameters: {trusted_registries: [gcr.io/company, docker.io/library]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "policy", "check", "--config", config, "--policy", "no-privileged", "--policy", "trusted-registries", "-f", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for i := range n {
			if i > 0 {
				_, _ = w.WriteString("---\n")
			}
			_, _ = w.WriteString(streamObject(i))
		}
		_ = w.Flush()
		_ = stdin.Close()
	}()
	counts := map[string]int{}
	var last, summary string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, ": DENY "):
			counts[strings.SplitN(strings.SplitN(line, "[", 2)[1], "]", 2)[0]]++
			last = line
		case strings.HasSuffix(line, "warnings"):
			summary = line
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1; stderr:\n%s", code, err, stderr.String())
	}
	untrusted, privileged := 0, 0
	for i := range n {
		if i%5 == 0 {
			untrusted++
		}
		if i%7 == 0 {
			privileged++
		}
	}
	if counts["trusted-registries"] != untrusted || counts["no-privileged"] != privileged {
		t.Errorf("findings %v, want trusted-registries %d and no-privileged %d", counts, untrusted, privileged)
	}
	if want := fmt.Sprintf("%d objects checked, %d violations would be denied, 0 warnings", n, untrusted+privileged); summary != want {
		t.Errorf("summary %q, want %q", summary, want)
	}
	// The last finding is object 99995's, a CronJob (untrusted; 99996 to 99999 are clean), on the line it starts on.
	wantLast := fmt.Sprintf("<stdin>:%d: DENY CronJob shop/w99995: [trusted-registries]", 1+99995*(streamObjectLines+1))
	if !strings.HasPrefix(last, wantLast) {
		t.Errorf("last finding %q, want it to start with %q", last, wantLast)
	}
}
