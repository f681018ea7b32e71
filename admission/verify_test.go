package admission_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/config"
)

// The real verifier is what the pipeline needs.
var _ admission.ImageVerifier = (*attestation.Verifier)(nil)

const slsa = "https://slsa.dev/provenance/v1"

var verifiedAt = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// verifyEnv is the pipeline with the real verifier, against an in-memory registry on loopback, trusting one key and
// requiring SLSA provenance for every image of that registry.
type verifyEnv struct {
	reg   *attestationtest.Registry
	key   *attestationtest.Signer
	clock *clocktesting.FakeClock
	prom  *prometheus.Registry
	ev    *admission.Evaluator
	cfg   *config.Config
	// keychainCalls records the credentials the pipeline asked for.
	mu            sync.Mutex
	keychainCalls []string
	keychainErr   error
}

type envOpt func(*envSettings)

type envSettings struct {
	policies []string // library policies compiled, all enforced
	yaml     string   // extra config
	noTrust  bool
	timeout  time.Duration
	// authorities are more authorities of the trust policy (YAML list items), files what they name.
	authorities string
	files       map[string]string
}

func withPolicies(p ...string) envOpt { return func(s *envSettings) { s.policies = p } }
func withYAML(y string) envOpt        { return func(s *envSettings) { s.yaml += y } }
func withoutTrust() envOpt            { return func(s *envSettings) { s.noTrust = true } }

// withKeyless trusts ca's certificates for the GitHub Actions workflows of github.com/company, besides the key.
func withKeyless(t testing.TB, ca *attestationtest.CA) envOpt {
	return func(s *envSettings) {
		s.authorities += `        - name: ci
          keyless:
            roots: {pemFile: ca.pem}
            identities: [{issuer: "` + ghIssuer + `", subjectRegExp: "^https://github.com/company/.*"}]
`
		s.files = map[string]string{"ca.pem": ca.RootsPEM(t)}
	}
}

const ghIssuer = "https://token.actions.githubusercontent.com"

