// Command soak runs the real `attest serve` (the built binary, as a process: the whole embedded library, the shipped
// example config with a trust section and require-attestation enforced) against an in-memory registry of signed
// and attested images on 127.0.0.1, and drives it over HTTPS on loopback:
//
//  1. the verdicts of -images images are cached (one admission of each), then -n admissions (Pods and 3-container
//     Deployments of those images, pinned by digest as the mutating webhook pins them, each a different object)
//     come from -c clients at once; the serve process's RSS (/proc/PID/status) and goroutines (go_goroutines of
//     its /metrics) are read at -check admissions and at -n, and must agree within 10%;
//  2. the registry then stalls (its handler blocks) for -stall while the clients carry on: cached verdicts must
//     keep being served, and -cold images never admitted before must be denied within serve's --budget with a
//     message naming the registry;
//  3. the registry recovers: the cold images are admitted, the load stops, and the process's goroutines must come
//     back to what they were idle after the warm-up.
//
// It prints a table of each checkpoint and exits 1 if any of these does not hold. `make soak` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/hack/internal/loadenv"
)

type options struct {
	attest, example     string
	n, check, clients   int
	images, cold        int
	stall, budget, tail time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.attest, "attest", "bin/attest-full", "the attest binary to run as `attest serve` (the full build)")
	flag.StringVar(&o.example, "config", "examples/policies.yaml", "the example config (a trust section for the test registry is added)")
	flag.IntVar(&o.n, "n", 100_000, "admissions with a warm cache before the registry stalls")
	flag.IntVar(&o.check, "check", 10_000, "the admission count at which memory and goroutines are first read")
	flag.IntVar(&o.clients, "c", 8, "concurrent clients, each with its own keep-alive connection")
	flag.IntVar(&o.images, "images", 64, "images whose verdicts are cached before the load")
	flag.IntVar(&o.cold, "cold", 8, "images first admitted while the registry stalls (one client each)")
	flag.DurationVar(&o.stall, "stall", 20*time.Second, "how long the registry stalls")
	flag.DurationVar(&o.budget, "budget", 8*time.Second, "serve's --budget (the time to answer one request)")
	flag.DurationVar(&o.tail, "tail", 5*time.Second, "load after the registry recovers")
	flag.Parse()
	t := &loadenv.TB{}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		t.Close() // stops attest serve and removes the temporary directories
		os.Exit(130)
	}()
	err := run(t, o)
	t.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// sample is the serve process seen from outside at one moment.
type sample struct {
	rss, hwm, heapLive, goroutines float64
}

type phase struct {
	mu        sync.Mutex
	latencies []time.Duration
	errors    int
	firstErr  error
	start     time.Time
	end       time.Time
}

func (p *phase) record(d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latencies = append(p.latencies, d)
	if err != nil {
		p.errors++
		if p.firstErr == nil {
			p.firstErr = err
		}
	}
}

func (p *phase) stats() (n, errors int, rps float64, p50, p99, maxLat time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := slices.Clone(p.latencies)
	slices.Sort(l)
	if len(l) == 0 {
		return 0, p.errors, 0, 0, 0, 0
	}
	q := func(f float64) time.Duration { return l[int(f*float64(len(l)-1))] }
	return len(l), p.errors, float64(len(l)) / p.end.Sub(p.start).Seconds(), q(0.5), q(0.99), l[len(l)-1]
}

