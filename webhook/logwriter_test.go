package webhook_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuums/attest/webhook"
)

// recorder is an output that keeps what it is given and counts the writes; with gate set, each write waits for it.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{}
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if r.err != nil {
		return 0, r.err
	}
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"line":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", 200))
	}
	return b.String()
}

func writeLines(t *testing.T, w *webhook.LogWriter, from, to int) {
	t.Helper()
	for _, l := range strings.SplitAfter(lines(from, to), "\n") {
		if l == "" {
			continue
		}
		if n, err := w.Write([]byte(l)); err != nil || n != len(l) {
			t.Errorf("Write = %d, %v", n, err) // not Fatal: called from other goroutines too
			return
		}
	}
}

// TestLogWriterBatches: lines are written whole, in order, fewer times than they were given, and all of them by
// Close.
func TestLogWriterBatches(t *testing.T) {
	out := &recorder{}
	w := webhook.NewLogWriter(out)
	writeLines(t, w, 0, 1000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), lines(0, 1000); got != want {
		t.Fatalf("written %d bytes, want the %d given in order", len(got), len(want))
	}
	if out.writes >= 100 {
		t.Errorf("1000 lines took %d writes, want them batched", out.writes)
	}
}

// TestLogWriterWritesWithoutClose: lines are written by the writer's own goroutine, a few at a time or a batch
// past FlushBytes, with no Flush or Close.
func TestLogWriterWritesWithoutClose(t *testing.T) {
	for _, n := range []int{1, 3 * webhook.FlushBytes / 230} {
		t.Run(fmt.Sprint(n, " lines"), func(t *testing.T) {
			out := &recorder{}
			w := webhook.NewLogWriter(out)
			defer func() { _ = w.Close() }()
			writeLines(t, w, 0, n)
			want := lines(0, n)
			for deadline := time.Now().Add(10 * time.Second); out.String() != want; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("after 10s %d of %d bytes written", len(out.String()), len(want))
				}
			}
		})
	}
}

// TestLogWriterBoundedWhenBlocked: with the output blocked, Write holds the caller once MaxLogBytes wait, rather
// than growing without bound; released, everything is written in order.
func TestLogWriterBoundedWhenBlocked(t *testing.T) {
	out := &recorder{gate: make(chan struct{})}
	w := webhook.NewLogWriter(out)
	n := 2 * webhook.MaxLogBytes / 220
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeLines(t, w, 0, n)
	}()
	select {
	case <-done:
		t.Fatal("Write accepted twice MaxLogBytes with the output blocked")
	case <-time.After(300 * time.Millisecond):
	}
	close(out.gate)
	<-done
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), lines(0, n); got != want {
		t.Fatalf("written %d bytes, want the %d given in order", len(got), len(want))
	}
}

// TestLogWriterAfterClose: a line given after Close is written at once; Close again is harmless.
func TestLogWriterAfterClose(t *testing.T) {
	out := &recorder{}
	w := webhook.NewLogWriter(out)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeLines(t, w, 0, 1)
	if got := out.String(); got != lines(0, 1) {
		t.Errorf("after Close, Write wrote %q", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}

// TestLogWriterReportsErrors: a failing output's error is returned by Close.
func TestLogWriterReportsErrors(t *testing.T) {
	out := &recorder{err: errors.New("disk full")}
	w := webhook.NewLogWriter(out)
	writeLines(t, w, 0, 3)
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v, want the output's error", err)
	}
}

// TestLogWriterConcurrent: lines from many goroutines each arrive whole (run with -race).
func TestLogWriterConcurrent(t *testing.T) {
	out := &recorder{}
	w := webhook.NewLogWriter(out)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() { writeLines(t, w, g*500, g*500+500) })
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != 4000 {
		t.Fatalf("%d lines, want 4000", len(got))
	}
	seen := map[string]bool{}
	for _, l := range strings.SplitAfter(lines(0, 4000), "\n") {
		seen[strings.TrimSuffix(l, "\n")] = true
	}
	for _, l := range got {
		if !seen[l] {
			t.Fatalf("a line not given whole: %.80q", l)
		}
	}
}
