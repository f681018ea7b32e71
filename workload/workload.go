// Package workload finds every pod spec and container inside an admitted object, with exact JSON paths, so
// policies written against containers apply to Pods and to every kind that carries a pod template.
package workload

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldNames are the field names of the workload objects admissions carry most (metadata, pod templates,
// containers): decoding shares one string for each, and policies' conversions one Rego term.
var FieldNames = strings.Fields(`apiVersion kind metadata name namespace labels annotations uid generateName
	ownerReferences controller blockOwnerDeletion resourceVersion generation creationTimestamp managedFields
	spec template selector matchLabels replicas containers initContainers ephemeralContainers image imagePullPolicy
	imagePullSecrets command args env value valueFrom ports containerPort protocol resources limits requests cpu
	memory securityContext runAsNonRoot runAsUser readOnlyRootFilesystem allowPrivilegeEscalation privileged
	capabilities drop add volumeMounts mountPath volumes serviceAccountName nodeSelector tolerations affinity
	restartPolicy terminationMessagePath terminationMessagePolicy dnsPolicy schedulerName
	terminationGracePeriodSeconds strategy status`)

// CommonValues are string values the workload objects admissions carry hold most (API versions, kinds, the
// values the API server defaults fields to, enumerations): decoding shares one string for each.
var CommonValues = strings.Fields(`v1 apps/v1 batch/v1 Pod Deployment ReplicaSet StatefulSet DaemonSet Job CronJob
	ReplicationController apps batch pods deployments replicasets statefulsets daemonsets jobs cronjobs
	replicationcontrollers CREATE UPDATE DELETE CONNECT admission.k8s.io/v1 AdmissionReview
	IfNotPresent Always Never OnFailure TCP UDP SCTP ClusterFirst ClusterFirstWithHostNet Default None
	default-scheduler RollingUpdate Recreate OnDelete Parallel OrderedReady Allow Forbid Replace 25% File
	FallbackToLogsOnError /dev/termination-log RuntimeDefault Localhost Unconfined NonIndexed Indexed
	Retain Delete ALL NET_RAW NET_ADMIN SYS_ADMIN kubernetes.io/hostname system:serviceaccounts
	system:authenticated system:masters system:nodes`)

// Type says which container list a container came from.
type Type string

// The container lists of a pod spec.
const (
	TypeContainer Type = "container"
	TypeInit      Type = "init"
	TypeEphemeral Type = "ephemeral"
)

// SubresourceEphemeralContainers is the Pod subresource `kubectl debug` writes through.
const SubresourceEphemeralContainers = "ephemeralcontainers"

// Container is one container of one pod spec, located by its JSON path in the object.
type Container struct {
	// Path is the container's path, e.g. "spec.template.spec.initContainers[1]".
	Path string
	// PodPath is the path of the pod spec holding it, e.g. "spec.template.spec".
	PodPath string
	Type    Type
	Name    string
	Image   string
	// Fields is the container object as admitted (securityContext, resources, ...).
	Fields map[string]any
}

// GroupKind names a kind independent of version: pod specs sit at the same path in every served version.
type GroupKind struct {
	Group string
	Kind  string
}

// podSpecPaths lists where each workload kind keeps its pod spec, as path segments.
var podSpecPaths = map[GroupKind][]string{
	{Group: "", Kind: "Pod"}:                   {"spec"},
	{Group: "", Kind: "ReplicationController"}: {"spec", "template", "spec"},
	{Group: "apps", Kind: "Deployment"}:        {"spec", "template", "spec"},
	{Group: "apps", Kind: "ReplicaSet"}:        {"spec", "template", "spec"},
	{Group: "apps", Kind: "StatefulSet"}:       {"spec", "template", "spec"},
	{Group: "apps", Kind: "DaemonSet"}:         {"spec", "template", "spec"},
	{Group: "batch", Kind: "Job"}:              {"spec", "template", "spec"},
	{Group: "batch", Kind: "CronJob"}:          {"spec", "jobTemplate", "spec", "template", "spec"},
}

// listFields maps each container list of a pod spec to the type of its containers, in evaluation order.
var listFields = []struct {
	field string
	typ   Type
}{
	{"initContainers", TypeInit},
	{"containers", TypeContainer},
	{"ephemeralContainers", TypeEphemeral},
}

// IsWorkload reports whether objects of this kind carry a pod spec.
func IsWorkload(gk GroupKind) bool {
	_, ok := podSpecPaths[gk]
	return ok
}

// PodSpecPath returns the dotted path of the kind's pod spec ("spec.template.spec"), or "" for other kinds.
func PodSpecPath(gk GroupKind) string {
	return joinPath(podSpecPaths[gk])
}

// PodTemplateMetadata returns the metadata of the pod template of a workload (the object's own metadata for a
// Pod), where annotations meant for the Pods it creates live; nil when there is none.
func PodTemplateMetadata(gk GroupKind, obj map[string]any) map[string]any {
	segs, ok := podSpecPaths[gk]
	if !ok {
		return nil
	}
	parent := segs[:len(segs)-1] // drop the trailing "spec": the template (or the Pod itself)
	cur := obj
	for _, s := range parent {
		next, _ := cur[s].(map[string]any)
		if next == nil {
			return nil
		}
		cur = next
	}
	md, _ := cur["metadata"].(map[string]any)
	return md
}

// Extract returns every container of the object's pod spec in document order (init, regular, ephemeral).
// For an UPDATE of the pods/ephemeralcontainers subresource only the ephemeral containers are returned: that is
// the part of the Pod the request can change. Kinds without a pod spec yield no containers and no error; a pod
// spec whose container lists are not lists of objects is an error naming the path.
func Extract(gk GroupKind, subresource string, obj map[string]any) ([]Container, error) {
	segs, ok := podSpecPaths[gk]
	if !ok || obj == nil {
		return nil, nil
	}
	spec, err := descend(obj, segs)
	if err != nil || spec == nil {
		return nil, err
	}
	podPath := joinPath(segs)
	var out []Container
	for _, lf := range listFields {
		if gk.Kind == "Pod" && subresource == SubresourceEphemeralContainers && lf.typ != TypeEphemeral {
			continue
		}
		raw, present := spec[lf.field]
		if !present || raw == nil {
			continue
		}
		list, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("%s.%s: expected a list of containers, got %s", podPath, lf.field, typeName(raw))
		}
		for i, item := range list {
			path := podPath + "." + lf.field + "[" + strconv.Itoa(i) + "]"
			fields, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: expected a container object, got %s", path, typeName(item))
			}
			name, err := optionalString(fields, "name", path)
			if err != nil {
				return nil, err
			}
			image, err := optionalString(fields, "image", path)
			if err != nil {
				return nil, err
			}
			out = append(out, Container{Path: path, PodPath: podPath, Type: lf.typ, Name: name, Image: image, Fields: fields})
		}
	}
	return out, nil
}

// descend walks obj along segs; a missing step yields nil, a step that is not an object is an error.
func descend(obj map[string]any, segs []string) (map[string]any, error) {
	cur := obj
	for i, s := range segs {
		raw, present := cur[s]
		if !present || raw == nil {
			return nil, nil
		}
		next, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected an object, got %s", joinPath(segs[:i+1]), typeName(raw))
		}
		cur = next
	}
	return cur, nil
}

func optionalString(fields map[string]any, key, path string) (string, error) {
	raw, present := fields[key]
	if !present || raw == nil {
		return "", nil
	}
	s, ok := raw.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s: expected a string, got %s", path, key, typeName(raw))
	}
	return s, nil
}

func joinPath(segs []string) string { return strings.Join(segs, ".") }

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}