func newVerifyEnv(t testing.TB, opts ...envOpt) *verifyEnv {
	t.Helper()
	s := envSettings{policies: []string{"require-attestation"}}
	for _, o := range opts {
		o(&s)
	}
	env := &verifyEnv{reg: attestationtest.NewRegistry(t), key: attestationtest.NewKey(t), clock: clocktesting.NewFakeClock(verifiedAt)}
	dir := t.TempDir()
	s.files = mergeFiles(s.files, map[string]string{"release.pub": env.key.PublicKeyPEM(t)})
	for name, content := range s.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var y strings.Builder
	y.WriteString("policies:\n")
	for _, p := range s.policies {
		fmt.Fprintf(&y, "  - {name: %s, mode: enforce}\n", p)
	}
	if !s.noTrust {
		fmt.Fprintf(&y, `trust:
  policies:
    - name: release
      images: ["%s/**"]
      authorities:
        - name: release-key
          key: {pemFile: release.pub}
%s      attestations:
        - predicateType: %s
`, env.reg.Host(), s.authorities, slsa)
	}
	y.WriteString(s.yaml)
	engine := Engine(t, s.policies...)
	cfg, err := config.ParseIn([]byte(y.String()), engine, dir)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y.String())
	}
	env.cfg = cfg
	env.prom = prometheus.NewRegistry()
	metrics, err := attestation.NewMetrics(env.prom)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := attestation.NewCache(attestation.CacheOptions{Clock: env.clock, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	vo := attestation.VerifierOptions{Cache: cache, Metrics: metrics, Clock: env.clock, Timeout: s.timeout}
	ev, err := admission.New(admission.Options{
		Engine: engine,
		Config: func() *config.Config { return cfg },
		Verifier: func(c *config.Config) admission.ImageVerifier {
			return attestation.NewVerifier(c.Trust, vo)
		},
		Keychain: func(_ context.Context, ns string, secrets []string, sa string) (authn.Keychain, error) {
			env.mu.Lock()
			defer env.mu.Unlock()
			env.keychainCalls = append(env.keychainCalls, fmt.Sprintf("%s %v %s", ns, secrets, sa))
			return authn.NewMultiKeychain(), env.keychainErr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	env.ev = ev
	return env
}

func mergeFiles(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// signed pushes repo:tag, signs it and attests SLSA provenance with the trusted key.
func (env *verifyEnv) signed(t testing.TB, repo, tag string) name.Digest {
	t.Helper()
	d := env.reg.PushRandomImage(t, repo, tag)
	env.key.Sign(t, d)
	env.key.Attest(t, d, slsa, map[string]any{"builder": map[string]any{"id": "https://github.com/company/builder"}})
	return d
}

// verifications sums attest_verification_total by result.
func (env *verifyEnv) verifications(t testing.TB) map[string]float64 {
	t.Helper()
	mfs, err := env.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "attest_verification_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

func pod(images ...string) map[string]any {
	var cs []Container
	for i, img := range images {
		cs = append(cs, NewContainer("c"+strconv.Itoa(i), img))
	}
	return Object(Pod, "shop", "web", PodSpec{Containers: cs})
}

func deployment(images ...string) map[string]any {
	var cs []Container
	for i, img := range images {
		cs = append(cs, NewContainer("c"+strconv.Itoa(i), img))
	}
	return Object(Deployment, "shop", "web", PodSpec{Containers: cs})
}

func TestVerifiedImageAllowed(t *testing.T) {
	env := newVerifyEnv(t)
	d := env.signed(t, "team/app", "v1")
	for _, image := range []string{env.reg.Tagged("team/app", "v1"), d.String(), env.reg.Tagged("team/app", "v1") + "@" + d.DigestStr()} {
		dec := env.ev.Evaluate(context.Background(), Create(pod(image)))
		if !dec.Allowed || len(dec.Warnings) > 0 {
			t.Fatalf("%s: allowed=%v %s %v", image, dec.Allowed, dec.Message, dec.Warnings)
		}
	}
}

func TestUnverifiedImagesDenied(t *testing.T) {
	env := newVerifyEnv(t)
	other := attestationtest.NewKey(t)
	type tc struct {
		name  string
		image string
		want  []string // lines of the denial
	}
	var cases []tc
	{
		d := env.reg.PushRandomImage(t, "team/unsigned", "v1")
		subj := env.reg.Tagged("team/unsigned", "v1") + "@" + d.DigestStr()
		cases = append(cases, tc{"unsigned", env.reg.Tagged("team/unsigned", "v1"), []string{
			`[require-attestation] spec.containers[0] (c0): image "` + subj + `" has no valid signature: no signature from authority 'release-key'; sign the image with cosign using a key or identity that trust policy release accepts, or add a PolicyException`,
			`[require-attestation] spec.containers[0] (c0): image "` + subj + `" does not satisfy trust policy release: attestation ` + slsa + ` missing; attach a valid ` + slsa + ` attestation signed by an authority of trust policy release, or add a PolicyException`,
		}})
	}
	{
		d := env.reg.PushRandomImage(t, "team/other", "v1")
		other.Sign(t, d)
		other.Attest(t, d, slsa, map[string]any{})
		cases = append(cases, tc{"signed by another key", d.String(), []string{
			`[require-attestation] spec.containers[0] (c0): image "` + d.String() + `" has no valid signature: no signature from authority 'release-key' (found 1 signature: signature by a different key); sign the image with cosign using a key or identity that trust policy release accepts, or add a PolicyException`,
			`[require-attestation] spec.containers[0] (c0): image "` + d.String() + `" does not satisfy trust policy release: attestation ` + slsa + ` not from authority 'release-key' (found 1 attestation: signature by a different key); attach a valid ` + slsa + ` attestation signed by an authority of trust policy release, or add a PolicyException`,
		}})
	}
	{
		d := env.reg.PushRandomImage(t, "team/noatt", "v1")
		env.key.Sign(t, d)
		cases = append(cases, tc{"attestation missing", d.String(), []string{
			`[require-attestation] spec.containers[0] (c0): image "` + d.String() + `" does not satisfy trust policy release: attestation ` + slsa + ` missing; attach a valid ` + slsa + ` attestation signed by an authority of trust policy release, or add a PolicyException`,
		}})
	}
	cases = append(cases, tc{"not found", env.reg.Tagged("team/nope", "v1"), []string{
		`[require-attestation] spec.containers[0] (c0): image "` + env.reg.Tagged("team/nope", "v1") + `" could not be verified against trust policy release: image ` + env.reg.Tagged("team/nope", "v1") + ` not found in registry ` + env.reg.Host() + `; ATTEST denies what it could not verify: retry when the registry answers`,
	}})
	cases = append(cases, tc{"uncovered", "gcr.io/company/app:1", []string{
		`[require-attestation] spec.containers[0] (c0): no trust policy covers image "gcr.io/company/app:1", and images no trust policy covers are denied; use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it`,
	}})
	cases = append(cases, tc{"short digest", "gcr.io/company/app@sha256:short", []string{
		`[require-attestation] spec.containers[0] (c0): image "gcr.io/company/app@sha256:short" cannot be parsed: image "gcr.io/company/app@sha256:short" is not a valid reference: the digest "sha256:short" is not valid: write it as sha256: and 64 lower-case hexadecimal digits; write the image as a valid reference, e.g. registry.example.com/team/app:1.2.3`,
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dec := env.ev.Evaluate(context.Background(), Create(pod(c.image)))
			if dec.Allowed || dec.Code != 403 {
				t.Fatalf("allowed=%v code=%d", dec.Allowed, dec.Code)
			}
			lines := strings.Split(dec.Message, "\n")
			for _, w := range c.want {
				if !contains(lines, w) {
					t.Errorf("denial lacks\n  %s\ngot\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(c.want) {
				t.Errorf("%d lines, want %d:\n%s", len(lines), len(c.want), dec.Message)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// TestNoTrustConfigured: with require-attestation's mode set to enforce and no trust section, the object is denied,
// once, for having no image verified, without any registry request; with no verifier at all, the policy has no
// verification result and denies too. (The first run, with no mode set, is TestFirstRun.)
func TestNoTrustConfigured(t *testing.T) {
	env := newVerifyEnv(t, withoutTrust())
	image := env.reg.Tagged("team/app", "v1")
	env.signed(t, "team/app", "v1")
	env.reg.ResetRequests()
	dec := env.ev.Evaluate(context.Background(), Create(pod(image)))
	want := `[require-attestation] spec: no image is verified: policies.yaml has no trust section; add trust.policies to policies.yaml naming your images and the keys or identities that sign them (README: Image trust)`
	if dec.Allowed || dec.Message != want {
		t.Fatalf("allowed=%v message:\n%s\nwant:\n%s", dec.Allowed, dec.Message, want)
	}
	if env.reg.Requests() != 0 || len(env.keychainCalls) != 0 {
		t.Fatalf("%d registry requests, keychain calls %v", env.reg.Requests(), env.keychainCalls)
	}

	ev, err := admission.New(admission.Options{Engine: Engine(t, "require-attestation"), Config: func() *config.Config { return env.cfg }})
	if err != nil {
		t.Fatal(err)
	}
	dec = ev.Evaluate(context.Background(), Create(pod(image)))
	want = `[require-attestation] spec.containers[0] (c0): image "` + image + `" was not verified: ATTEST has no verification result for it; ask your cluster administrators to check the ATTEST logs`
	if dec.Allowed || dec.Message != want {
		t.Fatalf("no verifier: allowed=%v message:\n%s\nwant:\n%s", dec.Allowed, dec.Message, want)
	}
}

// TestKeyless: a keyless signature and attestation from an allowed identity pass; from another identity, denied.
func TestKeyless(t *testing.T) {
	ca := attestationtest.NewCA(t, "fulcio")
	env := newVerifyEnv(t, withKeyless(t, ca))
	good := env.reg.PushRandomImage(t, "team/good", "v1")
	ci := ca.Keyless(t, ghIssuer, "https://github.com/company/app/.github/workflows/release.yml@refs/heads/main")
	ci.SignBundle(t, good)
	ci.AttestBundle(t, good, slsa, map[string]any{})
	if dec := env.ev.Evaluate(context.Background(), Create(pod(good.String()))); !dec.Allowed {
		t.Fatalf("allowed identity denied: %s", dec.Message)
	}
	evil := env.reg.PushRandomImage(t, "team/evil", "v1")
	subject := "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main"
	rogue := ca.Keyless(t, ghIssuer, subject)
	rogue.SignBundle(t, evil)
	rogue.AttestBundle(t, evil, slsa, map[string]any{})
	dec := env.ev.Evaluate(context.Background(), Create(pod(evil.String())))
	want := `image "` + evil.String() + `" has no valid signature: no signature from authority 'release-key' or 'ci' (found 1 signature: authority 'ci': signature by ` + subject + ` (` + ghIssuer + `), an identity authority 'ci' does not trust; authority 'release-key': signature by a different key)`
	if dec.Allowed || !strings.Contains(dec.Message, want) {
		t.Fatalf("other identity: allowed=%v, message lacks\n%s\ngot\n%s", dec.Allowed, want, dec.Message)
	}
}

func TestTagMovedToUnsignedDigestDenied(t *testing.T) {
	env := newVerifyEnv(t)
	first := env.signed(t, "team/app", "v1")
	image := env.reg.Tagged("team/app", "v1")
	if dec := env.ev.Evaluate(context.Background(), Create(pod(image))); !dec.Allowed {
		t.Fatalf("signed image denied: %s", dec.Message)
	}
	moved := env.reg.PushRandomImage(t, "team/app", "v1") // unsigned, same tag
	env.clock.Step(attestation.DefaultTagTTL + time.Second)
	dec := env.ev.Evaluate(context.Background(), Create(pod(image)))
	want := `image "` + image + "@" + moved.DigestStr() + `" has no valid signature`
	if dec.Allowed || !strings.Contains(dec.Message, want) {
		t.Fatalf("moved tag: allowed=%v, message lacks %q:\n%s", dec.Allowed, want, dec.Message)
	}
	// What was verified, pinned by digest, still passes (from the cache).
	if dec := env.ev.Evaluate(context.Background(), Create(pod(image+"@"+first.DigestStr()))); !dec.Allowed {
		t.Fatalf("pinned verified digest denied: %s", dec.Message)
	}
}

func TestRegistryDown(t *testing.T) {
	env := newVerifyEnv(t)
	d := env.signed(t, "team/app", "v1")
	image := env.reg.Tagged("team/app", "v1")
	if dec := env.ev.Evaluate(context.Background(), Create(pod(image))); !dec.Allowed {
		t.Fatalf("signed image denied: %s", dec.Message)
	}
	unverified := env.reg.PushRandomImage(t, "team/new", "v1")
	env.reg.Stall(true)
	t.Cleanup(func() { env.reg.Stall(false) })

	// A cached pass serves while the registry does not answer: by tag (within the tag TTL) and by digest.
	for _, img := range []string{image, d.String()} {
		if dec := env.ev.Evaluate(context.Background(), Create(pod(img))); !dec.Allowed {
			t.Fatalf("%s: cached pass not served: %s", img, dec.Message)
		}
	}
	// An image not verified before is denied within the request's budget, naming the registry.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	dec := env.ev.Evaluate(ctx, Create(pod(unverified.String())))
	took := time.Since(start)
	want := `[require-attestation] spec.containers[0] (c0): image "` + unverified.String() + `" could not be verified against trust policy release: registry ` + env.reg.Host() + ` did not answer within `
	if dec.Allowed || !strings.HasPrefix(dec.Message, want) {
		t.Fatalf("allowed=%v message:\n%s\nwant prefix:\n%s", dec.Allowed, dec.Message, want)
	}
	if took > 1200*time.Millisecond {
		t.Fatalf("answered after %v: verification must leave the request's last 500ms to the policies", took)
	}
}

// TestConcurrentAdmissionsVerifyOnce: 100 admissions of one new image at once cause one verification.
func TestConcurrentAdmissionsVerifyOnce(t *testing.T) {
	env := newVerifyEnv(t)
	env.signed(t, "team/app", "v1")
	image := env.reg.Tagged("team/app", "v1")
	var wg sync.WaitGroup
	denied := make(chan string, 100)
	for range 100 {
		wg.Go(func() {
			if dec := env.ev.Evaluate(context.Background(), Create(pod(image))); !dec.Allowed {
				denied <- dec.Message
			}
		})
	}
	wg.Wait()
	close(denied)
	for msg := range denied {
		t.Fatalf("denied: %s", msg)
	}
	got := env.verifications(t)
	if got["passed"] != 1 || got["failed"] != 0 || got["error"] != 0 {
		t.Fatalf("verifications = %v, want one passed", got)
	}
}

// TestRegistryCredentials: the pod spec's imagePullSecrets and service account are what the keychain is asked
// for, only when a registry is contacted (a cached verdict costs no API call); a keychain that cannot be read
// denies, saying so.
func TestRegistryCredentials(t *testing.T) {
	env := newVerifyEnv(t)
	env.signed(t, "team/app", "v1")
	obj := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", env.reg.Tagged("team/app", "v1"))}})
	spec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	spec["imagePullSecrets"] = []any{map[string]any{"name": "regcred"}, map[string]any{"name": "mirror"}}
	spec["serviceAccountName"] = "builder"
	for range 2 {
		if dec := env.ev.Evaluate(context.Background(), Create(obj)); !dec.Allowed {
			t.Fatalf("denied: %s", dec.Message)
		}
	}
	if want := []string{"shop [regcred mirror] builder"}; !reflect.DeepEqual(env.keychainCalls, want) {
		t.Fatalf("keychain calls %q, want %q", env.keychainCalls, want)
	}

	env.keychainErr = errors.New(`secrets "regcred" is forbidden`)
	d := env.signed(t, "team/other", "v1")
	spec["containers"].([]any)[0].(map[string]any)["image"] = d.String()
	dec := env.ev.Evaluate(context.Background(), Create(obj))
	want := `cannot read the registry credentials of the pod (imagePullSecrets regcred, mirror and service account builder in namespace shop): secrets "regcred" is forbidden`
	if dec.Allowed || !strings.Contains(dec.Message, want) {
		t.Fatalf("allowed=%v, message lacks %q:\n%s", dec.Allowed, want, dec.Message)
	}
}

// --- the mutating path ---

func receipt(entries map[string]admission.ReceiptEntry) string {
	b, _ := json.Marshal(admission.Receipt{Version: 1, Images: entries})
	return string(b)
}

func entry(env *verifyEnv, t testing.TB, d name.Digest) admission.ReceiptEntry {
	return admission.ReceiptEntry{Digest: d.DigestStr(), Signer: env.key.KeyID(t), PredicateTypes: []string{slsa}, VerifiedAt: "2026-11-25T12:00:00Z"}
}

func TestMutatePinsPodsAndWritesReceipt(t *testing.T) {
	env := newVerifyEnv(t)
	app := env.signed(t, "team/app", "v1")
	tool := env.signed(t, "team/tool", "v2")
	appImage, toolImage := env.reg.Tagged("team/app", "v1"), env.reg.Tagged("team/tool", "v2")
	unsigned := env.reg.Tagged("team/unsigned", "v1")
	env.reg.PushRandomImage(t, "team/unsigned", "v1")
	obj := Object(Pod, "shop", "web", PodSpec{
		Init:       []Container{NewContainer("init", toolImage)},
		Containers: []Container{NewContainer("app", appImage), NewContainer("sidecar", unsigned), NewContainer("pinned", app.String())},
	})
	in := Create(obj)
	in.Request.DryRun = true // mutated alike: sideEffects None
	dec := env.ev.Mutate(context.Background(), in)
	want := []admission.PatchOp{
		{Op: "replace", Path: "/spec/initContainers/0/image", Value: toolImage + "@" + tool.DigestStr()},
		{Op: "replace", Path: "/spec/containers/0/image", Value: appImage + "@" + app.DigestStr()},
		{Op: "add", Path: "/metadata/annotations", Value: map[string]any{admission.ReceiptAnnotation: receipt(map[string]admission.ReceiptEntry{
			toolImage + "@" + tool.DigestStr(): entry(env, t, tool),
			appImage + "@" + app.DigestStr():   entry(env, t, app),
			app.String():                       entry(env, t, app),
		})}},
	}
	if !dec.Allowed || !reflect.DeepEqual(dec.Patches, want) {
		t.Fatalf("patches:\n got %s\nwant %s", dump(dec.Patches), dump(want))
	}

	// A second admission of the mutated Pod changes nothing, even once the verdicts were re-verified later.
	mutated := applyPatches(t, obj, dec.Patches)
	env.clock.Step(attestation.DefaultPositiveTTL + time.Minute)
	if again := env.ev.Mutate(context.Background(), Create(mutated)); len(again.Patches) != 0 {
		t.Fatalf("second admission patched: %s", dump(again.Patches))
	}
	// The validating path re-checks the pinned digests: the unsigned sidecar alone is denied.
	v := env.ev.Evaluate(context.Background(), Create(mutated))
	if v.Allowed || strings.Count(v.Message, "\n") != 1 || !strings.Contains(v.Message, "(sidecar)") {
		t.Fatalf("validation of the mutated Pod: %s", v.Message)
	}
}

func TestMutateWorkloads(t *testing.T) {
	for _, tc := range []struct {
		pin  string
		pins bool
	}{{"", false}, {"pods", false}, {"all", true}, {`"off"`, false}} {
		t.Run("pinDigests="+tc.pin, func(t *testing.T) {
			yaml := ""
			if tc.pin != "" {
				yaml = "mutation: {pinDigests: " + tc.pin + "}\n"
			}
			env := newVerifyEnv(t, withYAML(yaml))
			d := env.signed(t, "team/app", "v1")
			image := env.reg.Tagged("team/app", "v1")
			obj := Object(CronJob, "shop", "nightly", PodSpec{Containers: []Container{NewContainer("app", image)}})
			obj["metadata"].(map[string]any)["annotations"] = map[string]any{"team": "shop"}
			dec := env.ev.Mutate(context.Background(), Create(obj))
			key := image
			var want []admission.PatchOp
			if tc.pins {
				key = image + "@" + d.DigestStr()
				want = append(want, admission.PatchOp{Op: "replace", Path: "/spec/jobTemplate/spec/template/spec/containers/0/image", Value: key})
			}
			want = append(want, admission.PatchOp{Op: "add", Path: "/metadata/annotations/attest.continuu.ms~1receipt",
				Value: receipt(map[string]admission.ReceiptEntry{key: entry(env, t, d)})})
			if !reflect.DeepEqual(dec.Patches, want) {
				t.Fatalf("patches:\n got %s\nwant %s", dump(dec.Patches), dump(want))
			}
			if again := env.ev.Mutate(context.Background(), Create(applyPatches(t, obj, dec.Patches))); len(again.Patches) != 0 {
				t.Fatalf("second admission patched: %s", dump(again.Patches))
			}
		})
	}
}

func TestMutateWithoutTrustChangesNothing(t *testing.T) {
	env := newVerifyEnv(t, withoutTrust())
	env.signed(t, "team/app", "v1")
	if dec := env.ev.Mutate(context.Background(), Create(pod(env.reg.Tagged("team/app", "v1")))); len(dec.Patches) != 0 {
		t.Fatalf("patches without trust policies: %s", dump(dec.Patches))
	}
}

// TestReceipt: the receipt the mutating path writes passes require-receipt; one written by hand for an unverified
// digest does not, and the mutating path replaces it with what it verified (nothing: it removes it).
func TestReceipt(t *testing.T) {
	env := newVerifyEnv(t, withPolicies("require-attestation", "require-receipt"))
	env.signed(t, "team/app", "v1")
	image := env.reg.Tagged("team/app", "v1")
	obj := deployment(image)
	dec := env.ev.Mutate(context.Background(), Create(obj))
	mutated := applyPatches(t, obj, dec.Patches)
	if v := env.ev.Evaluate(context.Background(), Create(mutated)); !v.Allowed {
		t.Fatalf("receipt written by ATTEST denied: %s", v.Message)
	}

	forgedImage := env.reg.Tagged("team/unsigned", "v1")
	u := env.reg.PushRandomImage(t, "team/unsigned", "v1")
	forged := deployment(forgedImage)
	forgedReceipt := receipt(map[string]admission.ReceiptEntry{forgedImage: entry(env, t, u)})
	forged["metadata"].(map[string]any)["annotations"] = map[string]any{admission.ReceiptAnnotation: forgedReceipt}
	v := env.ev.Evaluate(context.Background(), Create(forged))
	want := `[require-receipt] spec.template.spec.containers[0] (c0): the ATTEST receipt records ` + u.DigestStr() + ` for image "` + forgedImage + `", but ATTEST has not verified a signature for that digest; sign the image so ATTEST can verify it, then apply the Deployment again`
	if v.Allowed || !contains(strings.Split(v.Message, "\n"), want) {
		t.Fatalf("forged receipt: allowed=%v, message lacks\n%s\ngot\n%s", v.Allowed, want, v.Message)
	}
	m := env.ev.Mutate(context.Background(), Create(forged))
	if wantOps := []admission.PatchOp{{Op: "remove", Path: "/metadata/annotations/attest.continuu.ms~1receipt"}}; !reflect.DeepEqual(m.Patches, wantOps) {
		t.Fatalf("mutating a forged receipt: %s", dump(m.Patches))
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// applyPatches applies add, replace and remove operations the way the API server does (RFC 6902), on a deep copy.
func applyPatches(t testing.TB, obj map[string]any, ops []admission.PatchOp) map[string]any {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		segs := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		for i, s := range segs {
			segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		}
		var parent any = out
		for _, s := range segs[:len(segs)-1] {
			switch p := parent.(type) {
			case map[string]any:
				parent = p[s]
			case []any:
				i, err := strconv.Atoi(s)
				if err != nil || i >= len(p) {
					t.Fatalf("%s: bad index %q", op.Path, s)
				}
				parent = p[i]
			}
		}
		last := segs[len(segs)-1]
		v := jsonValue(t, op.Value)
		switch p := parent.(type) {
		case map[string]any:
			if _, ok := p[last]; !ok && op.Op != "add" {
				t.Fatalf("%s %s: no such member", op.Op, op.Path)
			}
			if op.Op == "remove" {
				delete(p, last)
			} else {
				p[last] = v
			}
		case []any:
			i, err := strconv.Atoi(last)
			if err != nil || i >= len(p) || op.Op != "replace" {
				t.Fatalf("%s %s: unsupported in this test", op.Op, op.Path)
			}
			p[i] = v
		default:
			t.Fatalf("%s %s: parent is not a container", op.Op, op.Path)
		}
	}
	return out
}

func jsonValue(t testing.TB, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
