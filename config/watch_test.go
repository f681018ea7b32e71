package config_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

var discard = slog.New(slog.DiscardHandler)

// writeFile replaces dir/name atomically (a temporary file renamed into place), so a concurrent reader never
// sees a half-written file, and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		_ = f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	auditYAML   = "policies:\n- name: no-privileged\n  mode: audit\n"
	offYAML     = "policies:\n- name: no-privileged\n  enabled: false\n"
	enforceYAML = "policies:\n- name: no-privileged\n  enforcement: strict\n"
	badYAML     = "policies:\n- name: no-privileged\n  mode: sometimes\n"
)

func TestNewWatcherErrors(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", badYAML)
	unknown := writeFile(t, dir, "unknown.yaml", "policy:\n- name: no-privileged\n")
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{
			name:    "missing file",
			path:    missing,
			wantErr: "read config: open " + missing + ": no such file or directory",
		},
		{
			name:    "invalid mode",
			path:    bad,
			wantErr: "config " + bad + `: policies[0].mode: unknown mode "sometimes" (want enforce, audit or off; strict and warn are accepted too)`,
		},
		{
			name:    "unknown field",
			path:    unknown,
			wantErr: "config " + unknown + `: unknown field "policy"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := config.NewWatcher(tt.path, e, discard, prometheus.NewRegistry())
			if err == nil {
				t.Fatalf("NewWatcher succeeded (%+v), want error %q", w.Current(), tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
		})
	}
}

func TestNewWatcherRegistersOnce(t *testing.T) {
	e := newEngine(t)
	path := writeFile(t, t.TempDir(), "policies.yaml", auditYAML)
	reg := prometheus.NewRegistry()
	if _, err := config.NewWatcher(path, e, discard, reg); err != nil {
		t.Fatalf("first NewWatcher: %v", err)
	}
	_, err := config.NewWatcher(path, e, discard, reg)
	const want = "register metric: duplicate metrics collector registration attempted"
	if err == nil || err.Error() != want {
		t.Errorf("second NewWatcher on the same registry: error %v, want %s", err, want)
	}
	if _, err := config.NewWatcher(path, e, discard, nil); err != nil {
		t.Errorf("NewWatcher without a registry: %v", err)
	}
}

// checkMetrics compares the text exposition of everything reg holds with want. (prometheus/testutil would do
// this, but it needs a module go.mod does not list.)
func checkMetrics(reg *prometheus.Registry, want string) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	var got bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&got, mf); err != nil {
			return err
		}
	}
	if got.String() != want {
		return fmt.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
	}
	return nil
}

// metricsText is the exposition of the watcher's two metrics, in name order as Gather sorts them; a result
// series exists once it has counted.
func metricsText(success, failure, applied int) string {
	var b strings.Builder
	b.WriteString("# HELP attest_config_last_reload_success 1 when the last reload of the config file succeeded, 0 when the last good config is being kept.\n")
	b.WriteString("# TYPE attest_config_last_reload_success gauge\n")
	b.WriteString("attest_config_last_reload_success " + strconv.Itoa(applied) + "\n")
	if success > 0 || failure > 0 {
		b.WriteString("# HELP attest_config_reloads_total Reloads of the policies config file by result (success, failure).\n")
		b.WriteString("# TYPE attest_config_reloads_total counter\n")
		if failure > 0 {
			b.WriteString(`attest_config_reloads_total{result="failure"} ` + strconv.Itoa(failure) + "\n")
		}
		if success > 0 {
			b.WriteString(`attest_config_reloads_total{result="success"} ` + strconv.Itoa(success) + "\n")
		}
	}
	return b.String()
}

// newWatcher starts a watcher on a fresh file holding auditYAML, with its own metrics registry.
func newWatcher(t *testing.T) (w *config.Watcher, path string, reg *prometheus.Registry) {
	t.Helper()
	path = writeFile(t, t.TempDir(), "policies.yaml", auditYAML)
	reg = prometheus.NewRegistry()
	w, err := config.NewWatcher(path, newEngine(t), discard, reg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	return w, path, reg
}

func TestWatcherReload(t *testing.T) {
	w, path, reg := newWatcher(t)
	if got := w.Current().Policies[noPrivileged].Mode; got != policies.ModeAudit {
		t.Fatalf("after NewWatcher: mode %q, want %q", got, policies.ModeAudit)
	}
	if err := checkMetrics(reg, metricsText(0, 0, 1)); err != nil {
		t.Fatalf("metrics after NewWatcher: %v", err)
	}

	// Steps run in order against the one watcher: each rewrites the file (or not) and calls Reload.
	steps := []struct {
		name       string
		content    *string // nil leaves the file as it is
		remove     bool
		wantMode   policies.Mode
		wantDigest string // "" for "the digest of content"; "keep" for "unchanged"
		success    int
		failure    int
		applied    int
	}{
		{name: "unchanged file is a no-op", wantMode: policies.ModeAudit, wantDigest: "keep", applied: 1},
		{name: "change applies", content: ptr(offYAML), wantMode: policies.ModeOff, success: 1, applied: 1},
		{name: "bad file keeps the last good config", content: ptr(badYAML), wantMode: policies.ModeOff, wantDigest: "keep", success: 1, failure: 1, applied: 0},
		{name: "the same bad file is reported once", wantMode: policies.ModeOff, wantDigest: "keep", success: 1, failure: 1, applied: 0},
		{name: "fixed file applies", content: ptr(enforceYAML), wantMode: policies.ModeEnforce, success: 2, failure: 1, applied: 1},
		{name: "unknown policy keeps the last good config", content: ptr("policies:\n- name: nope\n"), wantMode: policies.ModeEnforce, wantDigest: "keep", success: 2, failure: 2, applied: 0},
		{name: "back to an earlier good file applies", content: ptr(auditYAML), wantMode: policies.ModeAudit, success: 3, failure: 2, applied: 1},
		{name: "removed file keeps the last good config", remove: true, wantMode: policies.ModeAudit, wantDigest: "keep", success: 3, failure: 3, applied: 0},
		{name: "a file still missing is reported once", wantMode: policies.ModeAudit, wantDigest: "keep", success: 3, failure: 3, applied: 0},
		{name: "file back again applies", content: ptr(offYAML), wantMode: policies.ModeOff, success: 4, failure: 3, applied: 1},
		{name: "an emptied file (a write in progress) keeps the last good config", content: ptr("  \n"), wantMode: policies.ModeOff, wantDigest: "keep", success: 4, failure: 4, applied: 0},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			before := w.Current().Digest
			switch {
			case st.remove:
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			case st.content != nil:
				writeFile(t, filepath.Dir(path), "policies.yaml", *st.content)
			}
			w.Reload()
			cur := w.Current()
			if got := cur.Policies[noPrivileged].Mode; got != st.wantMode {
				t.Errorf("mode %q, want %q", got, st.wantMode)
			}
			switch st.wantDigest {
			case "keep":
				if cur.Digest != before {
					t.Errorf("digest changed from %s to %s", before, cur.Digest)
				}
			case "":
				want, err := config.Parse([]byte(*st.content), newEngine(t))
				if err != nil {
					t.Fatal(err)
				}
				if cur.Digest != want.Digest {
					t.Errorf("digest %s, want %s", cur.Digest, want.Digest)
				}
			}
			if err := checkMetrics(reg, metricsText(st.success, st.failure, st.applied)); err != nil {
				t.Errorf("metrics: %v", err)
			}
		})
		if !ok {
			t.FailNow() // later steps depend on this one
		}
	}
}

func ptr[T any](v T) *T { return &v }

// startRun runs w.Run until the test ends, and checks that it returns nil when cancelled.
func startRun(t *testing.T, w *config.Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
}

// waitFor polls until w's current config has the mode, failing after a deadline. Each poll calls poke first:
// the watch may not be set up yet when the change happens, and the fallback poll of Run is seconds apart.
func waitFor(t *testing.T, w *config.Watcher, want policies.Mode, poke func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := w.Current().Policies[noPrivileged].Mode; got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not apply the change: mode is still %q, want %q", w.Current().Policies[noPrivileged].Mode, want)
		}
		poke()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatcherRunPicksUpChange(t *testing.T) {
	w, path, reg := newWatcher(t)
	startRun(t, w)
	waitFor(t, w, policies.ModeOff, func() { writeFile(t, filepath.Dir(path), "policies.yaml", offYAML) })
	if err := checkMetrics(reg, metricsText(1, 0, 1)); err != nil {
		t.Errorf("metrics: %v", err)
	}
}

// configMapDir lays out dir as a kubelet ConfigMap volume: dir/..v1/policies.yaml, dir/..data -> ..v1 and
// dir/policies.yaml -> ..data/policies.yaml; it returns the path of the file and a function that swaps ..data to
// a new version atomically, as the kubelet does.
func configMapDir(t *testing.T, content string) (path string, swap func(version, content string)) {
	t.Helper()
	dir := t.TempDir()
	current := ""
	swap = func(version, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, version, "policies.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(version, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if current != "" {
			if err := os.RemoveAll(filepath.Join(dir, current)); err != nil {
				t.Fatal(err)
			}
		}
		current = version
	}
	swap("..v1", content)
	path = filepath.Join(dir, "policies.yaml")
	if err := os.Symlink(filepath.Join("..data", "policies.yaml"), path); err != nil {
		t.Fatal(err)
	}
	return path, swap
}

func TestWatcherConfigMapSwap(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name string
		run  bool // pick the change up with Run rather than a direct Reload
	}{
		{name: "Reload", run: false},
		{name: "Run", run: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, swap := configMapDir(t, auditYAML)
			w, err := config.NewWatcher(path, e, discard, prometheus.NewRegistry())
			if err != nil {
				t.Fatalf("NewWatcher: %v", err)
			}
			if got := w.Current().Policies[noPrivileged].Mode; got != policies.ModeAudit {
				t.Fatalf("after NewWatcher: mode %q, want %q", got, policies.ModeAudit)
			}
			if !tt.run {
				swap("..v2", offYAML)
				w.Reload()
				if got := w.Current().Policies[noPrivileged].Mode; got != policies.ModeOff {
					t.Errorf("after the swap: mode %q, want %q", got, policies.ModeOff)
				}
				return
			}
			startRun(t, w)
			n := 1
			waitFor(t, w, policies.ModeOff, func() {
				n++ // swap again each poll, in case the first swap came before the watch
				swap("..v"+strconv.Itoa(n), offYAML)
			})
		})
	}
}
