package admission

import (
	"reflect"
)

// AnnotationNotEvaluated is the audit annotation (attest.continuu.ms/not-evaluated) that says why a request was
// allowed without running any policy.
const AnnotationNotEvaluated = "not-evaluated"

// Subresources a request can be allowed through without evaluation, and why. Every other subresource is judged
// like its object: ephemeralcontainers and resize change containers, scale changes replicas, binding sets the
// Pod's node and copies annotations onto it.
const (
	subresourceStatus   = "status"
	subresourceEviction = "eviction"
)

// notEvaluated says why a request cannot change anything a policy judges, so that it is allowed without
// evaluation; "" when it must be evaluated.
//
// A status write cannot change the spec (the API server puts the stored spec back before validating webhooks
// see it); it can still change labels and annotations, which policies, match scopes and exemptions read, so it
// is let through only when those are unchanged too. Denying it would only stop the kubelet and the controllers
// reporting on a workload whose spec was judged when it was written. An eviction deletes a Pod, and deletions
// are not judged.
func notEvaluated(in Input) string {
	switch in.Request.SubResource {
	case subresourceStatus:
		if in.OldObject != nil && samePolicyFields(in.Object, in.OldObject) {
			return "a status write cannot change the spec, and this one changes no label, annotation or owner reference"
		}
	case subresourceEviction:
		return "an eviction deletes the Pod, and deletions are not judged"
	}
	return ""
}

// samePolicyFields reports whether two versions of an object agree on everything policies read: the spec and
// the labels, annotations and owner references of the metadata.
func samePolicyFields(obj, old map[string]any) bool {
	if !reflect.DeepEqual(obj["spec"], old["spec"]) {
		return false
	}
	md, _ := obj["metadata"].(map[string]any)
	oldMD, _ := old["metadata"].(map[string]any)
	for _, field := range []string{"labels", "annotations", "ownerReferences"} {
		if !reflect.DeepEqual(emptyAsNil(md[field]), emptyAsNil(oldMD[field])) {
			return false
		}
	}
	return true
}

// emptyAsNil treats an empty map or list as absent, as the API server does when it stores an object.
func emptyAsNil(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			return nil
		}
	case []any:
		if len(t) == 0 {
			return nil
		}
	}
	return v
}
