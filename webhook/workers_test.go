package webhook

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWorkersNeverWait: an admission stuck on its worker never holds up the next one (a new worker starts), and a
// worker that finished takes the next admission instead of a new goroutine.
func TestWorkersNeverWait(t *testing.T) {
	w := workers{jobs: make(chan func())}
	release := make(chan struct{})
	stuck := make(chan struct{})
	w.run(func() { close(stuck); <-release })
	<-stuck
	done := make(chan struct{})
	w.run(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the second admission waited for the stuck one")
	}
	close(release)

	// Both workers are idle now: a burst of sequential admissions reuses them, starting no goroutine.
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		w.run(wg.Done)
		wg.Wait()
	}
	if after := runtime.NumGoroutine(); after > before+10 { // slack for the runtime's own; a worker per admission would add 100
		t.Fatalf("goroutines %d -> %d: finished workers were not reused", before, after)
	}
}
