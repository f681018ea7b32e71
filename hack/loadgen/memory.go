package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook/webhooktest"
)

// memory fills the verdict cache of an `attest serve` process with o.cache verifications and reports its memory.
func memory(ctx context.Context, t *tb, e *env, o options) error {
	fmt.Printf("\nmemory: pushing %d signed and attested images ...\n", o.cache)
	start := time.Now()
	images := e.pushMany(o.cache, 4, nil)
	fmt.Printf("pushed in %s\n", time.Since(start).Round(time.Second))
	certs := filepath.Join(e.dir, "certs")
	pool, err := webhooktest.WriteServingCert(certs, webhooktest.Loopback)
	if err != nil {
		return err
	}
	port, err := webhooktest.FreePort()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(e.dir, "serve.log"))
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	// A copy made by cp, as hack/bench-check.sh runs: a binary the linker has just written (or one written in a
	// single large write) maps more of itself per page fault than an installed one, up to 20 MiB more RSS.
	attest := filepath.Join(e.dir, "attest")
	if out, err := exec.Command("cp", o.attest, attest).CombinedOutput(); err != nil {
		return fmt.Errorf("cp %s: %w: %s", o.attest, err, out)
	}
	cmd := exec.CommandContext(ctx, attest, "serve", "--host", webhooktest.Loopback, "--port", strconv.Itoa(port),
		"--cert-dir", certs, "--config", filepath.Join(e.dir, "policies.yaml"), "--verify-cache-size", strconv.Itoa(o.cache))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	client := webhooktest.Client(pool)
	base := "https://" + webhooktest.Loopback + ":" + strconv.Itoa(port)
	if err := awaitReady(client, base+"/readyz", 30*time.Second); err != nil {
		log, _ := os.ReadFile(logFile.Name())
		return fmt.Errorf("attest serve: %w\n%s", err, log)
	}
	idle, err := procStatus(cmd.Process.Pid)
	if err != nil {
		return err
	}
	series := []string{"go_gc_heap_live_bytes", "go_gc_heap_goal_bytes", "go_memstats_heap_inuse_bytes"}
	idleHeap, err := scrape(client, base+"/metrics", series...)
	if err != nil {
		return err
	}
	fmt.Printf("attest serve (pid %d) ready: VmRSS %s, Go heap live after the last GC %s\nadmitting a Pod of each image ...\n",
		cmd.Process.Pid, mib(idle["VmRSS"]), mib(idleHeap["go_gc_heap_live_bytes"]/1024))
	start = time.Now()
	var next, denied atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(images) {
					return
				}
				out, err := post(client, base+"/validate", review(fmt.Sprintf("uid-%d", i), pod(fmt.Sprintf("p%d", i), images[i])))
				var rv admissionv1.AdmissionReview
				if err == nil {
					err = json.Unmarshal(out, &rv)
				}
				if err == nil && (rv.Response == nil || !rv.Response.Allowed) {
					err = fmt.Errorf("not allowed: %s", out)
				}
				if err != nil {
					denied.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("image %s: %w", images[i], err) })
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%d of %d admissions were not allowed; the first: %w", denied.Load(), len(images), firstErr)
	}
	full, err := procStatus(cmd.Process.Pid)
	if err != nil {
		return err
	}
	heap, err := scrape(client, base+"/metrics", series...)
	if err != nil {
		return err
	}
	fmt.Printf("admitted %d Pods in %s, each image verified once\n", len(images), time.Since(start).Round(time.Second))
	fmt.Printf("attest serve with %d cached verdicts: VmRSS %s (anonymous %s, file-backed %s), peak VmHWM %s\n",
		o.cache, mib(full["VmRSS"]), mib(full["RssAnon"]), mib(full["RssFile"]), mib(full["VmHWM"]))
	fmt.Printf("Go heap: live after the last GC %s (%.1f KiB more per cached verdict than idle), GC goal %s, in use %s\n",
		mib(heap["go_gc_heap_live_bytes"]/1024), (heap["go_gc_heap_live_bytes"]-idleHeap["go_gc_heap_live_bytes"])/1024/float64(o.cache),
		mib(heap["go_gc_heap_goal_bytes"]/1024), mib(heap["go_memstats_heap_inuse_bytes"]/1024))
	return nil
}

func awaitReady(c *http.Client, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = drain(resp.Body)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %w", d, last)
}

// procStatus reads the kB figures of /proc/<pid>/status.
func procStatus(pid int) (map[string]float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// scrape reads the named unlabelled series of a Prometheus text exposition.
func scrape(c *http.Client, url string, names ...string) (map[string]float64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	body, err := drain(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		for _, n := range names {
			if v, ok := strings.CutPrefix(line, n+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					out[n] = f
				}
			}
		}
	}
	return out, nil
}

func mib(kb float64) string { return fmt.Sprintf("%.1f MiB", kb/1024) }
