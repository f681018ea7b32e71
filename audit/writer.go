package audit

import (
	"context"
	"fmt"
	"strconv"

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

// FieldManager is who ATTEST's server-side applies are recorded as.
const FieldManager = "attest-audit"

// ClusterSink writes the reports with server-side apply (one request creates or replaces a report) and deletes a
// namespace's reports beyond this run's count.
type ClusterSink struct {
	client dynamic.Interface
	// Identity is written as AnnotationAuditedBy: the replica holding the audit Lease.
	Identity string
}

var _ Sink = (*ClusterSink)(nil)

// NewClusterSink writes through client.
func NewClusterSink(client dynamic.Interface, identity string) *ClusterSink {
	return &ClusterSink{client: client, Identity: identity}
}

func (s *ClusterSink) resource(namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return s.client.Resource(ClusterPolicyReports)
	}
	return s.client.Resource(PolicyReports).Namespace(namespace)
}

// Write implements Sink.
func (s *ClusterSink) Write(ctx context.Context, r *Report) error {
	obj := &unstructured.Unstructured{Object: r.Object(s.Identity)}
	if _, err := s.resource(r.Namespace).Apply(ctx, r.Name, obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("write PolicyReport %s/%s: %w", r.Namespace, r.Name, missingCRD(err))
	}
	return nil
}

// Finish implements Sink: ATTEST's reports in namespace numbered reports or above are from a larger earlier run.
func (s *ClusterSink) Finish(ctx context.Context, namespace string, reports int) error {
	list, err := s.resource(namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ResultSource})
	if err != nil {
		return fmt.Errorf("list PolicyReports in %s: %w", namespace, missingCRD(err))
	}
	for _, item := range list.Items {
		n, err := strconv.Atoi(item.GetLabels()[LabelChunk])
		if err == nil && n < reports {
			continue
		}
		if err := s.resource(namespace).Delete(ctx, item.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete stale PolicyReport %s/%s: %w", namespace, item.GetName(), err)
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
