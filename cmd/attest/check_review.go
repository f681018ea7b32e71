package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/continuums/attest/admission"
)

// isAdmissionReview reports whether a manifest object is an AdmissionReview (admission.k8s.io v1 or v1beta1),
// which `attest policy check` judges as the request it carries, as gator does.
func isAdmissionReview(obj map[string]any) bool {
	apiVersion, _ := obj["apiVersion"].(string)
	return obj["kind"] == "AdmissionReview" && (apiVersion == "admission.k8s.io/v1" || apiVersion == "admission.k8s.io/v1beta1")
}

// reviewInput is the pipeline's input for the request of an AdmissionReview: its operation, kind, namespace,
// name, user, object, old object, dry run and subresource. The request's userInfo is who asks; without one,
// --as and --as-group are. Each error names the field.
func reviewInput(obj map[string]any, now time.Time, who requester) (admission.Input, error) {
	req, ok := obj["request"].(map[string]any)
	if !ok {
		return admission.Input{}, fmt.Errorf("AdmissionReview: request: missing or not an object")
	}
	str := func(m map[string]any, key, field string) (string, error) {
		v, present := m[key]
		if !present || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("AdmissionReview: %s: want a string, got %T", field, v)
		}
		return s, nil
	}
	obj2 := func(key string) (map[string]any, error) {
		v, present := req[key]
		if !present || v == nil {
			return nil, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("AdmissionReview: request.%s: want an object, got %T", key, v)
		}
		return m, nil
	}
	var in admission.Input
	var err error
	r := &in.Request
	r.TimestampNS = now.UnixNano()
	if r.Operation, err = str(req, "operation", "request.operation"); err != nil {
		return in, err
	}
	switch r.Operation {
	case "CREATE", "UPDATE", "DELETE", "CONNECT":
	default:
		return in, fmt.Errorf("AdmissionReview: request.operation: %q is not CREATE, UPDATE, DELETE or CONNECT", r.Operation)
	}
	if in.Object, err = obj2("object"); err != nil {
		return in, err
	}
	if in.OldObject, err = obj2("oldObject"); err != nil {
		return in, err
	}
	switch kind := req["kind"].(type) {
	case map[string]any:
		for _, f := range []struct {
			key string
			to  *string
		}{{"group", &r.Group}, {"version", &r.Version}, {"kind", &r.Kind}} {
			if *f.to, err = str(kind, f.key, "request.kind."+f.key); err != nil {
				return in, err
			}
		}
		if r.Kind == "" || r.Version == "" {
			return in, fmt.Errorf("AdmissionReview: request.kind: version and kind are required")
		}
	case nil: // as gator reads such a review (gatekeeper-library's have none): the kind of the object it carries
		if r.Group, r.Version, r.Kind, err = objectKind(in.Object, in.OldObject); err != nil {
			return in, err
		}
	default:
		return in, fmt.Errorf("AdmissionReview: request.kind: want an object {group, version, kind}, got %T", kind)
	}
	for _, f := range []struct {
		key string
		to  *string
	}{{"namespace", &r.Namespace}, {"name", &r.Name}, {"uid", &r.UID}, {"subResource", &r.SubResource}} {
		if *f.to, err = str(req, f.key, "request."+f.key); err != nil {
			return in, err
		}
	}
	if dry, present := req["dryRun"]; present && dry != nil {
		b, ok := dry.(bool)
		if !ok {
			return in, fmt.Errorf("AdmissionReview: request.dryRun: want a boolean, got %T", dry)
		}
		r.DryRun = b
	}
	r.Username, r.Groups = who.user, who.groups
	if ui, present := req["userInfo"]; present && ui != nil {
		m, ok := ui.(map[string]any)
		if !ok {
			return in, fmt.Errorf("AdmissionReview: request.userInfo: want an object, got %T", ui)
		}
		if r.Username, err = str(m, "username", "request.userInfo.username"); err != nil {
			return in, err
		}
		r.Groups = nil
		if gs, present := m["groups"]; present && gs != nil {
			list, ok := gs.([]any)
			if !ok {
				return in, fmt.Errorf("AdmissionReview: request.userInfo.groups: want a list, got %T", gs)
			}
			for i, g := range list {
				s, ok := g.(string)
				if !ok {
					return in, fmt.Errorf("AdmissionReview: request.userInfo.groups[%d]: want a string, got %T", i, g)
				}
				r.Groups = append(r.Groups, s)
			}
		}
	}
	if r.Name == "" && in.Object != nil {
		if md, ok := in.Object["metadata"].(map[string]any); ok {
			r.Name, _ = md["name"].(string)
		}
	}
	if in.Object == nil && r.Operation != "DELETE" && r.Operation != "CONNECT" {
		return in, fmt.Errorf("AdmissionReview: request.object: required for %s", strings.ToLower(r.Operation))
	}
	return in, nil
}

// objectKind is the group, version and kind of the object a review carries (its object, else its old object), for a
// review whose request names no kind.
func objectKind(objs ...map[string]any) (group, version, kind string, err error) {
	for _, o := range objs {
		if o == nil {
			continue
		}
		apiVersion, _ := o["apiVersion"].(string)
		kind, _ = o["kind"].(string)
		if apiVersion == "" || kind == "" {
			return "", "", "", fmt.Errorf("AdmissionReview: request.kind is missing and the object names no apiVersion and kind")
		}
		if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
			return apiVersion[:i], apiVersion[i+1:], kind, nil
		}
		return "", apiVersion, kind, nil
	}
	return "", "", "", fmt.Errorf("AdmissionReview: request.kind: missing, and no object or oldObject to take it from")
}
