// Package audit evaluates what already runs in the cluster through the admission pipeline, as a CREATE marked
// background, and reports it: PolicyReports per namespace (wgpolicyk8s.io/v1alpha2), metrics, and
// PolicyExceptionDrafts for the workloads a policy rollout would start to deny. It lists page by page, folds Pods
// and ReplicaSets into the workload that owns them, evaluates with bounded concurrency, and holds at most one
// namespace's report (itself at most MaxReportBytes) at a time, so its memory does not grow with the cluster.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// DefaultSkipNamespaces are the namespaces the shipped webhook configurations exclude.
var DefaultSkipNamespaces = []string{"kube-system", "attest-system"}

// Evaluator is the pipeline as the audit needs it.
type Evaluator interface {
	Evaluate(ctx context.Context, in admission.Input) admission.Decision
}

var _ Evaluator = (*admission.Evaluator)(nil)

// Sink receives a namespace's reports in order, then how many it has (the ones beyond are stale).
type Sink interface {
	Write(ctx context.Context, r *Report) error
	Finish(ctx context.Context, namespace string, reports int) error
}

// Observer receives each evaluated top object's violations, for what is kept beside the reports (drafts).
type Observer interface {
	// Begin starts a run; Namespace is called before a namespace's objects, Object for each top object (from one
	// goroutine), NamespaceDone after them.
	Begin()
	Namespace(ns string)
	Object(ref Ref, d *admission.Decision)
	NamespaceDone(ctx context.Context, ns string) error
}

// Options configure an Auditor.
type Options struct {
	Source    Source
	Evaluator Evaluator
	// Config is the configuration in force (the policies' metadata and modes).
	Config func() *config.Config
	// Engine is the policy catalogue when the configuration carries none of its own.
	Engine *policies.Engine
	Sink   Sink
	// Observer is optional.
	Observer Observer
	// Namespace limits the audit to one namespace; empty audits every namespace but SkipNamespaces.
	Namespace string
	// SkipNamespaces are namespaces the webhooks do not cover (DefaultSkipNamespaces, as manifests/base's
	// namespaceSelector): admission never judges their objects, so neither does the audit.
	SkipNamespaces []string
	// Workers bounds concurrent evaluations (default GOMAXPROCS): with the verifier's cache in front, a registry
	// outage costs at most Workers requests in flight, never one per object.
	Workers int
	// MaxReportBytes splits reports (default MaxReportBytes).
	MaxReportBytes int
	Clock          clock.PassiveClock
	Log            *slog.Logger
}

// Auditor runs audits; one run at a time.
type Auditor struct {
	o  Options
	mu sync.Mutex
}

// New validates options.
func New(o Options) (*Auditor, error) {
	switch {
	case o.Source == nil:
		return nil, errors.New("audit: a source is required")
	case o.Evaluator == nil:
		return nil, errors.New("audit: an evaluator is required")
	case o.Config == nil:
		return nil, errors.New("audit: a config source is required")
	case o.Engine == nil:
		return nil, errors.New("audit: an engine is required")
	case o.Sink == nil:
		return nil, errors.New("audit: a sink is required")
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxReportBytes <= 0 {
		o.MaxReportBytes = MaxReportBytes
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Auditor{o: o}, nil
}

// Stats is what one run did.
type Stats struct {
	Namespaces, Objects, Folded, Reports int
	Summary                              Summary
	// Violations counts fail and warn results by policy, namespace and mode.
	Violations map[ViolationKey]int
	Duration   time.Duration
	// Evaluating is the time spent in the pipeline, summed over the workers; Writing the time spent writing
	// reports and drafts (where the rest of Duration goes is listing).
	Evaluating, Writing time.Duration
}

// ViolationKey labels attest_audit_violations.
type ViolationKey struct{ Policy, Namespace, Mode string }

// Run audits every namespace (or Options.Namespace) once.
func (a *Auditor) Run(ctx context.Context) (Stats, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.o.Clock.Now()
	st := Stats{Violations: map[ViolationKey]int{}}
	namespaces, err := a.o.Source.Namespaces(ctx)
	if err != nil {
		return st, err
	}
	cfg := a.o.Config()
	if cfg == nil {
		return st, errors.New("audit: no configuration loaded")
	}
	engine := a.o.Engine
	if cfg.Engine != nil {
		engine = cfg.Engine
	}
	meta := func(name string) *policies.Metadata {
		if p, ok := engine.Lookup(name); ok {
			return &p.Metadata
		}
		return nil
	}
	if a.o.Observer != nil {
		a.o.Observer.Begin()
	}
	var errs []error
	for _, ns := range namespaces {
		if (a.o.Namespace != "" && ns.Name != a.o.Namespace) || (a.o.Namespace == "" && slices.Contains(a.o.SkipNamespaces, ns.Name)) {
			continue
		}
		if err := a.namespace(ctx, ns, meta, &st); err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			if namespaceGone(err, ns.Name) {
				// Deleted while the audit ran: nothing left to report on, and no failure of the audit.
				a.o.Log.Info("namespace deleted during the audit", "namespace", ns.Name)
				continue
			}
			a.o.Log.Error("audit of a namespace failed", "namespace", ns.Name, "error", err.Error())
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns.Name, err))
		}
		st.Namespaces++
	}
	st.Duration = a.o.Clock.Since(start)
	return st, errors.Join(errs...)
}

