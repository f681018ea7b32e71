package admission

import (
	"context"
	"fmt"
	"strings"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workload"
)

// policyPatches runs the patch rule of every policy configured with mutate: true that applies to the request,
// so one policy audits, enforces or repairs depending on its settings, never three copies of it. The API server
// applies the patches before validation, which therefore judges the repaired object; a warning names what changed
// and which policy changed it.
func (e *Evaluator) policyPatches(ctx context.Context, in Input, cfg *config.Config, d *Decision) {
	var doc *policies.Document
	for _, p := range e.engineFor(cfg).Policies() {
		s := cfg.Policies[p.Name]
		if !s.Mutate || !p.HasPatch() || !s.Match.Applies(in.Request.Kind, in.Request.Namespace, in.NamespaceLabels, policies.ObjectLabels(in.Object)) {
			continue
		}
		if mode, _ := e.effectiveMode(s, in); mode == policies.ModeOff || mode == "" {
			continue
		}
		if doc == nil {
			gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
			containers, err := workload.Extract(gk, in.Request.SubResource, in.Object)
			if err != nil {
				return // validation reports the unreadable object
			}
			input := e.policyInput(in, cfg, containers, e.verifyImages(ctx, in, cfg, containers))
			if doc, err = policies.NewDocument(input); err != nil {
				return
			}
		}
		ops, err := p.Patch(ctx, doc, s)
		if err != nil {
			d.Warnings = append(d.Warnings, fmt.Sprintf("[%s] could not compute its patch, so nothing was changed: %v", p.Name, err))
			continue
		}
		if len(ops) == 0 {
			continue
		}
		paths := make([]string, 0, len(ops))
		for _, op := range ops {
			d.Patches = append(d.Patches, PatchOp{Op: op.Op, Path: op.Path, Value: op.Value, Policy: p.Name})
			paths = append(paths, op.Op+" "+op.Path)
		}
		d.Warnings = append(d.Warnings, fmt.Sprintf("mutated by [%s]: %s", p.Name, strings.Join(paths, ", ")))
	}
	d.Warnings = CapWarnings(d.Warnings)
}
