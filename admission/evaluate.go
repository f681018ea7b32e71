// Package admission is the one decision path: an admission request (or a manifest read by the CLI) goes in, a
// Decision comes out. It holds no HTTP and no cluster client, so the webhook and `attest policy check` can
// never disagree.
package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workload"
)

// Policies convert the objects admitted: the field names workload objects hold share their Rego terms.
func init() { policies.InternNames(workload.FieldNames...) }

// Request describes who asks for what, when: exactly input.request of the policies' input contract.
type Request = policies.Request

// Input is one request to decide.
type Input struct {
	Request   Request
	Object    map[string]any
	OldObject map[string]any
	// NamespaceLabels and NamespaceAnnotations are the namespace's metadata when the caller knows it (nil in the
	// CLI, which knows only names).
	NamespaceLabels      map[string]string
	NamespaceAnnotations map[string]string
}

// Options configure an Evaluator.
type Options struct {
	Engine *policies.Engine
	// Config returns the current configuration; it is called once per request, so reloads apply to the next one.
	Config func() *config.Config
	// Mode, when audit, downgrades every enforced policy to audit (a safe first install); empty keeps per-policy modes.
	Mode policies.Mode
	// Clock measures durations; nil means the real clock.
	Clock clock.PassiveClock
	// Exemptions reads PolicyExceptions and owners from the cluster's cache; nil: annotation exemptions only.
	Exemptions exemptions.Lookup
	// Verifier returns the image verifier for a configuration (see images.go); nil: images are not verified, and
	// require-attestation denies them for want of a verification result.
	Verifier VerifierFunc
	// Keychain reads the registry credentials of the admitted pod spec; nil: registries are asked anonymously.
	Keychain KeychainFunc
	// Library is the embedded library's sources, for checking custom Policy Rego; nil refuses custom Rego.
	Library []policies.Source
	// Tracer records each image verification, policy and the exemptions as spans; nil: no tracing.
	Tracer Tracer
	// Resources judges, at kubectl apply, the policy resources of other languages (Gatekeeper's
	// ConstraintTemplates and Constraints); nil: none.
	Resources ResourceValidator
}

// Evaluator runs the pipeline. It is safe for concurrent use.
type Evaluator struct {
	engine     *policies.Engine
	config     func() *config.Config
	mode       policies.Mode
	clock      clock.PassiveClock
	exemptions exemptions.Lookup
	images     imageStage
	library    []policies.Source
	tracer     Tracer
	resources  ResourceValidator
}

