package attestation

import "testing"

// TestCacheKey names each verdict and tag resolution by all of its parts, apart from how they split.
func TestCacheKey(t *testing.T) {
	p := &TrustPolicy{hash: "h1"}
	ref := Reference{Registry: "registry.example.com", Repository: "team/app", Tag: "1.0"}
	key := verdictKey(ref, p)("sha256:aa")
	if len(key) != 32 {
		t.Fatalf("key of %d bytes, want 32", len(key))
	}
	if again := verdictKey(ref, p)("sha256:aa"); again != key {
		t.Error("the same verdict named twice differently")
	}
	others := map[string]string{
		"another digest":     verdictKey(ref, p)("sha256:ab"),
		"another policy":     verdictKey(ref, &TrustPolicy{hash: "h2"})("sha256:aa"),
		"another repository": verdictKey(Reference{Registry: "registry.example.com", Repository: "team/api"}, p)("sha256:aa"),
		"another registry":   verdictKey(Reference{Registry: "mirror.example.com", Repository: "team/app"}, p)("sha256:aa"),
		"parts split apart":  verdictKey(Reference{Registry: "registry.example.com/team", Repository: "app"}, p)("sha256:aa"),
		"the tag's key":      tagKey(ref),
	}
	for name, other := range others {
		if other == key {
			t.Errorf("%s: the same key", name)
		}
	}
	if cacheKey("a", "bc") == cacheKey("ab", "c") || cacheKey("a", "") == cacheKey("", "a") {
		t.Error("parts split differently gave one key")
	}
	if tagKey(Reference{Registry: "registry.example.com", Repository: "team/app", Tag: "1.0", Digest: "sha256:aa"}) != "" {
		t.Error("a digest reference has a tag key")
	}
	if tagKey(ref) == tagKey(Reference{Registry: "registry.example.com", Repository: "team/app", Tag: "1.1"}) {
		t.Error("two tags of one repository share a key")
	}
}
