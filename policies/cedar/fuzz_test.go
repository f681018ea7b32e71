package cedar_test

import (
	"encoding/json"
	"testing"

	"github.com/continuums/attest/policies/cedar"
)

// FuzzParse feeds arbitrary policy text (a Policy's spec.cedar is untrusted until validated) and arbitrary
// objects (the entity builder converts whatever the API server or a manifest holds): neither may panic, and a
// text that parses must validate or fail with ErrInvalid.
func FuzzParse(f *testing.F) {
	f.Add(hostNetwork, `{"apiVersion":"v1","kind":"Pod","spec":{"hostNetwork":true}}`)
	f.Add(`@default("deny") permit(principal, action, resource) when { context.namespace.production };`, `{"metadata":{"labels":{"a":"b"},"annotations":{"attest.continuu.ms/approval-id":"EMERGENCY-1"}}}`)
	f.Add(`forbid(principal, action, resource) unless { resource has metadata && resource.metadata has labels && resource.metadata.labels.contains({"key":"owner","value":principal.name}) };`, `{"metadata":{"labels":{"owner":1}},"spec":{"containers":[{"resources":{"limits":{"cpu":1.5}}}]}}`)
	f.Add(`@id("") forbid(principal,action,resource);`, `{"spec":[[[[[]]]]]}`)
	f.Fuzz(func(t *testing.T, text, objectJSON string) {
		s, err := cedar.Parse(cedar.Source{Name: "fuzz.cedar", Text: text})
		if err != nil {
			return
		}
		_ = s.Validate()
		var obj map[string]any
		if json.Unmarshal([]byte(objectJSON), &obj) != nil {
			return
		}
		for _, kind := range []string{"Pod", "Unknown"} {
			in := input("UPDATE", "", "v1", kind, object(obj), oldObject(obj))
			_, _ = s.Decide(cedar.Options{}, in)
		}
	})
}