// namespaceGone reports whether err says that namespace name no longer exists or is being deleted.
func namespaceGone(err error, name string) bool {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return true
	}
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces" && d.Name == name
}

// item is one top object to evaluate.
type item struct {
	ref Ref
	in  admission.Input
}

// namespace audits one namespace: the kinds are listed in order on this goroutine (so owners are known before
// what they own), top objects are evaluated by the workers, and their results are added to the namespace's
// reports by one collector, in the order they finish.
func (a *Auditor) namespace(ctx context.Context, ns Namespace, meta func(string) *policies.Metadata, st *Stats) error {
	now := a.o.Clock.Now()
	chunks := newChunker(ns.Name, a.o.MaxReportBytes, func(r *Report) error {
		t0 := a.o.Clock.Now()
		defer func() { st.Writing += a.o.Clock.Since(t0) }()
		return a.o.Sink.Write(ctx, r)
	})
	if a.o.Observer != nil {
		a.o.Observer.Namespace(ns.Name)
	}
	items := make(chan item, a.o.Workers)
	type evaluated struct {
		ref  Ref
		d    admission.Decision
		took time.Duration
	}
	done := make(chan evaluated, a.o.Workers)
	g, gctx := errgroup.WithContext(ctx)
	var workers sync.WaitGroup
	for range a.o.Workers {
		workers.Go(func() {
			for it := range items {
				t0 := a.o.Clock.Now()
				d := a.o.Evaluator.Evaluate(gctx, it.in)
				done <- evaluated{it.ref, d, a.o.Clock.Since(t0)}
			}
		})
	}
	go func() { workers.Wait(); close(done) }()
	g.Go(func() error {
		for ev := range done {
			st.Evaluating += ev.took
			if a.o.Observer != nil {
				a.o.Observer.Object(ev.ref, &ev.d)
			}
			for _, r := range results(ev.ref, &ev.d, meta, now) {
				st.Summary.add(r.Result)
				if r.Result == ResultFail || r.Result == ResultWarn {
					st.Violations[ViolationKey{r.Policy, ns.Name, r.Props["mode"]}]++
				}
				if err := chunks.add(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(items)
		fold := newFolder()
		for _, k := range Kinds {
			err := a.o.Source.List(gctx, k, ns.Name, func(obj map[string]any) error {
				ref, folded := fold.add(k, obj)
				st.Objects++
				if folded {
					st.Folded++
					return nil
				}
				in := admission.ObjectInput(obj, ns.Name, now)
				in.Request.Background = true
				in.NamespaceLabels, in.NamespaceAnnotations = ns.Labels, ns.Annotations
				select {
				case items <- item{ref: ref, in: in}:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		// Keep the namespace's previous reports: a partial audit would report violations as gone.
		for range done { // let the workers end
		}
		return err
	}
	n, err := chunks.finish()
	if err != nil {
		return err
	}
	st.Reports += n
	t0 := a.o.Clock.Now()
	defer func() { st.Writing += a.o.Clock.Since(t0) }()
	if err := a.o.Sink.Finish(ctx, ns.Name, n); err != nil {
		return err
	}
	if a.o.Observer != nil {
		return a.o.Observer.NamespaceDone(ctx, ns.Name)
	}
	return nil
}
