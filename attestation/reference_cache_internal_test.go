package attestation

import (
	"fmt"
	"testing"
)

// A reference answered from the cache is the reference (or the error) parsing gives, and the cache stays bounded.
func TestParseReferenceCache(t *testing.T) {
	images := []string{"nginx", "gcr.io/company/app:1.0", "gcr.io/company/../evil/app:1", "", "Registry.Example.com:5000/team/app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	for _, img := range images {
		want, wantErr := parseReference(img)
		for range 2 { // a miss, then a hit
			got, err := ParseReference(img)
			if got != want || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("ParseReference(%q) = %+v, %v; parsing gives %+v, %v", img, got, err, want, wantErr)
			}
		}
	}
	for i := range 5000 {
		_, _ = ParseReference(fmt.Sprintf("gcr.io/company/app:v%d", i))
	}
	if n := parsedReferences.Len(); n > 4096 {
		t.Errorf("the cache holds %d references, more than its bound of 4096", n)
	}
}
