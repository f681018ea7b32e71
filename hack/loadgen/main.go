// Command loadgen measures what an admission costs the webhook, over HTTPS on loopback, in two parts.
//
// Latency: it serves /validate with the pipeline `attest serve` runs — the whole embedded library under the shipped
// example config (examples/policies.yaml), image verification against an in-memory registry of signed and
// attested images with the verdict cache warm, metrics and the JSON decision log — and a no-op handler, both
// behind the webhook's TLS server, and sends each the same CREATE of a compliant 3-container Deployment (mutated
// first, as the API server would, so it carries its receipt). "validate" runs every policy on every request (the
// policies' memo off: the cost of a pod template the webhook has not seen); "repeat" is the same pipeline with the
// memo on, what the further Pods of a ReplicaSet cost. One client at a time gives latency without
// queueing (the p99 ratio the product brief sets); -c clients at once give throughput. The clients run in
// loadgen (-client inprocess) or in a child process (-client process), as the API server runs apart from a webhook. Targets alternate in
// rounds, and each figure is the median of the rounds. -traced adds "traced": the validate pipeline with
// OpenTelemetry tracing on (-trace-ratio of the admissions sampled), exporting over OTLP/gRPC to a receiver that
// runs, by default, in a child process (loadgen itself, as `loadgen otlp-receiver`), as a collector runs beside
// attest serve.
//
// Memory (-cache N): it pushes N signed and attested images, starts the attest binary (-attest) as `attest serve`
// with --verify-cache-size N, admits a Pod of each image so that N verdicts are cached, and reports the serve
// process's resident memory (VmRSS, and VmHWM, its peak) and Go heap.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == clientCommand {
		if err := runClient(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen client:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) >= 4 && os.Args[1] == serverCommand {
		serveLikeAttest()
		crlog.SetLogger(logr.Discard())
		if err := runServer(os.Args[2], os.Args[3], os.Args[4:]...); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen server:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) >= 2 && os.Args[1] == receiverCommand {
		if err := runReceiver(len(os.Args) == 3 && os.Args[2] == discardArg); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen otlp-receiver:", err)
			os.Exit(1)
		}
		return
	}
	o := options{}
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "load per target and round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each target runs once per round, alternating (0: only the memory part)")
	flag.IntVar(&o.workers, "c", 8, "concurrent clients of the throughput runs (latency runs use one; 1: no throughput runs)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up per target, not measured")
	flag.StringVar(&o.example, "config", "examples/policies.yaml", "the example config whose policies /validate runs")
	flag.IntVar(&o.cache, "cache", 0, "memory part: N verdicts to cache in an attest serve process (0: skip)")
	flag.StringVar(&o.attest, "attest", "bin/attest-full", "the attest binary of the memory part (the full build: it runs attest serve)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the one-client runs of -profile-target to this file (with -server process: of its server process's whole life, to this path)")
	flag.StringVar(&o.heapprofile, "heapprofile", "", "write a profile of the live heap after the setup (the pipelines loaded, before any load) to this file (with -server process: of -profile-target's server process at its end)")
	flag.StringVar(&o.allocprofile, "allocprofile", "", "with -server process: write a profile of every allocation of -profile-target's server process to this file")
	flag.StringVar(&o.serverGOGC, "server-gogc", "", "with -server process: the server processes' GC percentage, their soft memory limit still attest serve's (default: attest serve's percentage, webhook.GCPercent)")
	flag.StringVar(&o.profileTarget, "profile-target", "validate", "the target -cpuprofile profiles (validate, repeat, traced)")
	flag.Float64Var(&o.traceRatio, "trace-ratio", 1, "the share of admissions the traced target traces (attest serve --otlp-sample-ratio); 0: the traced target is a second untraced pipeline, an A/A control that shows the noise of the comparison")
	flag.StringVar(&o.client, "client", "inprocess", "where the clients run: \"inprocess\" (goroutines of loadgen: their TLS, HTTP and garbage share the webhook's heap and collector) or \"process\" (a child process, as the API server is another process than the webhook: every exchange then wakes a thread of each process)")
	flag.StringVar(&o.server, "server", "inprocess", "where the webhook targets run: \"inprocess\" (in loadgen: every target's pipeline, the registry and, with -client inprocess, the clients share one heap and collector) or \"process\" (each target in a child process of its own, one pipeline in its heap as in attest serve's)")
	flag.BoolVar(&o.serve, "serve", false, "with -server process: add the target \"serve\", an `attest serve` process of -attest with the example config")
	flag.StringVar(&o.servePprof, "serve-pprof", "", "with -serve: HOST:PORT where the attest serve target serves Go's profiles (--pprof-bind-address), to profile it while the runs load it")
	flag.BoolVar(&o.traced, "traced", false, "add the target \"traced\": the validate pipeline with OpenTelemetry tracing on, each sampled admission's spans exported over OTLP/gRPC on loopback (attest serve --otlp-endpoint) to the -otlp-receiver")
	flag.IntVar(&o.receiverNice, "otlp-receiver-nice", 0, "run the receiver process of -otlp-receiver process|discard at this nice value (1-19: it yields the two cores to the webhook and the client, nearer a collector on another machine; 0: the same priority)")
	flag.StringVar(&o.receiver, "otlp-receiver", "process", "where the OTLP/gRPC receiver of -traced runs: \"process\" (a child process that decodes every span, as a collector beside attest serve on the same cores), \"discard\" (a child process that reads each export and discards it undecoded: the exporter's cost without a collector's, as with the collector on another machine) or \"inprocess\" (in loadgen, its CPU and garbage counted against the traced target)")
	flag.Parse()
	crlog.SetLogger(logr.Discard()) // the webhook servers' certificate watchers log through controller-runtime
	serveLikeAttest()
	t := &loadenv.TB{}
	err := run(t, o)
	t.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// serveLikeAttest sets the collector as `attest serve` does (webhook.GCPercent, webhook.MemoryLimit), unless GOGC
