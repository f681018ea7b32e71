package bundles

import (
	"fmt"
	"path"
	"strings"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// cedarPolicies parses and validates (against ATTEST's Cedar schema) each .cedar file as one policy set, named after
// the file as a cedar directory's files are: acme/production.cedar is the policy "production". Errors name the
// file and line. The policies build their entities with the default options; the configuration that loads them
// gives them its own (cedar.WithOptions).
func cedarPolicies(files []File, prefix string) ([]*policies.Policy, error) {
	var out []*policies.Policy
	byName := map[string]string{}
	for _, f := range files {
		file := named(prefix, f.Path)
		name := strings.TrimSuffix(path.Base(f.Path), ".cedar")
		if !policies.IsLabel(name) {
			return nil, fmt.Errorf("%s: %q is not a policy name (lower-case letters, digits and '-'): rename the file, whose name names the Cedar policy set", file, name)
		}
		if prev, dup := byName[name]; dup {
			return nil, fmt.Errorf("%s: the Cedar policy set %q is already the file %s (a set is named after its file, whatever its directory)", file, name, prev)
		}
		byName[name] = file
		set, err := cedar.Parse(cedar.Source{Name: file, Text: string(f.Data)})
		if err != nil {
			return nil, err
		}
		if err := set.Validate(); err != nil {
			return nil, err
		}
		p, err := cedar.NewPolicy(name, file, set, string(f.Data), cedar.Options{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// named is a bundle file's name in policies and errors: "<prefix>/<path>", or the path without a prefix.
func named(prefix, p string) string {
	if prefix == "" {
		return p
	}
	return prefix + "/" + p
}
