package webhook

import (
	"io"
	"sync"
	"time"
)

// LogWriter gathers the log's lines and writes them together, at most Every after the first of them or once
// FlushBytes are waiting, from a goroutine of its own: a decision-log line per admission written by itself cost a
// write system call on the admission's path (70% of logging it, 5% of attest serve's CPU). Each Write is kept
// whole and in order. Past MaxBytes waiting (the output blocked), Write writes through itself, so memory stays
// bounded and nothing is dropped. Close writes what is left.
type LogWriter struct {
	out io.Writer
	// mu guards buf; flushMu orders writes to out (held from taking buf to writing it).
	mu, flushMu sync.Mutex
	buf, spare  []byte
	kick, full  chan struct{}
	stop        chan struct{}
	stopped     chan struct{}
	closeOnce   sync.Once
	closed      bool  // under mu: Close has run, so Write writes through
	err         error // the first error writing to out, returned by Flush and Close
}

// The LogWriter's bounds: a line waits at most LogEvery; FlushBytes waiting are written at once; past
// MaxLogBytes the writer writes through.
const (
	LogEvery    = 50 * time.Millisecond
	FlushBytes  = 64 << 10
	MaxLogBytes = 4 << 20
)

// NewLogWriter starts writing to out in batches; Close stops it.
func NewLogWriter(out io.Writer) *LogWriter {
	w := &LogWriter{out: out, kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// Write keeps p to be written with the lines around it.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	first := len(w.buf) == 0
	w.buf = append(w.buf, p...)
	n, closed := len(w.buf), w.closed
	w.mu.Unlock()
	switch {
	case closed || n > MaxLogBytes:
		if err := w.Flush(); err != nil {
			return 0, err
		}
	case n >= FlushBytes:
		signal(w.full)
	case first:
		signal(w.kick)
	}
	return len(p), nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run writes the lines Every after the first is kept, or at once when FlushBytes wait, until Close.
func (w *LogWriter) run() {
	defer close(w.stopped)
	timer := time.NewTimer(LogEvery)
	timer.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-w.full:
		case <-w.kick:
			timer.Reset(LogEvery)
			select {
			case <-w.stop:
				return
			case <-w.full:
				timer.Stop()
			case <-timer.C:
			}
		}
		_ = w.Flush() // an error is kept for Flush and Close to return
	}
}

// Flush writes what is waiting now.
func (w *LogWriter) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	out := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	if len(out) > 0 {
		if _, err := w.out.Write(out); err != nil && w.err == nil {
			w.err = err
		}
	}
	if cap(out) <= FlushBytes*2 { // kept for the next batch, unless a blocked output made it grow large
		w.mu.Lock()
		w.spare = out[:0]
		w.mu.Unlock()
	}
	return w.err
}

// Close stops the goroutine and writes what is left; a Write after it is written at once.
func (w *LogWriter) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
		<-w.stopped
	})
	return w.Flush()
}