// or GOMEMLIMIT say otherwise; a server process takes the GC percentage of -server-gogc from serverGOGCEnv.
func serveLikeAttest() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	percent := webhook.GCPercent
	if v := os.Getenv(serverGOGCEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: %s=%q: %v\n", serverGOGCEnv, v, err)
			os.Exit(2)
		}
		percent = n
	}
	debug.SetGCPercent(percent)
	debug.SetMemoryLimit(webhook.MemoryLimit)
}

// serverGOGCEnv passes -server-gogc to the server processes.
const serverGOGCEnv = "LOADGEN_SERVER_GOGC"

type options struct {
	duration, warmup time.Duration
	rounds, workers  int
	example          string
	cache            int
	attest           string
	cpuprofile       string
	allocprofile     string
	serverGOGC       string
	heapprofile      string
	profileTarget    string
	traced           bool
	serve            bool
	servePprof       string
	traceRatio       float64
	receiver         string
	receiverNice     int
	client           string
	server           string
}

func run(t *loadenv.TB, o options) error {
	ctx := context.Background()
	e, err := loadenv.NewEnv(t, o.example, loadenv.Options{})
	if err != nil {
		return err
	}
	images := [3]string{e.Push("team/migrate").Tagged, e.Push("team/app").Tagged, e.Push("team/proxy").Tagged}
	p, err := newPipeline(e, 1024, false, nil)
	if err != nil {
		return err
	}
	repeat, err := newPipeline(e, 1024, true, nil)
	if err != nil {
		return err
	}
	obj, err := p.mutated(ctx, loadenv.Deployment("web", images))
	if err != nil {
		return err
	}
	body := loadenv.Review("0b1c2d3e", obj)
	if err := p.describe(ctx, obj); err != nil {
		return err
	}
	targets := []target{{name: "noop", h: noop}, {name: "validate", h: p.validate}, {name: "repeat", h: repeat.validate}}
	switch o.server {
	case "inprocess":
	case "process":
		if o.traced {
			return fmt.Errorf("-server process serves noop, validate and repeat only: leave out -traced")
		}
		for i := range targets {
			var profiles []string
			if targets[i].name == o.profileTarget {
				if o.cpuprofile != "" {
					profiles = append(profiles, "cpu="+o.cpuprofile)
				}
				if o.allocprofile != "" {
					profiles = append(profiles, "allocs="+o.allocprofile)
				}
				if o.heapprofile != "" {
					profiles = append(profiles, "heap="+o.heapprofile)
				}
			}
			if targets[i].s, targets[i].pid, err = startServer(ctx, t, e, targets[i].name, o.serverGOGC, profiles...); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("-server %q: want process or inprocess", o.server)
	}
	var nb *numbered
	if o.serve {
		if o.server != "process" {
			return fmt.Errorf("-serve needs -server process")
		}
		if nb, err = numberedReview(obj); err != nil {
			return err
		}
		var args []string
		if o.servePprof != "" {
			args = append(args, "--pprof-bind-address", o.servePprof)
		}
		s, err := e.StartServe(ctx, o.attest, args...)
		if err != nil {
			return err
		}
		t.Cleanup(s.Stop)
		served := &webhooktest.Served{URL: s.Base, Client: s.Client, Pool: s.Pool, CertDir: s.CertDir}
		if err := sameAnswer(served, nb, targets[1].s, body); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		targets = append(targets, target{name: "serve", s: served, numbered: true, pid: s.PID, process: s})
	}
	var sink spanCounter
	if o.traced {
		traced, s, err := tracedPipeline(ctx, t, e, o.traceRatio, o.receiver, o.receiverNice)
		if err != nil {
			return err
		}
		sink = s
		targets = append(targets, target{name: "traced", h: traced.validate})
	}
	for i := range targets {
		if targets[i].s == nil {
			targets[i].s = webhooktest.Serve(t, webhook.ServerOptions{Validate: targets[i].h, Mutate: targets[i].h})
		}
		if err := check(targets[i].s, body); err != nil {
			return fmt.Errorf("%s: %w", targets[i].name, err)
		}
	}
	if o.heapprofile != "" && o.server == "inprocess" {
		if err := heapProfile(o.heapprofile); err != nil {
			return err
		}
	}
	driveOn := func(s *webhooktest.Served, numbered bool, workers int, d time.Duration) (result, error) {
		if numbered {
			return drive(s, body, nb, workers, d)
		}
		return drive(s, body, nil, workers, d)
	}
	switch o.client {
	case "inprocess":
	case "process":
		c, err := startClient(t.TempDir(), body, nb)
		if err != nil {
			return err
		}
		defer func() { _ = c.stop() }()
		driveOn = c.drive
	default:
		return fmt.Errorf("-client %q: want process or inprocess", o.client)
	}
	fmt.Printf("loopback HTTPS through webhook.Server, body %d bytes, %d rounds of %s per target after %s warm-up, clients in %s, targets in %s\n",
		len(body), o.rounds, o.duration, o.warmup, map[string]string{"process": "a child process", "inprocess": "loadgen"}[o.client],
		map[string]string{"process": "a child process each", "inprocess": "loadgen"}[o.server])
	clients := []int{1, o.workers}
	switch {
	case o.rounds == 0: // the memory part only
		clients = nil
	case o.workers <= 1: // the one-client latency only
		clients = clients[:1]
	}
	for _, workers := range clients {
		fmt.Printf("\n%d client(s):\n%-10s %9s %9s %9s %9s %9s\n", workers, "target", "req/s", "p50", "p90", "p99", "p99.9")
		res := make([][]result, len(targets))
		costs := make([]processCost, len(targets))
		for i := range targets {
			if _, err := driveOn(targets[i].s, targets[i].numbered, workers, o.warmup); err != nil {
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
		}
		for range o.rounds {
			for i := range targets {
				stop := func() {}
				if o.cpuprofile != "" && o.server == "inprocess" && workers == 1 && targets[i].name == o.profileTarget {
					if stop, err = profile(o.cpuprofile); err != nil {
						return err
					}
				}
				drive := func() (result, error) { return driveOn(targets[i].s, targets[i].numbered, workers, o.duration) }
				var r result
				if targets[i].pid != 0 && workers == 1 {
					r, err = costs[i].measure(&targets[i], drive)
				} else {
					r, err = drive()
				}
				stop()
				if err != nil {
					return fmt.Errorf("%s: %w", targets[i].name, err)
				}
				res[i] = append(res[i], r)
			}
		}
		med := make([]result, len(targets))
		for i, tg := range targets {
			med[i] = median(res[i])
			fmt.Printf("%-10s %9.0f %9s %9s %9s %9s   p99 by round: %s\n", tg.name, med[i].RPS, us(med[i].P50), us(med[i].P90), us(med[i].P99), us(med[i].P999), p99s(res[i]))
		}
		if sink != nil {
			n, err := sink.count()
			if err != nil {
				return err
			}
			unit := "spans"
			if o.receiver == "discard" {
				unit = "bytes"
			}
			fmt.Printf("traced/validate (ratio %v, receiver %s): p50 %.3fx, p99 %.3fx; paired by round (median of each round's ratio): p50 %.3fx, p99 %.3fx (%d %s received by the OTLP receiver so far)\n",
				o.traceRatio, o.receiver+niceLabel(o.receiverNice), float64(med[3].P50)/float64(med[1].P50), float64(med[3].P99)/float64(med[1].P99),
				pairedRatio(res[3], res[1], func(r result) time.Duration { return r.P50 }),
				pairedRatio(res[3], res[1], func(r result) time.Duration { return r.P99 }), n, unit)
		}
		for i, tg := range targets {
			if costs[i].requests > 0 {
				fmt.Printf("%s process, over the measured rounds: %s\n", tg.name, &costs[i])
			}
		}
		fmt.Printf("validate/noop: p50 %.2fx, p99 %.2fx; repeat/noop: p50 %.2fx, p99 %.2fx\n",
			float64(med[1].P50)/float64(med[0].P50), float64(med[1].P99)/float64(med[0].P99),
			float64(med[2].P50)/float64(med[0].P50), float64(med[2].P99)/float64(med[0].P99))
		for i, tg := range targets {
			if tg.name == "serve" {
				fmt.Printf("serve/noop (attest serve, each Deployment new to it): p50 %.2fx, p99 %.2fx\n",
					float64(med[i].P50)/float64(med[0].P50), float64(med[i].P99)/float64(med[0].P99))
			}
		}
	}
	if o.cache > 0 {
		return memory(ctx, e, o)
	}
	return nil
}

type target struct {
	name string
	h    http.Handler
	s    *webhooktest.Served
	// numbered targets are posted a numbered body (see numbered): attest serve, whose memo is always on
	numbered bool
	// pid is the target's server process (with -server process); process is the target "serve"'s, whose metrics
	// say what each admission cost it
	pid     int
	process *loadenv.Serve
}

// processCost sums what a server process spent over the measured rounds, from its metrics before and after each.
type processCost struct {
	requests              int
	cpu, alloc, gcs, gcNs float64
}

var costSeries = []string{"", "go_memstats_alloc_bytes_total", "go_gc_duration_seconds_count", "go_gc_duration_seconds_sum"}

// measure runs drive and adds to c what the target's process spent meanwhile: CPU from /proc, and with the
// target serve's metrics its allocation and collections.
func (c *processCost) measure(tg *target, drive func() (result, error)) (result, error) {
	scrape := func() (map[string]float64, error) {
		if tg.process == nil {
			return map[string]float64{}, nil
		}
		return tg.process.Scrape(costSeries[1:]...)
	}
	cpu0, err := loadenv.ProcCPU(tg.pid)
	if err != nil {
		return result{}, err
	}
	before, err := scrape()
	if err != nil {
		return result{}, err
	}
	r, err := drive()
	if err != nil {
		return r, err
	}
	after, err := scrape()
	if err != nil {
		return r, err
	}
	cpu1, err := loadenv.ProcCPU(tg.pid)
	if err != nil {
		return r, err
	}
	c.requests += r.Requests
	c.cpu += (cpu1 - cpu0).Seconds()
	c.alloc += after[costSeries[1]] - before[costSeries[1]]
	c.gcs += after[costSeries[2]] - before[costSeries[2]]
	c.gcNs += (after[costSeries[3]] - before[costSeries[3]]) * 1e9
	return r, nil
}

func (c *processCost) String() string {
	n := float64(c.requests)
	s := fmt.Sprintf("%.0f us CPU per admission", c.cpu/n*1e6)
	if c.alloc > 0 {
		s += fmt.Sprintf(", %.1f KiB allocated, %.2f collections per 1,000 admissions (stop-the-world pauses %.0f us each)",
			c.alloc/n/1024, c.gcs/n*1000, c.gcNs/max(c.gcs, 1)/1e3)
	}
	return s
}

// describe evaluates the request and prints what each policy decided and its mean time in the pipeline (without
// HTTP), so the figures say what they cover and where the time goes.
func (p *pipeline) describe(ctx context.Context, obj map[string]any) error {
	in := admission.ObjectInput(obj, "shop", time.Now())
	d := p.eval.Evaluate(ctx, in)
	if !d.Allowed || len(d.Warnings) > 0 {
		return fmt.Errorf("the Deployment is not admitted cleanly: %s %v", d.Message, d.Warnings)
	}
	const n = 3000
	total := time.Duration(0)
	per := map[string]time.Duration{}
	all := make([]time.Duration, 0, n)
	for range n {
		d := p.eval.Evaluate(ctx, in)
		total += d.Duration
		all = append(all, d.Duration)
		for _, r := range d.Results {
			per[r.Policy] += r.Duration
		}
	}
	var ran []string
	var sum time.Duration
	for _, r := range d.Results {
		ran = append(ran, fmt.Sprintf("%s %s %s %s", r.Policy, r.Mode, r.Outcome, us(per[r.Policy]/n)))
		sum += per[r.Policy] / n
	}
	var off []string
	for _, pol := range p.cfg.Engine.Policies() {
		if s := p.cfg.Policies[pol.Name]; s.Mode == "off" {
			off = append(off, pol.Name)
		}
	}
	slices.Sort(all)
	fmt.Printf("/validate runs %d policies, all passing (off in the config: %s); mean of %d evaluations without HTTP:\n  %s\n  policies %s, whole pipeline %s (p50 %s, p99 %s)\n",
		len(d.Results), strings.Join(off, ", "), n, strings.Join(ran, "\n  "), us(sum), us(total/n), us(all[n/2]), us(all[n*99/100]))
	return nil
}

// result is a run's figures; the client process sends them as JSON.
type result struct {
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50"`
	P90      time.Duration `json:"p90"`
	P99      time.Duration `json:"p99"`
	P999     time.Duration `json:"p999"`
	Requests int           `json:"requests"`
}

func median(rs []result) result {
	pick := func(f func(result) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rps := make([]float64, len(rs))
	for i, r := range rs {
		rps[i] = r.RPS
	}
	sort.Float64s(rps)
	return result{RPS: rps[len(rps)/2],
		P50: pick(func(r result) time.Duration { return r.P50 }), P90: pick(func(r result) time.Duration { return r.P90 }),
		P99: pick(func(r result) time.Duration { return r.P99 }), P999: pick(func(r result) time.Duration { return r.P999 })}
}

// pairedRatio is the median over rounds of a's figure over b's in the same round: the targets of a round run
// seconds apart, so a pair shares the machine's load of the moment better than the medians of all rounds do.
func pairedRatio(a, b []result, f func(result) time.Duration) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = float64(f(a[i])) / float64(f(b[i]))
	}
	sort.Float64s(r)
	return r[len(r)/2]
}

func p99s(rs []result) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = us(r.P99)
	}
	return strings.Join(s, " ")
}

// profile starts a CPU profile appended to the profiles of earlier rounds (pprof merges files given together:
// each round writes path.<n>).
func profile(path string) (func(), error) {
	profiles++
	f, err := os.Create(fmt.Sprintf("%s.%d", path, profiles))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

var profiles int

// heapProfile writes a profile of the live heap, after a collection, to path.
func heapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }
