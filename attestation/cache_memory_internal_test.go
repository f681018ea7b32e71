package attestation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// cachedProvenance is a SLSA v1 predicate of the size hack/loadgen attests (about 0.9 KB as JSON), distinct per
// image as real provenance is.
func cachedProvenance(image string) []byte {
	return fmt.Appendf(nil, `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",`+
		`"externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/company/%[1]s",`+
		`"path":".github/workflows/release.yml"}},"internalParameters":{"github":{"event_name":"push",`+
		`"repository_id":"123456789","repository_owner_id":"987654321"}},"resolvedDependencies":[{`+
		`"uri":"git+https://github.com/company/%[1]s@refs/heads/main","digest":{"gitCommit":`+
		`"4f9a3c1e2b7d6a5f8e9c0b1a2d3e4f5a6b7c8d9e"}}]},"runDetails":{"builder":{"id":`+
		`"https://github.com/company/builder/.github/workflows/build.yml@refs/tags/v2.1.0"},"metadata":{`+
		`"invocationId":"https://github.com/company/%[1]s/actions/runs/8123456789/attempts/1",`+
		`"startedOn":"2026-11-24T09:12:44Z","finishedOn":"2026-11-24T09:19:02Z"},"byproducts":[{`+
		`"name":"sbom.spdx.json","digest":{"sha256":"0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"}}]}}`,
		image)
}

// fillCache caches n passing verdicts as verification produces them (each with its own decoded predicate and
// freshly built strings) and returns the cache.
func fillCache(tb testing.TB, n int) *Cache {
	tb.Helper()
	c, err := NewCache(CacheOptions{Size: n})
	if err != nil {
		tb.Fatal(err)
	}
	const slsaType = "https://slsa.dev/provenance/v1"
	p := &TrustPolicy{name: "release", hash: "0123456789abcdef0123456789abcdef", requirements: []*requirement{{predicateType: slsaType}}}
	keyID := "sha256:" + hex.EncodeToString(make([]byte, 32))
	for i := range n {
		image := fmt.Sprintf("app-%05d", i)
		sum := sha256.Sum256([]byte(image))
		digest := "sha256:" + hex.EncodeToString(sum[:])
		var predicate any
		if err := json.Unmarshal(cachedProvenance(image), &predicate); err != nil {
			tb.Fatal(err)
		}
		ref := Reference{Registry: "registry.example.com", Repository: "company/" + image}
		_, err := c.verdict(context.Background(), verdictKey(ref, p)(digest), func(context.Context) Facts {
			signer := string([]byte(keyID)) // each verification builds its own signer string
			return Facts{
				Digest:       digest,
				Trust:        TrustFacts{Policy: p.name, NoMatch: NoMatchDeny, Checked: true, RequiredAttestations: p.RequiredAttestations()},
				Signature:    SignatureFacts{Verified: true, Signer: signer, Authority: "release-key"},
				Attestations: []AttestationFacts{{PredicateType: slsaType, Verified: true, Signer: string([]byte(keyID)), Predicate: predicate}},
				VerifiedAt:   time.Now(),
			}
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if c.Len() != n {
		tb.Fatalf("%d verdicts cached, want %d", c.Len(), n)
	}
	return c
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// cachedBytesPerVerdict is the live heap that n cached verdicts hold, per verdict.
func cachedBytesPerVerdict(tb testing.TB, n int) float64 {
	before := liveHeap()
	c := fillCache(tb, n)
	after := liveHeap()
	runtime.KeepAlive(c)
	return float64(after-before) / float64(n)
}

// BenchmarkCachedVerdictHeap reports the live heap per cached verdict (after GC) with 10,000 verdicts cached,
// the `attest serve --verify-cache-size 10000` of hack/loadgen -cache.
func BenchmarkCachedVerdictHeap(b *testing.B) {
	var per float64
	for b.Loop() {
		per = cachedBytesPerVerdict(b, 10000)
	}
	b.ReportMetric(per, "heap-B/verdict")
}

// TestCachedVerdictHeap bounds the memory of a cached verdict: with 10,000 of them, attest serve stays within its
// memory target only if each holds its predicate compactly.
func TestCachedVerdictHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache of 10,000 verdicts")
	}
	per := cachedBytesPerVerdict(t, 10000)
	t.Logf("%.0f bytes of live heap per cached verdict", per)
	if per > 3*1024 {
		t.Errorf("%.0f bytes of live heap per cached verdict, want at most 3 KiB", per)
	}
}

// TestCompactFactsSameForms pins that a cached verdict's compact predicates leave its JSON form (with and without
// HTML escaping) and its Map form as they were.
func TestCompactFactsSameForms(t *testing.T) {
	var predicate any
	if err := json.Unmarshal([]byte(`{"z":[1,0.1,-0,1e21,123456789012345678,true,null,"<a&b>","\u2028 é \ud83d\ude00"],`+
		`"a":{"":{},"k":[]},"n":-3.25e-7}`), &predicate); err != nil {
		t.Fatal(err)
	}
	f := Facts{
		Digest:    "sha256:" + strings.Repeat("a", 64),
		Trust:     TrustFacts{Policy: "release", NoMatch: NoMatchDeny, Checked: true, Error: "e", RequiredAttestations: []string{"p", "q", "r"}},
		Signature: SignatureFacts{Verified: true, Signer: "s", Authority: "a"},
		Attestations: []AttestationFacts{
			{PredicateType: "p", Verified: true, Signer: "s", Predicate: predicate},
			{PredicateType: "q", Error: "missing"},
			{PredicateType: "r", Predicate: map[string]any{"n": 1}}, // not as decoded from JSON: kept as it is
		},
	}
	c := compactFacts(f)
	if _, ok := c.Attestations[0].Predicate.(PredicateJSON); !ok {
		t.Fatalf("predicate kept as %T", c.Attestations[0].Predicate)
	}
	if !reflect.DeepEqual(c.Attestations[2].Predicate, f.Attestations[2].Predicate) || c.Attestations[1].Predicate != nil {
		t.Fatalf("predicates %#v", c.Attestations)
	}
	for _, escape := range []bool{true, false} {
		encode := func(f Facts) string {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(escape)
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		if got, want := encode(c), encode(f); got != want {
			t.Errorf("escape HTML %v: JSON form\n got %s\nwant %s", escape, got, want)
		}
	}
	if !reflect.DeepEqual(c.Map(), f.Map()) {
		t.Errorf("Map()\n got %v\nwant %v", c.Map(), f.Map())
	}
	if !reflect.DeepEqual(c.Attestations[0].PredicateValue(), predicate) {
		t.Errorf("PredicateValue() = %v", c.Attestations[0].PredicateValue())
	}
}
