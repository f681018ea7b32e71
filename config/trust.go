package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/policies"
)

// PinDigests says which objects the mutating webhook pins to the digests it verified.
type PinDigests string

// The values of mutation.pinDigests.
const (
	// PinPods rewrites the images of Pods only (the default): nobody keeps Pods in git, so GitOps tools do not
	// fight the rewrite, and every Pod a workload creates runs exactly the digest that was verified. Workloads get
	// the receipt annotation only.
	PinPods PinDigests = "pods"
	// PinAll rewrites the images of every workload kind too (Deployments show OutOfSync in Argo CD and Flux).
	PinAll PinDigests = "all"
	// PinOff rewrites nothing; receipts are still written.
	PinOff PinDigests = "off"
)

// Mutation is the `mutation` section of policies.yaml: what the mutating webhook may change.
//
//	mutation:
//	  pinDigests: pods   # pods (default) | all | off
type Mutation struct {
	PinDigests PinDigests `json:"pinDigests,omitempty"`
}

// UnmarshalJSON accepts a string, or false for off (YAML 1.1 reads an unquoted off as false).
func (p *PinDigests) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "false":
		*p = PinOff
		return nil
	case "true":
		return fmt.Errorf("true is not a pinDigests value (YAML reads an unquoted on or yes as true): want pods, all or off")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want pods, all or off, got %s", b)
	}
	*p = PinDigests(s)
	return nil
}

// Pins reports whether objects of the kind are pinned: Pods unless off, every kind when all.
func (m Mutation) Pins(kind string) bool {
	switch m.PinDigests {
	case PinAll:
		return true
	case PinOff:
		return false
	}
	return kind == "Pod"
}

// Parse validates data (YAML or JSON); unknown fields, unknown policies and bad parameters are errors naming the
// field, e.g. "policies[1].parameters.trusted_registries[0]: got number, want string". Relative file names in the
// trust section (pemFile, trustedRootFile) resolve against the working directory; Load resolves them against the
// config file's directory.
func Parse(data []byte, engine *policies.Engine) (*Config, error) {
	return parse(data, engine, "")
}

// ParseIn is Parse with relative file names resolving against dir (the directory the content was read from).
func ParseIn(data []byte, engine *policies.Engine, dir string) (*Config, error) {
	return parse(data, engine, dir)
}

// parseFile parses the content of the file at path.
func parseFile(path string, data []byte, engine *policies.Engine) (*Config, error) {
	return parse(data, engine, filepath.Dir(path))
}

// buildTrust loads the trust section (keys, roots, predicate checks) and validates the mutation section. Errors
// name the field: "trust.policies[0].authorities[1].keyless.identities: at least one identity is required".
// Key authorities given by secretRef are refused here: the configuration is loaded without a cluster client.
func (cfg *Config) buildTrust(f File, baseDir string) error {
	switch f.Mutation.PinDigests {
	case "":
		cfg.Mutation.PinDigests = PinPods
	case PinPods, PinAll, PinOff:
		cfg.Mutation.PinDigests = f.Mutation.PinDigests
	default:
		return fmt.Errorf("mutation.pinDigests: %q is not one of pods, all, off", f.Mutation.PinDigests)
	}
	if f.Trust.NoMatch == "" && len(f.Trust.Policies) == 0 {
		return nil // no trust section: Trust stays nil (no policy covers any image; noMatch deny)
	}
	tp, err := attestation.NewTrustPolicies(f.Trust, baseDir)
	if err != nil {
		return err
	}
	cfg.Trust = tp
	return nil
}
