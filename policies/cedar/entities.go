package cedar

import (
	"fmt"
	"strings"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/continuums/attest/policies"
)

// ApprovalAnnotation holds the approval (change ticket) id an object was applied with: context.approval.
const ApprovalAnnotation = "attest.continuu.ms/approval-id"

// Options configure how a request becomes Cedar entities.
type Options struct {
	// MFAKey is the userInfo.extra key whose values say how the user authenticated (default "amr"); context.mfa
	// is true when they hold MFAValue (default "mfa").
	MFAKey   string
	MFAValue string
}

func (o Options) withDefaults() Options {
	if o.MFAKey == "" {
		o.MFAKey = "amr"
	}
	if o.MFAValue == "" {
		o.MFAValue = "mfa"
	}
	return o
}

// A request is one admission as Cedar sees it.
type request struct {
	entities types.EntityMap
	req      types.Request
}

// newRequest builds Cedar for Kubernetes' entities from the pipeline's input: the principal (k8s::User,
// k8s::ServiceAccount or k8s::Node, in its k8s::Group entities), the admission action, the resource entity
// typed by group, version and kind with the object as attributes (the old object on DELETE, and an oldObject
// entity on UPDATE), and ATTEST's context.
// reads, when not nil, are the only object attributes converted (those the policies can read).
func (o Options) newRequest(in *policies.Input, reads map[string]bool) (*request, error) {
	o = o.withDefaults()
	r := in.Request
	action, ok := Actions[r.Operation]
	if !ok {
		return nil, fmt.Errorf("operation %q has no Cedar admission action (want CREATE, UPDATE, DELETE or CONNECT)", r.Operation)
	}
	ents := types.EntityMap{}
	principal := principalEntities(r, ents)
	for _, e := range actionEntities() {
		ents[e.UID] = e
	}
	obj := in.Resource
	if r.Operation == "DELETE" {
		obj = in.OldResource
	}
	typ := EntityType(r.Group, r.Version, r.Kind)
	id := r.Name
	if r.Namespace != "" {
		id = r.Namespace + "/" + r.Name
	}
	res, err := objectEntity(typ, types.String(id), obj, reads)
	if err != nil {
		return nil, fmt.Errorf("the %s as a Cedar entity: %w", r.Kind, err)
	}
	if r.Operation == "UPDATE" && in.OldResource != nil && (reads == nil || reads["oldObject"]) {
		oldID := types.String(r.UID)
		if oldID == "" {
			oldID = types.String(id) + "#old"
		}
		old, err := objectEntity(typ, oldID, in.OldResource, reads)
		if err != nil {
			return nil, fmt.Errorf("the old %s as a Cedar entity: %w", r.Kind, err)
		}
		ents[old.UID] = old
		attrs := types.RecordMap{"oldObject": old.UID}
		for k, v := range res.Attributes.All() {
			attrs[k] = v
		}
		res.Attributes = types.NewRecord(attrs)
	}
	ents[res.UID] = res
	ctx := o.context(in, obj)
	return &request{entities: ents, req: types.Request{
		Principal: principal,
		Action:    types.EntityUID{Type: ActionType, ID: types.String(action)},
		Resource:  res.UID,
		Context:   ctx,
	}}, nil
}

// objectEntity converts an object to an entity of typ, through the kind's shape when the schema knows it; with
// reads, only the top-level attributes it names (what no policy reads cannot change a decision).
func objectEntity(typ types.EntityType, id types.String, obj map[string]any, reads map[string]bool) (types.Entity, error) {
	e := types.Entity{UID: types.EntityUID{Type: typ, ID: id}, Attributes: types.NewRecord(nil)}
	if obj == nil {
		return e, nil
	}
	if reads != nil {
		pruned := make(map[string]any, len(reads))
		for k, v := range obj {
			if reads[k] {
				pruned[k] = v
			}
		}
		obj = pruned
	}
	sch, err := theSchema()
	if err != nil {
		return e, err
	}
	s := sch.kinds[typ]
	var v types.Value
	var ok bool
	if s != nil {
		v, ok, err = record(obj, s, 0)
	} else {
		v, ok, err = untyped(obj, "", 0)
	}
	if err != nil {
		return e, err
	}
	if ok {
		if rec, isRec := v.(types.Record); isRec {
			e.Attributes = rec
		}
	}
	return e, nil
}

