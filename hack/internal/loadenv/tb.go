package loadenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TB lets the helpers written for tests (attestationtest's registry and signer, webhooktest's server) run in a
// command: a failure ends the program, and cleanups run when Close is called. The methods the helpers call are
// implemented; the embedded nil testing.TB only satisfies the interface.
type TB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func (t *TB) prefix() string { return filepath.Base(os.Args[0]) + ":" }

// Helper implements testing.TB.
func (t *TB) Helper() {}

// Fatal prints args, runs the cleanups and exits 1.
func (t *TB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{t.prefix()}, args...)...)
	t.Close()
	os.Exit(1)
}

// Fatalf is Fatal with a format.
func (t *TB) Fatalf(format string, args ...any) { t.Fatal(fmt.Sprintf(format, args...)) }

// Errorf prints to stderr.
func (t *TB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, t.prefix()+" "+format+"\n", args...)
}

// Logf prints to stderr.
func (t *TB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// Cleanup registers f for Close.
func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir makes a directory that Close removes.
func (t *TB) TempDir() string {
	dir, err := os.MkdirTemp("", filepath.Base(os.Args[0])+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, dir)
	t.mu.Unlock()
	return dir
}

// Close runs the cleanups, last registered first, and removes the temporary directories.
func (t *TB) Close() {
	t.mu.Lock()
	cleanups, dirs := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}