func run(t *loadenv.TB, o options) error {
	ctx := context.Background()
	e, err := loadenv.NewEnv(t, o.example, loadenv.Options{EnforceAttestation: true})
	if err != nil {
		return err
	}
	start := time.Now()
	warm := e.PushMany("team/warm", o.images, 4, nil)
	cold := e.PushMany("team/cold", o.cold, 4, nil)
	fmt.Printf("registry %s: %d + %d signed and attested images pushed in %s\n", e.Reg.Host(), o.images, o.cold, time.Since(start).Round(time.Millisecond))
	s, err := e.StartServe(ctx, o.attest, "--budget", o.budget.String())
	if err != nil {
		return err
	}
	t.Cleanup(s.Stop)
	fmt.Printf("attest serve (pid %d) %s --budget %s: the whole library, %s with require-attestation enforced and a trust section for the registry\n",
		s.PID, s.Base, o.budget, o.example)
	// Scrapes use a connection of their own, closed after each, so an idle reading counts no client connection.
	scraper := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	var readMu sync.Mutex // one reading at a time: each scrape's connection shows among the goroutines
	read := func() (sample, error) {
		readMu.Lock()
		defer readMu.Unlock()
		st, err := s.Status()
		if err != nil {
			return sample{}, err
		}
		m, err := loadenv.Scrape(scraper, s.MetricsURL, "go_goroutines", "go_gc_heap_live_bytes")
		if err != nil {
			return sample{}, err
		}
		return sample{rss: st["VmRSS"], hwm: st["VmHWM"], heapLive: m["go_gc_heap_live_bytes"] / 1024, goroutines: m["go_goroutines"]}, nil
	}
	// settled is the reading of a process with no request in flight: the fewest goroutines of three readings 100 ms
	// apart (a goroutine of a request just answered, or of the previous scrape's connection, may not have ended yet),
	// and the last reading's memory.
	settled := func() (sample, error) {
		var best sample
		for i := range 3 {
			if i > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			smp, err := read()
			if err != nil {
				return sample{}, err
			}
			if i > 0 {
				smp.goroutines = min(smp.goroutines, best.goroutines)
			}
			best = smp
		}
		return best, nil
	}
	validate := s.Base + "/validate"

	// Warm-up: each image's verdict cached, by one admission of it.
	for i, img := range warm {
		resp, err := loadenv.Admit(s.Client, validate, loadenv.Review(fmt.Sprintf("warm-%d", i), loadenv.Pod(fmt.Sprintf("warm-%d", i), img.Pinned)))
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if !resp.Allowed {
			return fmt.Errorf("warm-up: %s not admitted: %s", img.Pinned, message(resp))
		}
	}
	s.Client.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	baseline, err := settled()
	if err != nil {
		return err
	}

	request := func(i int64) []byte {
		uid := fmt.Sprintf("soak-%d", i)
		k := int(i) % len(warm)
		if i%2 == 0 {
			return loadenv.Review(uid, loadenv.Pod(fmt.Sprintf("p-%d", i), warm[k].Pinned))
		}
		return loadenv.Review(uid, loadenv.Deployment(fmt.Sprintf("d-%d", i), [3]string{warm[k].Pinned, warm[(k+1)%len(warm)].Pinned, warm[(k+2)%len(warm)].Pinned}))
	}
	var (
		issued, done atomic.Int64
		stop         atomic.Bool
		current      atomic.Pointer[phase]
		samples      = map[int64]sample{}
		sampleErr    error
		sampleMu     sync.Mutex
		sampled      = make(chan int64, 2)
		wg           sync.WaitGroup
	)
	loaded := &phase{start: time.Now()}
	current.Store(loaded)
	// The worker that completes admission check or n asks for a reading; it is taken while the others carry on.
	// gate pauses the clients for a reading: each request holds it shared, a reading exclusively, so readings at
	// the checkpoints are taken with the clients' connections open and no request in flight, alike at each.
	var gate sync.RWMutex
	go func() {
		for at := range sampled {
			gate.Lock()
			smp, err := settled()
			gate.Unlock()
			sampleMu.Lock()
			samples[at], sampleErr = smp, cmpErr(sampleErr, err)
			sampleMu.Unlock()
			fmt.Printf("  %7d admissions: VmRSS %s, %0.f goroutines\n", at, loadenv.MiB(smp.rss), smp.goroutines)
		}
	}()
	reached := make(chan struct{})
	for range o.clients {
		wg.Go(func() {
			for !stop.Load() {
				i := issued.Add(1) - 1
				body := request(i)
				gate.RLock()
				p := current.Load()
				t0 := time.Now()
				resp, err := loadenv.Admit(s.Client, validate, body)
				d := time.Since(t0)
				gate.RUnlock()
				if err == nil && !resp.Allowed {
					err = fmt.Errorf("denied: %s", message(resp))
				}
				if err == nil && d >= o.budget {
					err = fmt.Errorf("answered in %s, over the budget", d)
				}
				p.record(d, err)
				switch n := done.Add(1); n {
				case int64(o.check):
					sampled <- n
				case int64(o.n):
					sampled <- n
					close(reached)
				}
			}
		})
	}
	fmt.Printf("%d admissions from %d clients ...\n", o.n, o.clients)
	// Under load, the most goroutines and the largest RSS seen, once a second.
	var busy sample
	busyDone := make(chan struct{})
	go func() {
		defer close(busyDone)
		for {
			select {
			case <-reached:
				return
			case <-time.After(time.Second):
			}
			if smp, err := read(); err == nil {
				busy.rss, busy.goroutines = max(busy.rss, smp.rss), max(busy.goroutines, smp.goroutines)
				busy.heapLive = max(busy.heapLive, smp.heapLive)
			}
		}
	}()
	<-reached
	<-busyDone
	// Let the reading at n finish before the registry changes.
	for {
		sampleMu.Lock()
		_, ok := samples[int64(o.n)]
		sampleMu.Unlock()
		if ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	loaded.end = time.Now()
	// The registry stalls; the clients carry on with cached images, and cold images are tried one client each.
	stalled := &phase{start: time.Now()}
	current.Store(stalled)
	before := e.Reg.Requests()
	e.Reg.Stall(true)
	fmt.Printf("registry stalled for %s: cached admissions carry on, %d clients try images not verified before ...\n", o.stall, o.cold)
	type coldResult struct {
		latency time.Duration
		message string
		allowed bool
		err     error
	}
	var coldMu sync.Mutex
	var coldResults []coldResult
	var coldWG sync.WaitGroup
	stallEnd := time.Now().Add(o.stall)
	for j, img := range cold {
		coldWG.Go(func() {
			for try := 0; time.Now().Add(o.budget).Before(stallEnd) || try == 0; try++ {
				body := loadenv.Review(fmt.Sprintf("cold-%d-%d", j, try), loadenv.Pod(fmt.Sprintf("cold-%d", j), img.Pinned))
				t0 := time.Now()
				resp, err := loadenv.Admit(s.Client, validate, body)
				r := coldResult{latency: time.Since(t0), err: err}
				if err == nil {
					r.allowed, r.message = resp.Allowed, message(resp)
				}
				coldMu.Lock()
				coldResults = append(coldResults, r)
				coldMu.Unlock()
			}
		})
	}
	coldWG.Wait()
	time.Sleep(time.Until(stallEnd))
	during, err := read()
	if err != nil {
		return err
	}
	stalled.end = time.Now()
	stallRequests := e.Reg.Requests() - before

	// The registry recovers: the cold images are admitted now (a registry that did not answer is never cached).
	recovered := &phase{start: time.Now()}
	current.Store(recovered)
	e.Reg.Stall(false)
	var recoverErrs []string
	for j, img := range cold {
		resp, err := loadenv.Admit(s.Client, validate, loadenv.Review(fmt.Sprintf("cold-%d-after", j), loadenv.Pod(fmt.Sprintf("cold-%d", j), img.Pinned)))
		switch {
		case err != nil:
			recoverErrs = append(recoverErrs, err.Error())
		case !resp.Allowed:
			recoverErrs = append(recoverErrs, img.Pinned+": "+message(resp))
		}
	}
	time.Sleep(o.tail)
	stop.Store(true)
	wg.Wait()
	recovered.end = time.Now()
	close(sampled)
	s.Client.CloseIdleConnections()
	// Idle again: wait (up to 60 s) for the goroutines to come back to the baseline.
	var after sample
	settle := time.Now()
	for {
		if after, err = settled(); err != nil {
			return err
		}
		if after.goroutines <= baseline.goroutines || time.Since(settle) > 60*time.Second {
			break
		}
		time.Sleep(time.Second)
	}
	settledIn := time.Since(settle).Round(time.Second)

	sampleMu.Lock()
	at10, atN := samples[int64(o.check)], samples[int64(o.n)]
	sampleMu.Unlock()
	if sampleErr != nil {
		return sampleErr
	}
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }

	fmt.Printf("\n%-34s %10s %7s %8s %9s %9s %9s %10s %10s %10s\n", "checkpoint", "admissions", "errors", "req/s", "p50", "p99", "max", "VmRSS", "heap live", "goroutines")
	row := func(name string, n, errs int, rps float64, p50, p99, maxLat time.Duration, smp *sample) {
		cols := []string{fmt.Sprintf("%-34s %10d %7d", name, n, errs)}
		switch {
		case p50 == 0:
			cols = append(cols, fmt.Sprintf("%8s %9s %9s %9s", "", "", "", ""))
		case rps == 0:
			cols = append(cols, fmt.Sprintf("%8s %9s %9s %9s", "", ms(p50), ms(p99), ms(maxLat)))
		default:
			cols = append(cols, fmt.Sprintf("%8.0f %9s %9s %9s", rps, ms(p50), ms(p99), ms(maxLat)))
		}
		if smp != nil {
			cols = append(cols, fmt.Sprintf("%10s %10s %10.0f", loadenv.MiB(smp.rss), loadenv.MiB(smp.heapLive), smp.goroutines))
		}
		fmt.Println(strings.Join(cols, " "))
	}
	row("idle after warm-up", len(warm), 0, 0, 0, 0, 0, &baseline)
	n, errs, rps, p50, p99, maxLat := loaded.stats()
	row(fmt.Sprintf("at %d admissions", o.check), o.check, 0, 0, 0, 0, 0, &at10)
	row(fmt.Sprintf("at %d admissions", o.n), n, errs, rps, p50, p99, maxLat, &atN)
	row("  under load, largest of 1/s", 0, 0, 0, 0, 0, 0, &busy)
	if errs > 0 {
		fail("%d of %d admissions with a warm cache failed; the first: %v", errs, n, loaded.firstErr)
	}
	if r := ratio(atN.rss, at10.rss); r > 0.10 {
		fail("VmRSS grew %.1f%% from %d to %d admissions (%s -> %s)", 100*r, o.check, o.n, loadenv.MiB(at10.rss), loadenv.MiB(atN.rss))
	}
	if r := ratio(atN.goroutines, at10.goroutines); r > 0.10 || r < -0.10 {
		fail("goroutines changed %.1f%% from %d to %d admissions (%.0f -> %.0f)", 100*r, o.check, o.n, at10.goroutines, atN.goroutines)
	}
	n, errs, rps, p50, p99, maxLat = stalled.stats()
	row(fmt.Sprintf("registry stalled %s: cached", o.stall), n, errs, rps, p50, p99, maxLat, &during)
	if errs > 0 || n == 0 {
		fail("%d of %d cached admissions failed while the registry stalled; the first: %v", errs, n, stalled.firstErr)
	}
	coldPhase := &phase{start: stalled.start, end: stalled.end}
	host := "registry " + e.Reg.Host() + " did not answer within"
	var example string
	for _, r := range coldResults {
		var err error
		switch {
		case r.err != nil:
			err = r.err
		case r.allowed:
			err = fmt.Errorf("an image not verified before was admitted while its registry stalled")
		case !strings.Contains(r.message, host):
			err = fmt.Errorf("the denial does not name the registry (%q): %s", host, r.message)
		case r.latency >= o.budget:
			err = fmt.Errorf("denied in %s, beyond the budget of %s", r.latency, o.budget)
		}
		coldPhase.record(r.latency, err)
		example = r.message
	}
	n, errs, _, p50, p99, maxLat = coldPhase.stats()
	row(fmt.Sprintf("registry stalled %s: cold (denied)", o.stall), n, errs, 0, p50, p99, maxLat, nil)
	if errs > 0 || n == 0 {
		fail("%d of %d admissions of cold images while the registry stalled were not denied as they should be; the first: %v", errs, n, coldPhase.firstErr)
	}
	n, errs, rps, p50, p99, maxLat = recovered.stats()
	row("registry recovered", n, errs+len(recoverErrs), rps, p50, p99, maxLat, nil)
	if errs > 0 || len(recoverErrs) > 0 {
		fail("after the registry recovered: %d cached admissions failed (the first: %v), cold images not admitted: %v", errs, recovered.firstErr, recoverErrs)
	}
	row(fmt.Sprintf("idle after recovery (+%s)", settledIn), 0, 0, 0, 0, 0, 0, &after)
	if after.goroutines > baseline.goroutines {
		fail("goroutines did not come back to the baseline: %.0f idle after recovery, %.0f idle after the warm-up", after.goroutines, baseline.goroutines)
	}
	fmt.Printf("\nregistry requests while stalled: %d (none answered); total admissions %d; peak VmHWM %s\n", stallRequests, done.Load()+int64(len(coldResults)+len(cold)), loadenv.MiB(after.hwm))
	fmt.Printf("a cold image's denial: %s\n", example)
	fmt.Printf("VmRSS %d -> %d admissions: %+.1f%%; goroutines: %+.1f%%\n", o.check, o.n, 100*ratio(atN.rss, at10.rss), 100*ratio(atN.goroutines, at10.goroutines))
	if len(failures) > 0 {
		return fmt.Errorf("FAIL:\n  %s\n(serve's log: %s)", strings.Join(failures, "\n  "), s.LogPath)
	}
	fmt.Println("PASS")
	return nil
}

// message is a response's status message ("" when it has none).
func message(r *admissionv1.AdmissionResponse) string {
	if r.Result == nil {
		return ""
	}
	return r.Result.Message
}

func ratio(now, then float64) float64 { return (now - then) / then }

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}
