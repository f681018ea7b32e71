package audit

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Resources of the reports.
var (
	PolicyReports        = schema.GroupVersionResource{Group: ReportGroup, Version: ReportVersion, Resource: "policyreports"}
	ClusterPolicyReports = schema.GroupVersionResource{Group: ReportGroup, Version: ReportVersion, Resource: "clusterpolicyreports"}
)

// FieldManager is who ATTEST's writes are recorded as.
const FieldManager = "attest-audit"

// ClusterSink writes the reports with create or update (a report is replaced whole, and a megabyte of results
// costs the API server far less as an update than as a server-side apply, which diffs every field), and deletes a
// namespace's reports beyond this run's count. It lists a namespace's reports once per run, for their
// resourceVersions and for the stale ones.
type ClusterSink struct {
	client dynamic.Interface
	// Identity is written as AnnotationAuditedBy: the replica holding the audit Lease.
	Identity string

	mu       sync.Mutex
	existing map[string]map[string]existingReport // namespace → name → report, for the namespace being written
}

type existingReport struct {
	resourceVersion string
	chunk           int // -1 when the label is missing or unreadable
}

var _ Sink = (*ClusterSink)(nil)

// NewClusterSink writes through client.
func NewClusterSink(client dynamic.Interface, identity string) *ClusterSink {
	return &ClusterSink{client: client, Identity: identity, existing: map[string]map[string]existingReport{}}
}

func (s *ClusterSink) resource(namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return s.client.Resource(ClusterPolicyReports)
	}
	return s.client.Resource(PolicyReports).Namespace(namespace)
}

// reports lists ATTEST's reports in namespace, once per run of the namespace: afresh for its first report (fresh),
// then from memory.
func (s *ClusterSink) reports(ctx context.Context, namespace string, fresh bool) (map[string]existingReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ex, ok := s.existing[namespace]; ok && !fresh {
		return ex, nil
	}
	list, err := s.resource(namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ResultSource})
	if err != nil {
		return nil, fmt.Errorf("list PolicyReports in %s: %w", namespace, missingCRD(err))
	}
	ex := make(map[string]existingReport, len(list.Items))
	for _, item := range list.Items {
		n, err := strconv.Atoi(item.GetLabels()[LabelChunk])
		if err != nil {
			n = -1
		}
		ex[item.GetName()] = existingReport{resourceVersion: item.GetResourceVersion(), chunk: n}
	}
	s.existing[namespace] = ex
	return ex, nil
}

// Write implements Sink.
func (s *ClusterSink) Write(ctx context.Context, r *Report) error {
	ex, err := s.reports(ctx, r.Namespace, r.Chunk == 0)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: r.Object(s.Identity)}
	res := s.resource(r.Namespace)
	old, found := ex[r.Name]
	for attempt := 0; ; attempt++ {
		if found {
			obj.SetResourceVersion(old.resourceVersion)
			_, err = res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager})
		} else {
			_, err = res.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
		}
		retry := apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || (found && apierrors.IsNotFound(err))
		if attempt > 0 || !retry {
			break
		}
		// Someone else changed or removed it since the list: read it again and retry once.
		cur, gerr := res.Get(ctx, r.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			found = false
		case gerr != nil:
			return fmt.Errorf("write PolicyReport %s/%s: %w", r.Namespace, r.Name, gerr)
		default:
			found, old.resourceVersion = true, cur.GetResourceVersion()
		}
	}
	if err != nil {
		return fmt.Errorf("write PolicyReport %s/%s: %w", r.Namespace, r.Name, missingCRD(err))
	}
	return nil
}

// Finish implements Sink: ATTEST's reports in namespace numbered reports or above are from a larger earlier run.
func (s *ClusterSink) Finish(ctx context.Context, namespace string, reports int) error {
	ex, err := s.reports(ctx, namespace, reports == 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.existing, namespace)
	s.mu.Unlock()
	for name, r := range ex {
		if r.chunk >= 0 && r.chunk < reports {
			continue
		}
		if err := s.resource(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete stale PolicyReport %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

// missingCRD says what to do when the cluster has no PolicyReport CRD.
func missingCRD(err error) error {
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		return fmt.Errorf("%w (is the PolicyReport CRD installed? kubectl apply -k manifests/policyreports)", err)
	}
	return err
}
