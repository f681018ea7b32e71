package attestation

import (
	"context"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// NotCheckedOffline is trust.error of an image a trust policy covers when verification runs offline.
const NotCheckedOffline = "not checked (--offline)"

// OfflineVerifier establishes what needs no registry — the parsed reference, the trust policy that covers it, what
// that policy requires — and reports every covered image as not checked (trust.checked false, trust.error
// NotCheckedOffline), so require-attestation denies it as unverified. Uncovered and unparsable images get the
// same facts as from a Verifier. `attest policy check --offline` uses it; it never opens a connection.
type OfflineVerifier struct {
	policies *TrustPolicies
}

// NewOfflineVerifier answers for policies (nil: no policy covers any image).
func NewOfflineVerifier(policies *TrustPolicies) *OfflineVerifier {
	return &OfflineVerifier{policies: policies}
}

// VerifyAll answers at once, by image as written; ctx, keychain and reserve are not used.
func (o *OfflineVerifier) VerifyAll(_ context.Context, images []string, _ authn.Keychain, _ time.Duration) map[string]Facts {
	out := make(map[string]Facts, len(images))
	for _, img := range images {
		if _, seen := out[img]; seen {
			continue
		}
		f, _, p := coverage(o.policies, time.Now(), img)
		if p != nil {
			f.Trust.Error = NotCheckedOffline
		}
		out[img] = f
	}
	return out
}
