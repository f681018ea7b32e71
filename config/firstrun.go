package config

import "github.com/continuums/attest/policies"

// RequireAttestationPolicy is the library policy that judges the verifier's trust facts.
const RequireAttestationPolicy = "require-attestation"

// applyFirstRun runs require-attestation in audit when the configuration has no trust section at all and no entry
// sets the policy's mode (mode, enforcement, or enforceAfter): a first run, where denying every image would read
// as a failure of the user's manifests rather than of a configuration nobody has written yet. An explicit mode
// is kept (enforce still denies, with one finding per object), and a trust section, even one with only noMatch,
// keeps the library's default: configured trust stays fail-closed.
func (cfg *Config) applyFirstRun(f File) {
	if cfg.Trust != nil {
		return
	}
	s, ok := cfg.Policies[RequireAttestationPolicy]
	if !ok || s.Mode != policies.ModeEnforce {
		return
	}
	for _, e := range f.Policies {
		if e.Name == RequireAttestationPolicy && (e.Mode != "" || e.Enforcement != "" || e.EnforceAfter != "") {
			return
		}
	}
	s.Mode = policies.ModeAudit
	cfg.Policies[RequireAttestationPolicy] = s
}
