package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
)

const slsa = "https://slsa.dev/provenance/v1"

// provenance is a SLSA v1 predicate of a realistic size (about 1.5 KB as JSON): what each cached verdict carries.
func provenance(image string) map[string]any {
	return map[string]any{
		"buildDefinition": map[string]any{
			"buildType": "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{
				"ref": "refs/heads/main", "repository": "https://github.com/company/" + image, "path": ".github/workflows/release.yml"}},
			"internalParameters": map[string]any{"github": map[string]any{
				"event_name": "push", "repository_id": "123456789", "repository_owner_id": "987654321"}},
			"resolvedDependencies": []any{map[string]any{
				"uri":    "git+https://github.com/company/" + image + "@refs/heads/main",
				"digest": map[string]any{"gitCommit": "4f9a3c1e2b7d6a5f8e9c0b1a2d3e4f5a6b7c8d9e"}}},
		},
		"runDetails": map[string]any{
			"builder": map[string]any{"id": "https://github.com/company/builder/.github/workflows/build.yml@refs/tags/v2.1.0"},
			"metadata": map[string]any{
				"invocationId": "https://github.com/company/" + image + "/actions/runs/8123456789/attempts/1",
				"startedOn":    "2026-11-24T09:12:44Z", "finishedOn": "2026-11-24T09:19:02Z"},
			"byproducts": []any{map[string]any{"name": "sbom.spdx.json", "digest": map[string]any{
				"sha256": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"}}},
		},
	}
}

// env is a registry of signed and attested images and the configuration that trusts it: the shipped example
// config with the registry added to trusted-registries and a trust section requiring the key's signature and SLSA
// provenance for every image of the registry.
type env struct {
	t   *tb
	reg *attestationtest.Registry
	key *attestationtest.Signer
	dir string // config, key and certificates
	cfg []byte // the config file's content
}

func newEnv(t *tb, example string) (*env, error) {
	e := &env{t: t, reg: attestationtest.NewRegistry(t), key: attestationtest.NewKey(t), dir: t.TempDir()}
	data, err := os.ReadFile(example)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", example, err)
	}
	found := false
	list, _ := doc["policies"].([]any)
	for _, p := range list {
		entry, _ := p.(map[string]any)
		if entry["name"] != "trusted-registries" {
			continue
		}
		params, _ := entry["parameters"].(map[string]any)
		regs, _ := params["trusted_registries"].([]any)
		params["trusted_registries"] = append(regs, e.reg.Host())
		found = true
	}
	if !found {
		return nil, fmt.Errorf("%s configures no trusted_registries for trusted-registries", example)
	}
	if _, ok := doc["trust"]; ok {
		return nil, fmt.Errorf("%s has a trust section already; loadgen adds its own", example)
	}
	doc["trust"] = map[string]any{"policies": []any{map[string]any{
		"name":         "release",
		"images":       []any{e.reg.Host() + "/**"},
		"authorities":  []any{map[string]any{"name": "release-key", "key": map[string]any{"pemFile": "release.pub"}}},
		"attestations": []any{map[string]any{"predicateType": slsa}},
	}}}
	if e.cfg, err = yaml.Marshal(doc); err != nil {
		return nil, err
	}
	for name, content := range map[string][]byte{"policies.yaml": e.cfg, "release.pub": []byte(e.key.PublicKeyPEM(t))} {
		if err := os.WriteFile(filepath.Join(e.dir, name), content, 0o600); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// push pushes, signs and attests repo:v1 and returns the image as a pod spec carries it.
func (e *env) push(repo string) string {
	d := e.reg.PushRandomImage(e.t, repo, "v1")
	e.key.Sign(e.t, d)
	e.key.Attest(e.t, d, slsa, provenance(repo))
	return e.reg.Tagged(repo, "v1")
}

// pushMany pushes n images team/img<i>, workers at a time, and returns them in order.
func (e *env) pushMany(n, workers int, progress func(done int)) []string {
	images := make([]string, n)
	var next, done int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				images[i] = e.push("team/img" + strconv.Itoa(i))
				mu.Lock()
				done++
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return images
}

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
func (e *env) pipeline(cacheSize int, memo bool) (*pipeline, error) {
	srcs, _, err := policies.Library()
	if err != nil {
		return nil, err
	}
	engine, err := policies.Load(srcs)
	if err != nil {
		return nil, err
	}
	engine.SetMemo(memo)
	cfg, err := config.Load(filepath.Join(e.dir, "policies.yaml"), engine)
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
		Verifier: func(*config.Config) admission.ImageVerifier { return verifier },
	})
	if err != nil {
		return nil, err
	}
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	validate, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval, Metrics: metrics, Log: log})
	if err != nil {
		return nil, err
	}
	mutate, err := webhook.NewHandler(webhook.HandlerOptions{Mutating: true, Decider: eval, Metrics: metrics, Log: log})
	if err != nil {
		return nil, err
	}
	return &pipeline{eval: eval, validate: validate, mutate: mutate, cfg: cfg}, nil
}

// deployment is a compliant 3-container Deployment (an init container and two containers) of the images.
func deployment(images [3]string) map[string]any {
	container := func(name, image string) map[string]any {
		return map[string]any{"name": name, "image": image, "securityContext": map[string]any{"runAsNonRoot": true},
			"resources": map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}, "requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}}
	}
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"initContainers": []any{container("migrate", images[0])},
					"containers":     []any{container("app", images[1]), container("proxy", images[2])},
				}}},
	}
}

// pod is a compliant Pod of one image.
func pod(name, image string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "shop"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": image,
			"securityContext": map[string]any{"runAsNonRoot": true},
			"resources":       map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}}}}},
	}
}

// review is the AdmissionReview of a CREATE of obj, as the API server sends it.
func review(uid string, obj map[string]any) []byte {
	group, version := "", obj["apiVersion"].(string)
	if i := strings.LastIndexByte(version, '/'); i >= 0 {
		group, version = version[:i], version[i+1:]
	}
	md := obj["metadata"].(map[string]any)
	b, err := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": uid, "kind": map[string]any{"group": group, "version": version, "kind": obj["kind"]},
			"resource":  map[string]any{"group": group, "version": version, "resource": strings.ToLower(obj["kind"].(string)) + "s"},
			"namespace": md["namespace"], "name": md["name"], "operation": "CREATE",
			"userInfo": map[string]any{"username": "system:serviceaccount:ci:deployer", "groups": []any{"system:serviceaccounts"}},
			"object":   obj},
	})
	if err != nil {
		panic(err) // plain values
	}
	return b
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
