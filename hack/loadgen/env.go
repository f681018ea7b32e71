package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
)

// pipeline is the webhook's validating and mutating handlers over the whole embedded library, wired as
// `attest serve` wires them: the library loaded as serve loads it, the config file, one verifier with a verdict
// cache, metrics, and the JSON decision log (to io.Discard).
type pipeline struct {
	eval     *admission.Evaluator
	validate *webhook.Handler
	mutate   *webhook.Handler
	cfg      *config.Config
}

// pipeline is what `attest serve` runs. With memo off every policy runs on every request, as for a pod template
// the webhook has not seen; with it on, a repeated request is answered from the policies' memo.
func newPipeline(e *loadenv.Env, cacheSize int, memo bool, tracer admission.Tracer) (*pipeline, error) {
	srcs, _, err := policies.Library()
	if err != nil {
		return nil, err
	}
	engine, err := policies.Load(srcs)
	if err != nil {
		return nil, err
	}
	engine.SetMemo(memo)
	// attest serve plans each policy after its first evaluations; the figures are of that steady state.
	engine.Plan()
	cfg, err := config.Load(filepath.Join(e.Dir, "policies.yaml"), engine)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	vm, err := attestation.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	cache, err := attestation.NewCache(attestation.CacheOptions{Size: cacheSize, Metrics: vm})
	if err != nil {
		return nil, err
	}
	verifier := attestation.NewVerifier(cfg.Trust, attestation.VerifierOptions{Cache: cache, Metrics: vm})
	eval, err := admission.New(admission.Options{
		Engine: engine, Config: func() *config.Config { return cfg }, Library: srcs,
		Verifier: func(*config.Config) admission.ImageVerifier { return verifier }, Tracer: tracer,
	})
	if err != nil {
		return nil, err
	}
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	validate, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval, Metrics: metrics, Log: log, DecisionLog: io.Discard, Tracer: tracer})
	if err != nil {
		return nil, err
	}
	mutate, err := webhook.NewHandler(webhook.HandlerOptions{Mutating: true, Decider: eval, Metrics: metrics, Log: log, Tracer: tracer})
	if err != nil {
		return nil, err
	}
	return &pipeline{eval: eval, validate: validate, mutate: mutate, cfg: cfg}, nil
}

// mutated applies the mutating webhook's patches to obj, as the API server does before validation: the Deployment
// then carries the receipt (and, where the config pins, the digests) that require-receipt checks.
func (p *pipeline) mutated(ctx context.Context, obj map[string]any) (map[string]any, error) {
	d := p.eval.Mutate(ctx, admission.ObjectInput(obj, "shop", time.Now()))
	for _, op := range d.Patches {
		if err := apply(obj, op); err != nil {
			return nil, fmt.Errorf("patch %s %s: %w", op.Op, op.Path, err)
		}
	}
	return obj, nil
}

// apply applies an add or replace operation of a JSON Patch to a JSON-shaped object.
func apply(obj map[string]any, op admission.PatchOp) error {
	if op.Op != "add" && op.Op != "replace" {
		return fmt.Errorf("unsupported op")
	}
	tokens := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
	for i, tok := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	var cur any = obj
	for i, tok := range tokens {
		last := i == len(tokens)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[tok] = op.Value
				return nil
			}
			next, ok := c[tok]
			if !ok {
				next = map[string]any{}
				c[tok] = next
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n >= len(c) {
				return fmt.Errorf("index %q", tok)
			}
			if last {
				c[n] = op.Value
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("%q is not in an object or array", tok)
		}
	}
	return nil
}
