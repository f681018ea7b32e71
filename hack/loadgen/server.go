package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

// serverCommand runs loadgen as the webhook process of one target (-server process): its heap holds that target's
// pipeline only, as `attest serve`'s holds one, so its collections cost what serve's do; in loadgen itself every
// target's pipeline, the client's garbage and the registry share one heap and collector.
const serverCommand = "server"

// served is what a server process says once it serves: where, and the directory of its CA.
type served struct {
	URL     string `json:"url"`
	CertDir string `json:"certDir"`
}

// noop answers every review allowed without reading it: the floor of an exchange over the same TLS server.
var noop = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = loadenv.Drain(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"0b1c2d3e","allowed":true}}`))
})

// targetHandler is the handler of a target other than traced: noop, or the pipeline with the memo off (validate)
// or on (repeat), over the config in e.Dir.
func targetHandler(e *loadenv.Env, name string) (http.Handler, error) {
	switch name {
	case "noop":
		return noop, nil
	case "validate", "repeat":
		p, err := newPipeline(e, 1024, name == "repeat", nil)
		if err != nil {
			return nil, err
		}
		return p.validate, nil
	}
	return nil, fmt.Errorf("no target %q", name)
}

// runServer serves target with the config in dir, says where on stdout, and serves until stdin closes, writing a
// profile of that time if asked: "cpu=<path>", "allocs=<path>" (every allocation, its sampling rate 512 bytes) or
// "heap=<path>" (the live heap at its end).
func runServer(target, dir string, profiles ...string) error {
	t := &loadenv.TB{}
	defer t.Close()
	for _, p := range profiles {
		kind, path, _ := strings.Cut(p, "=")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		switch kind {
		case "cpu":
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		case "allocs":
			runtime.MemProfileRate = 512
			defer func() { _ = pprof.Lookup("allocs").WriteTo(f, 0) }()
		case "heap":
			runtime.MemProfileRate = 512
			defer func() { runtime.GC(); _ = pprof.Lookup("heap").WriteTo(f, 0) }()
		default:
			return fmt.Errorf("profile %q: want cpu=<path>, allocs=<path> or heap=<path>", p)
		}
	}
	h, err := targetHandler(&loadenv.Env{T: t, Dir: dir}, target)
	if err != nil {
		return err
	}
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h})
	if err := json.NewEncoder(os.Stdout).Encode(served{URL: s.URL, CertDir: s.CertDir}); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// startServer starts loadgen itself as the server process of target over the env's config, profiling it as
// profiles say (see runServer), collecting at gogc percent unless that is "" (then at attest serve's); the
// cleanup stops it.
func startServer(ctx context.Context, t *loadenv.TB, e *loadenv.Env, target, gogc string, profiles ...string) (*webhooktest.Served, int, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	args := append([]string{serverCommand, target, e.Dir}, profiles...)
	cmd := exec.CommandContext(ctx, self, args...)
	if gogc != "" {
		cmd.Env = append(os.Environ(), serverGOGCEnv+"="+gogc)
	}
	cmd, in, lines, err := startSelf(cmd)
	if err != nil {
		return nil, 0, fmt.Errorf("start the %s server process: %w", target, err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	if !lines.Scan() {
		if err := lines.Err(); err != nil {
			return nil, 0, fmt.Errorf("the %s server process: %w", target, err)
		}
		return nil, 0, fmt.Errorf("the %s server process exited before it served", target)
	}
	var where served
	if err := json.Unmarshal(lines.Bytes(), &where); err != nil {
		return nil, 0, fmt.Errorf("the %s server process said %q: %w", target, lines.Text(), err)
	}
	pool, err := caPool(where.CertDir)
	if err != nil {
		return nil, 0, err
	}
	return &webhooktest.Served{URL: where.URL, Client: webhooktest.Client(pool), Pool: pool, CertDir: where.CertDir}, cmd.Process.Pid, nil
}
