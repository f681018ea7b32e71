package gatekeeper

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// workloadExpansions are ATTEST's opt-in ExpansionTemplates: every workload kind ATTEST's own policies judge
// (the workload package's list) is reviewed as the Pod it creates, a CronJob as its Job and so as its Pod, so a
// Pod-only constraint covers them as ATTEST's policies do, without writing ExpansionTemplates.
var workloadExpansions = []struct {
	name      string
	applyTo   schema.GroupVersionKind
	source    string
	generated schema.GroupVersionKind
}{
	{"attest-workload-deployment", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "spec.template", podGVK},
	{"attest-workload-replicaset", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, "spec.template", podGVK},
	{"attest-workload-statefulset", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, "spec.template", podGVK},
	{"attest-workload-daemonset", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, "spec.template", podGVK},
	{"attest-workload-job", schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, "spec.template", podGVK},
	{"attest-workload-replicationcontroller", schema.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, "spec.template", podGVK},
	{"attest-workload-cronjob", schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, "spec.jobTemplate", schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}},
}

var podGVK = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}

// ExpandWorkloads is ATTEST's opt-in: each workload kind that no ExpansionTemplate added so far applies to is
// expanded by one of ATTEST's (named attest-workload-<kind>, so findings say "[Implied by
// attest-workload-deployment]"). Call it after adding the user's ExpansionTemplates: theirs win.
func (s *Set) ExpandWorkloads() error {
	for _, w := range workloadExpansions {
		if s.expander.appliesTo(w.applyTo) {
			continue
		}
		et, err := ExpansionTemplateFrom(expansionObject(w.name, w.applyTo, w.source, w.generated))
		if err != nil {
			return fmt.Errorf("ATTEST's ExpansionTemplate %s: %w", w.name, err) // a bug in the table above
		}
		if err := s.expander.Add(et); err != nil {
			return err
		}
	}
	return nil
}
