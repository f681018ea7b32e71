// Package loadenv is what the load commands under hack/ share: an in-memory registry of signed and attested
// images with a config that trusts it (the shipped example plus a trust section), the AdmissionReviews they send,
// and an `attest serve` process with its memory and metrics read from outside.
package loadenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/attestation/attestationtest"
)

// SLSA is the predicate type every pushed image is attested with and the trust section requires.
const SLSA = "https://slsa.dev/provenance/v1"

// Provenance is a SLSA v1 predicate of a realistic size (about 1.5 KB as JSON): what each cached verdict carries.
func Provenance(image string) map[string]any {
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

// Options change the example config beyond trusting the registry.
type Options struct {
	// EnforceAttestation sets require-attestation to enforce, as the example's comment says to once a trust
	// section names the signing key: an image that cannot be verified is then denied, not warned about.
	EnforceAttestation bool
}

// Env is a registry of signed and attested images and the configuration that trusts it: the shipped example
// config with the registry added to trusted-registries and a trust section requiring the key's signature and SLSA
// provenance for every image of the registry.
type Env struct {
	T   *TB
	Reg *attestationtest.Registry
	Key *attestationtest.Signer
	Dir string // policies.yaml, release.pub, and what StartServe writes
	Cfg []byte // the config file's content
}

// Image is a pushed image as a pod spec carries it, by tag and pinned to its digest.
type Image struct{ Tagged, Pinned string }

// NewEnv starts the registry and writes the config derived from example into Dir.
func NewEnv(t *TB, example string, o Options) (*Env, error) {
	e := &Env{T: t, Reg: attestationtest.NewRegistry(t), Key: attestationtest.NewKey(t), Dir: t.TempDir()}
	data, err := os.ReadFile(example)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", example, err)
	}
	trusted, attestation := false, false
	list, _ := doc["policies"].([]any)
	for _, p := range list {
		entry, _ := p.(map[string]any)
		switch entry["name"] {
		case "trusted-registries":
			params, _ := entry["parameters"].(map[string]any)
			regs, _ := params["trusted_registries"].([]any)
			params["trusted_registries"] = append(regs, e.Reg.Host())
			trusted = true
		case "require-attestation":
			if o.EnforceAttestation {
				delete(entry, "enabled")
				delete(entry, "enforcement")
				entry["mode"] = "enforce"
				attestation = true
			}
		}
	}
	if !trusted {
		return nil, fmt.Errorf("%s configures no trusted_registries for trusted-registries", example)
	}
	if o.EnforceAttestation && !attestation {
		doc["policies"] = append(list, map[string]any{"name": "require-attestation", "mode": "enforce"})
	}
	if _, ok := doc["trust"]; ok {
		return nil, fmt.Errorf("%s has a trust section already; the load commands add their own", example)
	}
	doc["trust"] = map[string]any{"policies": []any{map[string]any{
		"name":         "release",
		"images":       []any{e.Reg.Host() + "/**"},
		"authorities":  []any{map[string]any{"name": "release-key", "key": map[string]any{"pemFile": "release.pub"}}},
		"attestations": []any{map[string]any{"predicateType": SLSA}},
	}}}
	if e.Cfg, err = yaml.Marshal(doc); err != nil {
		return nil, err
	}
	for name, content := range map[string][]byte{"policies.yaml": e.Cfg, "release.pub": []byte(e.Key.PublicKeyPEM(t))} {
		if err := os.WriteFile(filepath.Join(e.Dir, name), content, 0o600); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// ConfigPath is the config file serve is started with.
func (e *Env) ConfigPath() string { return filepath.Join(e.Dir, "policies.yaml") }

// Push pushes, signs and attests repo:v1.
func (e *Env) Push(repo string) Image {
	d := e.Reg.PushRandomImage(e.T, repo, "v1")
	e.Key.Sign(e.T, d)
	e.Key.Attest(e.T, d, SLSA, Provenance(repo))
	return Image{Tagged: e.Reg.Tagged(repo, "v1"), Pinned: attestationtest.Image(d)}
}

// PushMany pushes n images <prefix><i>, workers at a time, and returns them in order.
func (e *Env) PushMany(prefix string, n, workers int, progress func(done int)) []Image {
	images := make([]Image, n)
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
				images[i] = e.Push(prefix + strconv.Itoa(i))
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

func limited(name string, image string) map[string]any {
	return map[string]any{"name": name, "image": image, "securityContext": map[string]any{"runAsNonRoot": true},
		"resources": map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}, "requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}}
}

// Deployment is a compliant 3-container Deployment (an init container and two containers) of the images.
func Deployment(name string, images [3]string) map[string]any {
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": "shop", "labels": map[string]any{"app": name}},
		"spec": map[string]any{"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{
					"initContainers": []any{limited("migrate", images[0])},
					"containers":     []any{limited("app", images[1]), limited("proxy", images[2])},
				}}},
	}
}

// Pod is a compliant Pod of one image.
func Pod(name, image string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "shop"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": image,
			"securityContext": map[string]any{"runAsNonRoot": true},
			"resources":       map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}}}}},
	}
}

// Review is the AdmissionReview of a CREATE of obj, as the API server sends it.
func Review(uid string, obj map[string]any) []byte {
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
