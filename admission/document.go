package admission

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workload"
)

// InputDocument is the input document the pipeline gives policy for in, as JSON values: the parts of the input
// contract built as Evaluate builds them (containers from every pod spec, the verifier's image facts, the
// namespace's production flag) and the policy's effective parameters as input.params. The workbench traces with
// it and snapshot tests replay it, so a test asserts exactly what the webhook's evaluation saw.
func (e *Evaluator) InputDocument(ctx context.Context, in Input, policy string) (map[string]any, error) {
	cfg := e.config()
	gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
	var containers []workload.Container
	if in.Object != nil {
		var err error
		if containers, err = workload.Extract(gk, in.Request.SubResource, in.Object); err != nil {
			return nil, fmt.Errorf("cannot read the %s: %w", in.Request.Kind, err)
		}
	}
	input := e.policyInput(in, cfg, containers, e.verifyImages(ctx, in, cfg, containers))
	doc, err := policies.NewDocument(input)
	if err != nil {
		return nil, fmt.Errorf("cannot read the %s: %w", in.Request.Kind, err)
	}
	v, err := ast.JSON(doc.Value(cfg.Policies[policy]))
	if err != nil {
		return nil, fmt.Errorf("input document: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("input document is a %T, not an object", v)
	}
	return m, nil
}
