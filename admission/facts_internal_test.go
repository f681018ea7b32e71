package admission

import (
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/policies"
)

// TestImageKeyCoversFacts fails when the verdict gains a field: imageKey must then cover it, or a hit could hand
// out the facts of another verdict.
func TestImageKeyCoversFacts(t *testing.T) {
	covered := map[string]bool{"Digest": true, "Trust": true, "Signature": true, "Attestations": true, "VerifiedAt": true}
	for f := range reflect.TypeFor[attestation.Facts]().Fields() {
		if !covered[f.Name] {
			t.Errorf("attestation.Facts.%s is not in imageKey", f.Name)
		}
	}
	if n := reflect.TypeFor[attestation.TrustFacts]().NumField(); n != 6 {
		t.Errorf("attestation.TrustFacts has %d fields, trustKey covers 6", n)
	}
	if typ := reflect.TypeFor[attestation.SignatureFacts](); typ.NumField() != 4 || !typ.Comparable() {
		t.Errorf("attestation.SignatureFacts has %d fields (imageKey holds the 4 it had as a comparable value)", typ.NumField())
	}
}

// TestImageEntries: an entry is what ImageInput builds, converted; anything it is made of that differs misses.
func TestImageEntries(t *testing.T) {
	trusted, err := attestation.NewTrustedRegistries([]string{"gcr.io/company"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := attestation.NewTrustedRegistries([]string{"quay.io/company"})
	if err != nil {
		t.Fatal(err)
	}
	const image = "gcr.io/company/app:1"
	verdict := attestation.Facts{
		Digest:    "sha256:0000000000000000000000000000000000000000000000000000000000000001",
		Trust:     attestation.TrustFacts{Policy: "company", Configured: true, Checked: true, RequiredAttestations: []string{"https://slsa.dev/provenance/v1"}},
		Signature: attestation.SignatureFacts{Verified: true, Signer: "key", Authority: "company-key"},
		Attestations: []attestation.AttestationFacts{
			{PredicateType: "https://slsa.dev/provenance/v1", Verified: true, Signer: "key", Predicate: map[string]any{"builder": map[string]any{"id": "b"}}},
		},
	}
	with := func(change func(f *attestation.Facts)) *attestation.Facts {
		f := verdict
		f.Trust.RequiredAttestations = append([]string(nil), f.Trust.RequiredAttestations...)
		change(&f)
		return &f
	}
	var ie imageEntries
	var atts attestationsMemo
	base, baseTerm, ok := ie.entry(image, trusted, &verdict, &atts)
	if !ok {
		t.Fatal("the entry was not converted")
	}
	// wantFresh: the entry's facts and their conversion are what a fresh build of the same facts converts to.
	wantFresh := func(t *testing.T, img string, facts map[string]any, term policies.Converted, reg *attestation.TrustedRegistries, f *attestation.Facts) {
		t.Helper()
		var fresh attestationsMemo
		plain := imageFacts(img, reg)
		if f != nil {
			fresh.policyFacts(map[string]map[string]any{img: plain}, map[string]attestation.Facts{img: *f})
		}
		want := imagesValue(t, img, plain, nil)
		if got := imagesValue(t, img, facts, &term); got.Compare(want) != 0 {
			t.Errorf("entry %v, built afresh %v", got, want)
		}
		if got := imagesValue(t, img, facts, nil); got.Compare(want) != 0 {
			t.Errorf("entry's facts %v, built afresh %v", got, want)
		}
	}
	wantFresh(t, image, base, baseTerm, trusted, &verdict)
	if again, _, _ := ie.entry(image, trusted, &verdict, &atts); reflect.ValueOf(again).Pointer() != reflect.ValueOf(base).Pointer() {
		t.Error("the same image, registries and verdict built a new entry")
	}
	for _, tc := range []struct {
		name    string
		image   string
		trusted *attestation.TrustedRegistries
		verdict *attestation.Facts
	}{
		{"another image", "gcr.io/company/app:2", trusted, &verdict},
		{"other trusted registries", image, other, &verdict},
		{"no verifier", image, trusted, nil},
		{"another digest", image, trusted, with(func(f *attestation.Facts) {
			f.Digest = "sha256:00000000000000000000000000000000000000000000000000000000000000ff"
		})},
		{"signature not verified", image, trusted, with(func(f *attestation.Facts) { f.Signature.Verified = false })},
		{"another signer", image, trusted, with(func(f *attestation.Facts) { f.Signature.Signer = "someone" })},
		{"a signature error", image, trusted, with(func(f *attestation.Facts) { f.Signature.Error = "no signature" })},
		{"a trust error", image, trusted, with(func(f *attestation.Facts) { f.Trust.Error = "registry unreachable" })},
		{"another trust policy", image, trusted, with(func(f *attestation.Facts) { f.Trust.Policy = "other" })},
		{"no match", image, trusted, with(func(f *attestation.Facts) { f.Trust.NoMatch = "deny" })},
		{"not configured", image, trusted, with(func(f *attestation.Facts) { f.Trust.Configured = false })},
		{"not checked", image, trusted, with(func(f *attestation.Facts) { f.Trust.Checked = false })},
		{"other required attestations", image, trusted, with(func(f *attestation.Facts) { f.Trust.RequiredAttestations = []string{"https://spdx.dev/Document"} })},
		{"a new verdict's attestations", image, trusted, with(func(f *attestation.Facts) {
			f.Attestations = append([]attestation.AttestationFacts(nil), f.Attestations...)
			f.Attestations[0].Verified = false
		})},
		{"no attestations", image, trusted, with(func(f *attestation.Facts) { f.Attestations = nil })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			facts, term, ok := ie.entry(tc.image, tc.trusted, tc.verdict, &atts)
			if !ok {
				t.Fatal("the entry was not converted")
			}
			if reflect.ValueOf(facts).Pointer() == reflect.ValueOf(base).Pointer() {
				t.Fatal("a hit on the first entry")
			}
			wantFresh(t, tc.image, facts, term, tc.trusted, tc.verdict)
		})
	}
}

// TestImageEntriesRequiredAttestations: two lists of required attestations that join to the same text are
// different verdicts.
func TestImageEntriesRequiredAttestations(t *testing.T) {
	var ie imageEntries
	var atts attestationsMemo
	two := attestation.Facts{Trust: attestation.TrustFacts{Policy: "p", Checked: true, RequiredAttestations: []string{"a", "b"}}}
	one := attestation.Facts{Trust: attestation.TrustFacts{Policy: "p", Checked: true, RequiredAttestations: []string{"a\x00b"}}}
	first, _, _ := ie.entry("gcr.io/company/app:1", nil, &two, &atts)
	second, _, _ := ie.entry("gcr.io/company/app:1", nil, &one, &atts)
	if reflect.ValueOf(first).Pointer() == reflect.ValueOf(second).Pointer() {
		t.Fatal(`required attestations ["a\x00b"] hit the entry of ["a", "b"]`)
	}
}

// TestImageEntriesNotConvertible: facts that cannot be converted are returned for NewDocument to report, not kept.
func TestImageEntriesNotConvertible(t *testing.T) {
	f := attestation.Facts{Attestations: []attestation.AttestationFacts{{PredicateType: "p", Predicate: map[string]any{"c": make(chan int)}}}}
	var ie imageEntries
	var atts attestationsMemo
	for range 2 {
		facts, _, ok := ie.entry("gcr.io/company/app:1", nil, &f, &atts)
		if ok {
			t.Fatal("facts holding a channel were converted")
		}
		if _, err := policies.NewDocument(policies.Input{Images: map[string]map[string]any{"gcr.io/company/app:1": facts}}); err == nil {
			t.Fatal("NewDocument accepted facts holding a channel")
		}
	}
	if ie.cache.Len() != 0 {
		t.Fatalf("%d entries kept", ie.cache.Len())
	}
}

// imagesValue is input.images of a document holding facts, converted by the document or taken from term.
func imagesValue(t *testing.T, image string, facts map[string]any, term *policies.Converted) ast.Value {
	t.Helper()
	in := policies.Input{Images: map[string]map[string]any{image: facts}}
	if term != nil {
		in.ImageTerms = map[string]policies.Converted{image: *term}
	}
	doc, err := policies.NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	v, err := doc.Value(policies.Settings{}).(ast.Object).Find(ast.Ref{ast.StringTerm("images")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
