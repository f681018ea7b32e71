package admission

import (
	"context"
	"strings"
	"time"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/workload"
)

// Mutate answers the mutating webhook: it records PolicyException governance (creator, approvals) and stamps
// who applied exemption annotations, so the Pods a controller later creates from a template can be trusted
// to carry them. It denies only an approval that must not count; everything else is allowed, with patches.
func (e *Evaluator) Mutate(ctx context.Context, in Input) Decision {
	start := e.clock.Now()
	d := e.mutate(ctx, in)
	d.Duration = e.clock.Since(start)
	return d
}

func (e *Evaluator) mutate(ctx context.Context, in Input) Decision {
	if in.Request.Operation != "CREATE" && in.Request.Operation != "UPDATE" || in.Object == nil {
		return Decision{Allowed: true, Code: 200}
	}
	cfg := e.config()
	if isException(in) {
		return e.mutateException(in, cfg)
	}
	d := Decision{Allowed: true, Code: 200, Patches: stampPatches(in, cfg)}
	e.policyPatches(ctx, in, cfg, &d)
	e.imagePatches(ctx, in, cfg, &d)
	return d
}

// stampPatches sets policy.attest.continuu.ms/exempt-authorized-by wherever exemption annotations are, to the
// requester when it may use them, and removes a stamp anyone else wrote. Controllers keep the stamp their
// owner's template carries: that is how it reaches the Pods.
func stampPatches(in Input, cfg *config.Config) []PatchOp {
	gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
	g := cfg.Governance
	if g.IsController(in.Request.Username) {
		return nil
	}
	authorized := g.MayAnnotate(in.Request.Username, in.Request.Groups)
	var ops []PatchOp
	visit := func(pointer string, md map[string]any) {
		ann, _ := md["annotations"].(map[string]any)
		_, exempt := ann[exemptions.AnnotationExempt]
		stamp, stamped := ann[exemptions.AnnotationAuthorizedBy]
		key := pointer + "/annotations/" + escapePointer(exemptions.AnnotationAuthorizedBy)
		switch {
		case exempt && authorized && stamp != in.Request.Username:
			ops = append(ops, PatchOp{Op: "add", Path: key, Value: in.Request.Username})
		case stamped && (!exempt || !authorized):
			ops = append(ops, PatchOp{Op: "remove", Path: key})
		}
	}
	if md, ok := in.Object["metadata"].(map[string]any); ok {
		visit("/metadata", md)
	}
	if gk.Kind != "Pod" {
		if md := workload.PodTemplateMetadata(gk, in.Object); md != nil {
			visit("/"+strings.ReplaceAll(templatePath(gk), ".", "/")+"/metadata", md)
		}
	}
	return ops
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// timeOf is the request time, which judges every expiry.
func timeOf(in Input) time.Time { return time.Unix(0, in.Request.TimestampNS).UTC() }

// knownPolicy reports whether a policy exists in the configuration's engine (custom Policy Rego included).
func (e *Evaluator) knownPolicy(cfg *config.Config) func(string) bool {
	engine := e.engineFor(cfg)
	return func(name string) bool {
		_, ok := engine.Lookup(name)
		return ok
	}
}
