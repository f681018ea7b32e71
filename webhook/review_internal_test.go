package webhook

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	kjson "sigs.k8s.io/json"
)

// onePassSeeds are review bodies the one-pass reading must take or leave to the two-pass one.
var onePassSeeds = []string{
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},` +
		`"operation":"UPDATE","userInfo":{"username":"dana","groups":["dev"],"extra":{"amr":["mfa"]}},"dryRun":true,` +
		`"object":{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":3,"x":1.5,"big":12345678901234567890}},` +
		`"oldObject":{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":2}},"options":{"kind":"UpdateOptions"}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","operation":"DELETE","object":null,"oldObject":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u3","object":"a Deployment"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u4","options":[1]}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u5","object":{"spec":{"x":1e400}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u6","Object":{"kind":"Pod"},"object":{"kind":"Job"}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
	`[1]`,
	// Numbers as sigs.k8s.io/json's PreserveInts reads them; names given twice and invalid UTF-8, which only the
	// one-pass and two-pass readings take (the fast one leaves them).
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u7","object":{"a":1e3,"b":-0,"c":1.0,"d":-9223372036854775808,"e":[true,null,"s\u00e9"]}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u8","object":{"kind":"Pod","kind":"Job"}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u9","uid":"u10"}}`,
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u11\",\"object\":{\"name\":\"\xff\"}}}",
	// Escaped names, one of them a known name (readName's two ways).
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u12","object":{"\u006bind":"Pod","a\"b":{"spec":1}}}}`,
}

// twoPasses reads body as the two-pass path does; false where it refuses it.
func twoPasses(body []byte) (*decoded, bool) {
	d := &decoded{}
	if kjson.UnmarshalCaseSensitivePreserveInts(body, &d.review) != nil || d.review.Request == nil {
		return nil, false
	}
	var err error
	req := d.review.Request
	if d.object, err = objectMap(req.Object.Raw); err != nil {
		return nil, false
	}
	if d.oldObject, err = objectMap(req.OldObject.Raw); err != nil {
		return nil, false
	}
	if d.options, err = objectMap(req.Options.Raw); err != nil {
		return nil, false
	}
	req.Object.Raw, req.OldObject.Raw, req.Options.Raw = nil, nil, nil // the one pass keeps no raw bytes
	return d, true
}

// checkOnePass fails when the one-pass reading takes a body the two-pass one refuses, or reads it differently;
// and when it leaves a body the two-pass one takes.
func checkOnePass(t *testing.T, body []byte) {
	one := &decoded{}
	took := one.decodeOnePass(body)
	two, ok := twoPasses(body)
	if took != ok {
		t.Fatalf("one pass took the body: %v, two passes: %v\n%s", took, ok, body)
	}
	if took && !reflect.DeepEqual(one, two) {
		t.Fatalf("one pass read\n%#v\ntwo passes\n%#v\nfrom %s", one, two, body)
	}
	fast := &decoded{}
	if fast.decodeFast(body) {
		if !ok {
			t.Fatalf("the fast reading took a body the two-pass one refuses:\n%s", body)
		}
		if !reflect.DeepEqual(fast, two) {
			t.Fatalf("the fast reading read\n%#v\ntwo passes\n%#v\nfrom %s", fast, two, body)
		}
	}
}

// TestFastReadingLeavesWhatItRefuses checks which seeds the fast reading takes: well-formed reviews, and not
// names given twice or invalid UTF-8 (read as before by the one-pass reading, last name winning).
func TestFastReadingLeavesWhatItRefuses(t *testing.T) {
	for i, want := range []bool{true, true, false, false, false, true, false, false, true, false, false, false, true} {
		if got := (&decoded{}).decodeFast([]byte(onePassSeeds[i])); got != want {
			t.Errorf("seed %d: fast reading took it: %v, want %v\n%s", i, got, want, onePassSeeds[i])
		}
	}
	d := &decoded{}
	if !d.decodeOnePass([]byte(onePassSeeds[9])) || d.object["kind"] != "Job" {
		t.Errorf("a name given twice: the one-pass reading gives %v, want the last value", d.object)
	}
}

func TestOnePassReadsAsTwoPasses(t *testing.T) {
	for _, body := range onePassSeeds {
		checkOnePass(t, []byte(body))
	}
	if !(&decoded{}).decodeOnePass([]byte(onePassSeeds[0])) {
		t.Fatal("a well-formed review did not take the one-pass reading")
	}
}

// FuzzOnePass checks that reading a review in one pass gives what reading it in two passes gives, for any body.
func FuzzOnePass(f *testing.F) {
	for _, body := range onePassSeeds {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkOnePass(t, body) })
}

// BenchmarkReadReview compares reading a 3-container Deployment's review fast, in one pass and in two.
func BenchmarkReadReview(b *testing.B) {
	body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",` +
		`"kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},` +
		`"name":"web","namespace":"shop","operation":"CREATE","userInfo":{"username":"dana","groups":["dev","system:authenticated"]},` +
		`"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","labels":{"app":"web"},` +
		`"annotations":{"attest.continuu.ms/audit-logging":"enabled"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},` +
		`"template":{"metadata":{"labels":{"app":"web"}},"spec":{"initContainers":[{"name":"migrate","image":"registry.example.com/team/migrate:1.0",` +
		`"resources":{"limits":{"cpu":"500m","memory":"256Mi"}}}],"containers":[{"name":"app","image":"registry.example.com/team/app:1.0",` +
		`"ports":[{"containerPort":8080}],"resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"100m"}},` +
		`"securityContext":{"runAsNonRoot":true,"readOnlyRootFilesystem":true}},{"name":"proxy","image":"registry.example.com/team/proxy:2.1",` +
		`"resources":{"limits":{"cpu":"200m","memory":"128Mi"}}}]}}}},"oldObject":null,"dryRun":false,"options":{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !(&decoded{}).decodeFast(body) {
				b.Fatal("not read")
			}
		}
	})
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !(&decoded{}).decodeOnePass(body) {
				b.Fatal("not read")
			}
		}
	})
	b.Run("two-passes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := twoPasses(body); !ok {
				b.Fatal("not read")
			}
		}
	})
}

// TestDecodedReviewOutlivesItsBuffer: the body's buffer is reused by the next review, so nothing read from a review
// may refer to its bytes, whichever way it was read (the fast reading, or the others for names given twice).
func TestDecodedReviewOutlivesItsBuffer(t *testing.T) {
	for _, body := range []string{onePassSeeds[0], onePassSeeds[9], onePassSeeds[12]} {
		d, rerr := readReview(httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(body)))
		if rerr != nil {
			t.Fatalf("%s: %v", body, rerr)
		}
		before := fmt.Sprintf("%#v %#v %#v %#v", d.review.Request, d.object, d.oldObject, d.options)
		// Reviews of the same length with every byte changed, read into the same buffer.
		other := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' {
				return 'a' + (r-'a'+1)%26
			}
			return r
		}, body)
		for range 4 {
			_, _ = readReview(httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(other)))
		}
		if after := fmt.Sprintf("%#v %#v %#v %#v", d.review.Request, d.object, d.oldObject, d.options); after != before {
			t.Errorf("%s: the review changed once its buffer was reused:\nbefore %s\nafter  %s", body, before, after)
		}
	}
}
