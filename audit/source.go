package audit

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Kind is one kind the audit lists: the resource to list and the kind its objects are admitted as.
type Kind struct {
	schema.GroupVersionResource
	Kind string
}

// Kinds are the kinds the webhooks cover, top owners first: when a ReplicaSet or a Pod is listed, the workload
// that owns it has been listed already, so it folds into that workload's result (see fold.go).
var Kinds = []Kind{
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "CronJob"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "StatefulSet"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, "DaemonSet"},
	{schema.GroupVersionResource{Version: "v1", Resource: "replicationcontrollers"}, "ReplicationController"},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "Job"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, "ReplicaSet"},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod"},
}

// Namespace is a namespace's name and the metadata policies see as input.namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

// Source lists what the audit reads, page by page, so that no list holds a whole cluster.
type Source interface {
	Namespaces(ctx context.Context) ([]Namespace, error)
	// List calls fn for every object of kind in namespace.
	List(ctx context.Context, kind Kind, namespace string, fn func(obj map[string]any) error) error
}

// DefaultPageSize is the number of objects one list request returns (the API server's pagination).
const DefaultPageSize = 500

// ClusterSource lists through the API server with paginated list requests (limit/continue).
type ClusterSource struct {
	client   dynamic.Interface
	pageSize int64
	// Only, when set, is the one namespace Namespaces returns (read by name, so listing namespaces is not needed;
	// with its name only when even reading it is not allowed).
	Only string
}

var _ Source = (*ClusterSource)(nil)

// NewClusterSource lists through client, pageSize objects a request (DefaultPageSize when 0).
func NewClusterSource(client dynamic.Interface, pageSize int64) *ClusterSource {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	return &ClusterSource{client: client, pageSize: pageSize}
}

var namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// Namespaces implements Source.
func (s *ClusterSource) Namespaces(ctx context.Context) ([]Namespace, error) {
	if s.Only != "" {
		u, err := s.client.Resource(namespacesResource).Get(ctx, s.Only, metav1.GetOptions{})
		switch {
		case apierrors.IsForbidden(err):
			return []Namespace{{Name: s.Only}}, nil
		case err != nil:
			return nil, fmt.Errorf("read namespace %s: %w", s.Only, err)
		}
		return []Namespace{{Name: u.GetName(), Labels: u.GetLabels(), Annotations: u.GetAnnotations()}}, nil
	}
	var out []Namespace
	err := s.pages(ctx, s.client.Resource(namespacesResource), "namespaces", func(u *unstructured.Unstructured) error {
		out = append(out, Namespace{Name: u.GetName(), Labels: u.GetLabels(), Annotations: u.GetAnnotations()})
		return nil
	})
	return out, err
}

// List implements Source.
func (s *ClusterSource) List(ctx context.Context, kind Kind, namespace string, fn func(map[string]any) error) error {
	return s.pages(ctx, s.client.Resource(kind.GroupVersionResource).Namespace(namespace), kind.Resource+" in "+namespace, func(u *unstructured.Unstructured) error {
		// managedFields are bookkeeping no policy reads; dropping them halves what an object holds in flight.
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		u.SetAPIVersion(kind.GroupVersion().String())
		u.SetKind(kind.Kind)
		return fn(u.Object)
	})
}

func (s *ClusterSource) pages(ctx context.Context, r dynamic.ResourceInterface, what string, fn func(*unstructured.Unstructured) error) error {
	opts := metav1.ListOptions{Limit: s.pageSize}
	for {
		list, err := r.List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list %s: %w", what, err)
		}
		for i := range list.Items {
			if err := fn(&list.Items[i]); err != nil {
				return err
			}
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}
