package cedar

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	cedargo "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/continuums/attest/policies"
)

// An AuthorizeRequest is `attest policy authorize`'s question, as `cedar authorize` asks it: a principal, an
// action and a resource (a Kubernetes object), with a context and further entities.
type AuthorizeRequest struct {
	// Principal, Action: Cedar entity UIDs, e.g. k8s::User::"alice", k8s::admission::Action::"create".
	Principal string
	Action    string
	// Groups are the principal's k8s::Group parents (as userInfo.groups).
	Groups []string
	// Object is the resource; OldObject the old object of an update.
	Object, OldObject map[string]any
	// Context is a JSON object laid over the context ATTEST would build (time from Now, namespace from the
	// object, approval from its annotation, mfa and dryRun false).
	Context []byte
	// Entities is a JSON array of further entities in Cedar's JSON entity format.
	Entities []byte
	Now      time.Time
}

// Authorize answers r. For an admission action (k8s::admission::Action) the set decides as in admission (what
// no forbid matches is allowed); for any other action, as Cedar authorizes (allowed only when a permit matches
// and no forbid does).
func (s *Set) Authorize(r AuthorizeRequest, o Options) (Decision, error) {
	var principal, action types.EntityUID
	if err := principal.UnmarshalCedar([]byte(r.Principal)); err != nil {
		return Decision{}, fmt.Errorf("principal %q: want an entity UID such as k8s::User::\"alice\": %w", r.Principal, err)
	}
	if err := action.UnmarshalCedar([]byte(r.Action)); err != nil {
		return Decision{}, fmt.Errorf("action %q: want an entity UID such as k8s::admission::Action::\"create\": %w", r.Action, err)
	}
	if r.Object == nil {
		return Decision{}, fmt.Errorf("resource: no object")
	}
	apiVersion, _ := r.Object["apiVersion"].(string)
	kind, _ := r.Object["kind"].(string)
	if kind == "" {
		return Decision{}, fmt.Errorf("resource: the object has no kind")
	}
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	md, _ := r.Object["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	op := "CREATE"
	if action.Type == ActionType {
		for o, a := range Actions {
			if string(action.ID) == a {
				op = o
			}
		}
	}
	in := &policies.Input{
		Request: policies.Request{UID: "authorize", Operation: op, Group: group, Version: version, Kind: kind, Namespace: ns, Name: name,
			Username: string(principal.ID), Groups: r.Groups, TimestampNS: r.Now.UnixNano()},
		Resource: r.Object, OldResource: r.OldObject,
		Namespace: policies.Namespace{Name: ns},
	}
	if op == "DELETE" {
		in.Resource, in.OldResource = nil, r.Object
	}
	req, err := o.withDefaults().newRequest(in, nil)
	if err != nil {
		return Decision{}, err
	}
	// The principal as given: its type and id (newRequest derived a k8s::User from the name).
	built := req.entities[req.req.Principal]
	delete(req.entities, req.req.Principal)
	built.UID = principal
	req.entities[principal] = built
	req.req.Principal = principal
	req.req.Action = action
	if len(r.Context) > 0 {
		var over map[string]json.RawMessage
		if err := json.Unmarshal(r.Context, &over); err != nil {
			return Decision{}, fmt.Errorf("context: want a JSON object: %w", err)
		}
		ctx := types.RecordMap{}
		for k, v := range req.req.Context.All() {
			ctx[k] = v
		}
		for k, raw := range over {
			var rec types.Record
			if err := rec.UnmarshalJSON([]byte(`{"v":` + string(raw) + `}`)); err != nil {
				return Decision{}, fmt.Errorf("context.%s: %w", k, err)
			}
			v, _ := rec.Get("v")
			ctx[types.String(k)] = v
		}
		req.req.Context = types.NewRecord(ctx)
	}
	if len(r.Entities) > 0 {
		var more types.EntityMap
		if err := json.Unmarshal(r.Entities, &more); err != nil {
			return Decision{}, fmt.Errorf("entities: %w", err)
		}
		for uid, e := range more {
			req.entities[uid] = e
		}
	}
	if action.Type == ActionType {
		return s.authorize(req), nil
	}
	dec, diag := cedargo.Authorize(s.ps, req.entities, req.req)
	out := Decision{Allowed: dec == cedargo.Allow}
	for _, reason := range diag.Reasons {
		out.Reasons = append(out.Reasons, string(reason.PolicyID))
	}
	for _, e := range diag.Errors {
		out.Errors = append(out.Errors, fmt.Sprintf("%s: %s", e.PolicyID, e.Message))
	}
	return out, nil
}
