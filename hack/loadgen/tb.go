package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// tb lets the helpers written for tests (attestationtest's registry and signer, webhooktest's server) run in this
// command: a failure ends the program, and cleanups run when close is called. The methods the helpers call are
// implemented; the embedded nil testing.TB only satisfies the interface.
type tb struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func (t *tb) Helper() {}

func (t *tb) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"loadgen:"}, args...)...)
	t.close()
	os.Exit(1)
}

func (t *tb) Fatalf(format string, args ...any) { t.Fatal(fmt.Sprintf(format, args...)) }

func (t *tb) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
}

func (t *tb) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *tb) TempDir() string {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		t.Fatal(err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, dir)
	t.mu.Unlock()
	return dir
}

// close runs the cleanups, last registered first, and removes the temporary directories.
func (t *tb) close() {
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