// New validates options and builds an Evaluator.
func New(o Options) (*Evaluator, error) {
	if o.Engine == nil {
		return nil, fmt.Errorf("admission: an engine is required")
	}
	if o.Config == nil {
		return nil, fmt.Errorf("admission: a config source is required")
	}
	switch o.Mode {
	case "", policies.ModeEnforce:
		o.Mode = ""
	case policies.ModeAudit:
	default:
		return nil, fmt.Errorf("admission: global mode must be audit or empty, got %q", o.Mode)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	e := &Evaluator{images: imageStage{verifier: o.Verifier, keychain: o.Keychain}, engine: o.Engine, config: o.Config, mode: o.Mode, clock: o.Clock, exemptions: o.Exemptions, library: o.Library, tracer: o.Tracer, resources: o.Resources}
	e.prepare()
	return e, nil
}

// prepare compiles now the policies that the current configuration runs (an engine from policies.Load compiles
// each on first use), so that no admission waits for it; a policy a reload turns on compiles when first used.
// An error is not reported here: that policy's evaluation reports it, and fails closed.
func (e *Evaluator) prepare() {
	cfg := e.config()
	if cfg == nil {
		return
	}
	engine := e.engineFor(cfg)
	var names []string
	for _, p := range engine.Policies() {
		if s := cfg.Policies[p.Name]; s.Mode != policies.ModeOff && s.Mode != "" {
			names = append(names, p.Name)
		}
	}
	if len(names) > 0 {
		_ = engine.Prepare(names...)
	}
}

// Evaluate decides one request. Every policy runs, in name order; enforced findings deny, audit findings warn.
// An enforced policy that cannot be evaluated denies (fail closed); an audited one warns.
func (e *Evaluator) Evaluate(ctx context.Context, in Input) Decision {
	start := e.clock.Now()
	d := e.evaluate(ctx, in)
	d.Duration = e.clock.Since(start)
	return d
}

func (e *Evaluator) evaluate(ctx context.Context, in Input) Decision {
	// only is the operation a DELETE or CONNECT is judged for: by the policies that list it (Metadata.Operations),
	// and by no other; without such a policy it is allowed as before.
	only := ""
	switch in.Request.Operation {
	case "CREATE", "UPDATE":
	case "DELETE", "CONNECT":
		if !decides(e.engineFor(e.config()), in.Request.Operation) {
			d := Decision{}
			d.finish()
			return d
		}
		only = in.Request.Operation
	default:
		return badRequest(fmt.Errorf("unknown operation %q", in.Request.Operation))
	}
	gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
	var containers []workload.Container
	if only == "" {
		if in.Object == nil {
			return badRequest(fmt.Errorf("the request carries no object"))
		}
		if why := notEvaluated(in); why != "" {
			d := Decision{NotEvaluated: why}
			d.finish()
			d.AuditAnnotations[AnnotationNotEvaluated] = why
			return d
		}
		if isException(in) {
			return e.validateException(in, e.config())
		}
		if isPolicyResource(in) {
			return e.validatePolicyResource(ctx, in, e.config())
		}
		if e.resources != nil && e.resources.Validates(in.Request.Group, in.Request.Kind) {
			return e.validateOtherResource(ctx, in)
		}
		var err error
		if containers, err = workload.Extract(gk, in.Request.SubResource, in.Object); err != nil {
			return badRequest(fmt.Errorf("cannot read the %s: %w", in.Request.Kind, err))
		}
	}
	cfg := e.config()
	ictx, span := StartSpan(ctx, e.tracer, StageImages, "", "")
	if e.tracer != nil {
		ictx = attestation.WithObserver(ictx, e.traceImage)
	}
	verdicts := e.verifyImages(ictx, in, cfg, containers)
	span.End(nil)
	input := e.policyInput(in, cfg, containers, verdicts)
	doc, err := policies.NewDocument(input)
	if err != nil {
		return badRequest(fmt.Errorf("cannot read the %s: %w", in.Request.Kind, err))
	}
	engine := e.engineFor(cfg)
	old := &oldObject{e: e, in: in, cfg: cfg, gk: gk}
	subjectIn := in // what labels, exemptions and owners are read from: the object deleted on DELETE
	if in.Request.Operation == "DELETE" {
		subjectIn.Object = in.OldObject
	}
	objLabels := policies.ObjectLabels(subjectIn.Object)
	pooled := runSlices.Get().(*[]policyRun)
	runs := (*pooled)[:0]
	defer func() {
		clear(runs) // no settings or findings kept alive by the pool
		*pooled = runs[:0]
		runSlices.Put(pooled)
	}()
	var which uint64 // the policies that run, by their index in the engine (see Document.ReadTogether)
	for i, p := range engine.Policies() {
		if only != "" && !slices.Contains(p.Operations, only) {
			continue
		}
		s := cfg.Policies[p.Name]
		if !s.Match.Applies(in.Request.Kind, in.Request.Namespace, in.NamespaceLabels, objLabels) {
			continue
		}
		mode, enforceFrom := e.effectiveMode(s, in)
		if mode == policies.ModeOff || mode == "" {
			continue
		}
		runs = append(runs, policyRun{p: p, s: s, mode: mode, enforceFrom: enforceFrom})
		which |= 1 << i
	}
	doc.ReadTogether(engine, which)
	e.evaluatePolicies(ctx, runs, doc, old)
	d := Decision{Results: make([]PolicyResult, 0, len(runs))}
	if n := countFindings(runs); n > 0 {
		d.Violations = make([]Violation, 0, n)
	}
	for i := range runs {
		r := &runs[i]
		if !r.done {
			return Decision{Code: 500, Message: fmt.Sprintf("ATTEST could not finish evaluating policies: %v", ctx.Err()),
				Results: d.Results, AuditAnnotations: map[string]string{AnnotationDecision: DecisionError}}
		}
		p := r.p
		res := PolicyResult{Policy: p.Name, Engine: p.Engine(), Mode: r.mode, Findings: r.findings, Err: r.err, Duration: r.duration, Outcome: OutcomePassed, Digest: p.Digest}
		if r.sampled {
			d.Sampled = append(d.Sampled, p.Name)
		}
		switch {
		case r.err != nil:
			res.Outcome = OutcomeError
			d.Violations = append(d.Violations, Violation{
				Policy: p.Name, Mode: r.mode, Severity: p.Severity, Denied: r.mode == policies.ModeEnforce, Err: true,
				Message: "the policy could not be evaluated: " + r.err.Error(),
				Fix:     "ATTEST fails closed; ask your cluster administrators to check the ATTEST logs",
			})
		case len(r.findings) > 0:
			res.Outcome = OutcomeFailed
			for _, f := range r.findings {
				v := Violation{
					Policy: p.Name, Mode: r.mode, Severity: f.Severity, Path: f.Path, Container: containerAt(containers, f.Path),
					Message: f.Message, Fix: f.Fix, Warning: f.Warning, RecordOnly: f.RecordOnly, Denied: r.mode == policies.ModeEnforce && !f.Warning && !f.RecordOnly,
					EnforceFrom: r.enforceFrom,
				}
				if r.existing != nil && r.existing[findingKey(f)] {
					v.Denied, v.Preexisting = false, true
				}
				d.Violations = append(d.Violations, v)
			}
		}
		d.Results = append(d.Results, res)
	}
	production := in.Request.Namespace != "" && cfg.Production.Matches(in.Request.Namespace, in.NamespaceLabels)
	xctx, span := StartSpan(ctx, e.tracer, StageExemptions, "", "")
	e.applyExemptions(xctx, subjectIn, cfg, gk, production, &d)
	span.End(nil)
	d.finish()
	return d
}

// decides reports whether a policy of the engine judges the operation (DELETE, CONNECT).
func decides(engine *policies.Engine, op string) bool {
	for _, p := range engine.Policies() {
		if slices.Contains(p.Operations, op) {
			return true
		}
	}
	return false
}

// policyInput assembles the document of the README's input contract.
// The verifier's verdicts are merged into input.images (nil: no verifier).
func (e *Evaluator) policyInput(in Input, cfg *config.Config, containers []workload.Container, verdicts map[string]attestation.Facts) policies.Input {
	pcs := make([]policies.Container, len(containers))
	images := make(map[string]map[string]any, len(containers))
	terms := make(map[string]policies.Converted, len(containers))
	for i, c := range containers {
		pcs[i] = policies.Container{Path: c.Path, PodPath: c.PodPath, Type: string(c.Type), Name: c.Name, Image: c.Image, Fields: c.Fields}
		if _, done := images[c.Image]; done {
			continue
		}
		var verdict *attestation.Facts
		if f, ok := verdicts[c.Image]; ok {
			verdict = &f
		}
		facts, term, converted := e.images.entries.entry(c.Image, cfg.TrustedRegistries, verdict, &e.images.memo)
		images[c.Image] = facts
		if converted {
			terms[c.Image] = term
		}
	}
	ns := in.Request.Namespace
	return policies.Input{
		Request:     in.Request,
		Resource:    in.Object,
		OldResource: in.OldObject,
		Namespace: policies.Namespace{
			Name: ns, Labels: in.NamespaceLabels, Annotations: in.NamespaceAnnotations,
			Production: ns != "" && cfg.Production.Matches(ns, in.NamespaceLabels),
		},
		Containers: pcs,
		Images:     images,
		ImageTerms: terms,
	}
}

// imageFacts is input.images[image]: the parsed reference and whether a trusted registry covers it, or the
// parse error.
func imageFacts(image string, trusted *attestation.TrustedRegistries) map[string]any {
	ref, err := attestation.ParseReference(image)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	entry, ok := trusted.Match(ref)
	facts := map[string]any{
		"reference": ref.Canonical, "registry": ref.Registry, "repository": ref.Repository,
		"name": ref.Registry + "/" + ref.Repository, "tag": ref.Tag, "digest": ref.Digest,
		"trusted_registry": ok,
	}
	if ok {
		facts["trusted_by"] = entry
	}
	return facts
}

// containerAt names the container whose path is path or an ancestor of it.
func containerAt(cs []workload.Container, path string) string {
	for _, c := range cs {
		if path == c.Path || (strings.HasPrefix(path, c.Path) && len(path) > len(c.Path) && path[len(c.Path)] == '.') {
			return c.Name
		}
	}
	return ""
}

func badRequest(err error) Decision {
	return Decision{Code: 400, Message: err.Error(), AuditAnnotations: map[string]string{AnnotationDecision: DecisionError}}
}

// ObjectInput is the CREATE request an object read from a manifest would make; namespace applies when the
// object names none.
func ObjectInput(obj map[string]any, namespace string, now time.Time) Input {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, version := "", apiVersion
	if i := strings.LastIndexByte(apiVersion, '/'); i >= 0 {
		group, version = apiVersion[:i], apiVersion[i+1:]
	}
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		name, _ = md["generateName"].(string)
	}
	if ns, _ := md["namespace"].(string); ns != "" {
		namespace = ns
	}
	return Input{
		Request: Request{Operation: "CREATE", Group: group, Version: version, Kind: kind, Namespace: namespace, Name: name, TimestampNS: now.UnixNano()},
		Object:  obj,
	}
}
