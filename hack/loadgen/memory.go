package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuums/attest/hack/internal/loadenv"
)

// memory fills the verdict cache of an `attest serve` process with o.cache verifications and reports its memory.
func memory(ctx context.Context, e *loadenv.Env, o options) error {
	fmt.Printf("\nmemory: pushing %d signed and attested images ...\n", o.cache)
	start := time.Now()
	images := e.PushMany("team/img", o.cache, 4, nil)
	fmt.Printf("pushed in %s\n", time.Since(start).Round(time.Second))
	s, err := e.StartServe(ctx, o.attest, "--verify-cache-size", fmt.Sprint(o.cache))
	if err != nil {
		return err
	}
	defer s.Stop()
	idle, err := s.Status()
	if err != nil {
		return err
	}
	series := []string{"go_gc_heap_live_bytes", "go_gc_heap_goal_bytes", "go_memstats_heap_inuse_bytes"}
	idleHeap, err := s.Scrape(series...)
	if err != nil {
		return err
	}
	fmt.Printf("attest serve (pid %d) ready: VmRSS %s, Go heap live after the last GC %s\nadmitting a Pod of each image ...\n",
		s.PID, loadenv.MiB(idle["VmRSS"]), loadenv.MiB(idleHeap["go_gc_heap_live_bytes"]/1024))
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
				resp, err := loadenv.Admit(s.Client, s.Base+"/validate", loadenv.Review(fmt.Sprintf("uid-%d", i), loadenv.Pod(fmt.Sprintf("p%d", i), images[i].Tagged)))
				if err == nil && !resp.Allowed {
					err = fmt.Errorf("not allowed: %+v", resp.Result)
				}
				if err != nil {
					denied.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("image %s: %w", images[i].Tagged, err) })
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%d of %d admissions were not allowed; the first: %w", denied.Load(), len(images), firstErr)
	}
	full, err := s.Status()
	if err != nil {
		return err
	}
	heap, err := s.Scrape(series...)
	if err != nil {
		return err
	}
	fmt.Printf("admitted %d Pods in %s, each image verified once\n", len(images), time.Since(start).Round(time.Second))
	fmt.Printf("attest serve with %d cached verdicts: VmRSS %s (anonymous %s, file-backed %s), peak VmHWM %s\n",
		o.cache, loadenv.MiB(full["VmRSS"]), loadenv.MiB(full["RssAnon"]), loadenv.MiB(full["RssFile"]), loadenv.MiB(full["VmHWM"]))
	if maps, err := binaryMappings(s.PID); err == nil {
		fmt.Printf("file-backed pages of the binary by mapping: %s\n", maps)
	}
	fmt.Printf("Go heap: live after the last GC %s (%.1f KiB more per cached verdict than idle), GC goal %s, in use %s\n",
		loadenv.MiB(heap["go_gc_heap_live_bytes"]/1024), (heap["go_gc_heap_live_bytes"]-idleHeap["go_gc_heap_live_bytes"])/1024/float64(o.cache),
		loadenv.MiB(heap["go_gc_heap_goal_bytes"]/1024), loadenv.MiB(heap["go_memstats_heap_inuse_bytes"]/1024))
	return nil
}

// binaryMappings sums the resident pages of the attest binary's own mappings by permission (r-xp code, r--p
// read-only data and tables, rw-p initialised data), from /proc/PID/smaps: what the file-backed part of VmRSS is.
func binaryMappings(pid int) (string, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "", err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	kib := map[string]float64{}
	var order []string
	perm := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 6 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			perm = ""
			if fields[len(fields)-1] == exe {
				perm = fields[1]
				if _, ok := kib[perm]; !ok {
					order = append(order, perm)
				}
			}
		case perm != "" && len(fields) >= 2 && fields[0] == "Rss:":
			n, _ := strconv.ParseFloat(fields[1], 64)
			kib[perm] += n
		}
	}
	parts := make([]string, 0, len(order))
	for _, p := range order {
		parts = append(parts, fmt.Sprintf("%s %s", p, loadenv.MiB(kib[p])))
	}
	return strings.Join(parts, ", "), sc.Err()
}
