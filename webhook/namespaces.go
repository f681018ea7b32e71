package webhook

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// InformerNamespaces answers namespace lookups from an informer cache: no API call per admission request.
type InformerNamespaces struct {
	lister corelisters.NamespaceLister
	synced cache.InformerSynced
}

var _ NamespaceLookup = (*InformerNamespaces)(nil)

// NewInformerNamespaces starts a namespace informer; it runs until ctx ends.
func NewInformerNamespaces(ctx context.Context, client kubernetes.Interface, resync time.Duration) *InformerNamespaces {
	factory := informers.NewSharedInformerFactory(client, resync)
	inf := factory.Core().V1().Namespaces()
	n := &InformerNamespaces{lister: inf.Lister(), synced: inf.Informer().HasSynced}
	factory.Start(ctx.Done())
	return n
}

// Synced reports whether the cache has been filled once.
func (n *InformerNamespaces) Synced() bool { return n.synced() }

// Namespace returns the labels and annotations of a cached namespace.
func (n *InformerNamespaces) Namespace(_ context.Context, name string) (map[string]string, map[string]string, error) {
	if !n.synced() {
		return nil, nil, fmt.Errorf("namespace cache not synced yet")
	}
	ns, err := n.lister.Get(name)
	if apierrors.IsNotFound(err) {
		// A namespace being created is not cached yet: evaluate with its name only.
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	return labelsOf(ns), ns.Annotations, nil
}

func labelsOf(ns *corev1.Namespace) map[string]string { return ns.Labels }