// principalEntities adds the user and its groups, as Cedar for Kubernetes does: system:serviceaccount:<ns>:<name>
// is a k8s::ServiceAccount, system:node:<name> a k8s::Node, anyone else a k8s::User; the id is userInfo.uid, or
// the username when there is none.
func principalEntities(r policies.Request, ents types.EntityMap) types.EntityUID {
	parents := make([]types.EntityUID, 0, len(r.Groups))
	for _, g := range r.Groups {
		uid := types.EntityUID{Type: GroupType, ID: types.String(g)}
		ents[uid] = types.Entity{UID: uid, Attributes: types.NewRecord(types.RecordMap{"name": types.String(g)})}
		parents = append(parents, uid)
	}
	attrs := types.RecordMap{"name": types.String(r.Username)}
	typ := UserType
	parts := strings.Split(r.Username, ":")
	switch {
	case len(parts) == 3 && parts[0] == "system" && parts[1] == "node":
		typ = NodeType
		attrs["name"] = types.String(parts[2])
	case len(parts) == 4 && parts[0] == "system" && parts[1] == "serviceaccount":
		typ = ServiceAccountType
		attrs["namespace"] = types.String(parts[2])
		attrs["name"] = types.String(parts[3])
	}
	if len(r.Extra) > 0 {
		extra := make([]types.Value, 0, len(r.Extra))
		for k, vs := range r.Extra {
			vals := make([]types.Value, len(vs))
			for i, v := range vs {
				vals[i] = types.String(v)
			}
			extra = append(extra, types.NewRecord(types.RecordMap{"key": types.String(k), "values": types.NewSet(vals...)}))
		}
		attrs["extra"] = types.NewSet(extra...)
	}
	id := r.UserUID
	if id == "" {
		id = r.Username
	}
	uid := types.EntityUID{Type: typ, ID: types.String(id)}
	ents[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents...), Attributes: types.NewRecord(attrs)}
	return uid
}

// actionEntities are the admission actions, each in Action::"all".
func actionEntities() []types.Entity {
	all := types.EntityUID{Type: ActionType, ID: "all"}
	out := []types.Entity{{UID: all}}
	for _, a := range []string{"create", "update", "delete", "connect"} {
		out = append(out, types.Entity{UID: types.EntityUID{Type: ActionType, ID: types.String(a)}, Parents: types.NewEntityUIDSet(all)})
	}
	return out
}

// context is ATTEST's context record (attest::Context in the schema).
func (o Options) context(in *policies.Input, obj map[string]any) types.Record {
	r := in.Request
	ns := in.Namespace
	if ns.Name == "" {
		ns.Name = r.Namespace
	}
	labels := make(map[string]any, len(ns.Labels))
	for k, v := range ns.Labels {
		labels[k] = v
	}
	images := make([]types.Value, 0, len(in.Images))
	for image, facts := range in.Images {
		images = append(images, imageRecord(image, facts))
	}
	mfa := false
	for _, v := range r.Extra[o.MFAKey] {
		if v == o.MFAValue {
			mfa = true
		}
	}
	md, _ := obj["metadata"].(map[string]any)
	annotations, _ := md["annotations"].(map[string]any)
	approval, _ := annotations[ApprovalAnnotation].(string)
	ctx := types.RecordMap{
		"time":      types.NewDatetimeFromMillis(r.TimestampNS / 1e6),
		"namespace": types.NewRecord(types.RecordMap{"name": types.String(ns.Name), "labels": keyValues(labels), "production": types.Boolean(ns.Production)}),
		"images":    types.NewSet(images...),
		"approval":  types.String(approval),
		"mfa":       types.Boolean(mfa),
		"dryRun":    types.Boolean(r.DryRun),
	}
	if r.Operation == "DELETE" && r.Options != nil {
		opts := types.RecordMap{}
		if n, ok := integer(r.Options["gracePeriodSeconds"]); ok {
			opts["gracePeriodSeconds"] = types.Long(n)
		}
		if p, ok := r.Options["propagationPolicy"].(string); ok {
			opts["propagationPolicy"] = types.String(p)
		}
		ctx["options"] = types.NewRecord(opts)
	}
	return types.NewRecord(ctx)
}

// imageRecord is one attest::Image: input.images' facts under Cedar names, with "" and false for what is unknown.
func imageRecord(image string, facts map[string]any) types.Record {
	str := func(m map[string]any, k string) types.String { s, _ := m[k].(string); return types.String(s) }
	sig, _ := facts["signature"].(map[string]any)
	trusted, _ := facts["trusted_registry"].(bool)
	verified, _ := sig["verified"].(bool)
	return types.NewRecord(types.RecordMap{
		"image":             types.String(image),
		"registry":          str(facts, "registry"),
		"repository":        str(facts, "repository"),
		"tag":               str(facts, "tag"),
		"digest":            str(facts, "digest"),
		"trustedRegistry":   types.Boolean(trusted),
		"signatureVerified": types.Boolean(verified),
		"signer":            str(sig, "signer"),
	})
}
