//go:build !lean

package config

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/continuums/attest/policies"
)

// Watcher keeps the last good configuration of a file and reloads it when the file changes. A ConfigMap volume
// swaps a symlink rather than writing the file, so the directory is watched, and a poll catches missed events.
type Watcher struct {
	path    string
	engine  *policies.Engine
	log     *slog.Logger
	poll    time.Duration
	current atomic.Pointer[Config]
	mu      sync.Mutex // guards raw: Reload runs from Run and from callers
	raw     []byte
	lastErr string // the last failure reported, so a persistent one is counted once
	// cedarSeen fingerprints the .cedar files of the last load attempt: a change to them reloads too.
	cedarSeen string
	reloads   *prometheus.CounterVec
	applied   prometheus.Gauge
}

// NewWatcher loads path once; a bad file at start-up is an error, a bad file later keeps the last good config.
func NewWatcher(path string, engine *policies.Engine, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	w := &Watcher{
		path: path, engine: engine, log: log, poll: 5 * time.Second,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_config_reloads_total",
			Help: "Reloads of the policies config file by result (success, failure).",
		}, []string{"result"}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "attest_config_last_reload_success",
			Help: "1 when the last reload of the config file succeeded, 0 when the last good config is being kept.",
		}),
	}
	if reg != nil {
		if err := registerAll(reg, w.reloads, w.applied); err != nil {
			return nil, err
		}
	}
	cfg, data, err := load(path, engine)
	if err != nil {
		return nil, err
	}
	w.raw = data
	w.cedarSeen = cfg.cedarFingerprint()
	w.current.Store(cfg)
	w.applied.Set(1)
	w.warn(cfg)
	return w, nil
}

// warn logs, once per load, what the configuration asks for that ATTEST does not do.
func (w *Watcher) warn(cfg *Config) {
	for _, msg := range cfg.Warnings {
		w.log.Warn("config setting not honoured", "path", w.path, "warning", msg)
	}
}

// Current is the last good configuration.
func (w *Watcher) Current() *Config { return w.current.Load() }

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer func() { _ = fw.Close() }()
	if err := fw.Add(filepath.Dir(w.path)); err != nil {
		w.log.Warn("cannot watch the config directory; polling only", "path", w.path, "err", err)
	}
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-fw.Events:
			if w.concerns(ev) {
				w.Reload()
			}
		case err := <-fw.Errors:
			w.log.Warn("config watch error", "err", err)
		case <-tick.C:
			w.Reload()
		}
	}
}

// concerns reports whether a change in the watched directory can change the configuration: the file itself, a
// ConfigMap volume's swap of its ..data link (the kubelet's own entries begin with ".."), or a .cedar file beside
// it. Anything else written there (a log, a decision file) does not make the file be read again per write.
func (w *Watcher) concerns(ev fsnotify.Event) bool {
	name := filepath.Base(ev.Name)
	return filepath.Clean(ev.Name) == filepath.Clean(w.path) || strings.HasPrefix(name, "..") ||
		filepath.Ext(name) == ".cedar"
}

// Reload re-reads the file; an unchanged file is a no-op, a bad one is logged and the last good config kept.
func (w *Watcher) Reload() {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := os.ReadFile(w.path)
	if err != nil {
		err = fmt.Errorf("read config: %w", err)
		if err.Error() != w.lastErr { // report a missing file once, not on every poll
			w.fail(err)
		}
		return
	}
	cedarNow := w.cedarSeen
	if cur := w.current.Load(); cur != nil {
		cedarNow = cur.cedarFingerprint()
	}
	if bytes.Equal(data, w.raw) && cedarNow == w.cedarSeen {
		return
	}
	w.cedarSeen = cedarNow
	if len(bytes.TrimSpace(data)) == 0 {
		// Most likely a write in progress; an empty file at start-up means defaults, a blank reload means nothing.
		w.raw = data
		w.fail(fmt.Errorf("the config file is empty"))
		return
	}
	cfg, err := parseFile(w.path, data, w.engine)
	if err != nil {
		w.raw = data // report a bad file once, not on every poll
		w.fail(err)
		return
	}
	w.raw = data
	w.lastErr = ""
	w.cedarSeen = cfg.cedarFingerprint()
	w.current.Store(cfg)
	w.reloads.WithLabelValues("success").Inc()
	w.applied.Set(1)
	w.log.Info("config reloaded", "path", w.path, "digest", cfg.Digest)
	w.warn(cfg)
}

func (w *Watcher) fail(err error) {
	w.lastErr = err.Error()
	w.reloads.WithLabelValues("failure").Inc()
	w.applied.Set(0)
	w.log.Error("config rejected; keeping the last good config", "path", w.path, "err", err, "digest", w.Current().Digest)
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metric: %w", err)
		}
	}
	return nil
}
