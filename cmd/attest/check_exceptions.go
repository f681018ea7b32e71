package main

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/manifest"
)

// isPolicyException reports whether a manifest object is one of ATTEST's PolicyExceptions.
func isPolicyException(obj map[string]any) bool {
	return obj["apiVersion"] == v1alpha1.GroupVersion.String() && obj["kind"] == "PolicyException"
}

// readExceptions finds the PolicyExceptions among the inputs and, when there are any, the metadata of every
// other object, which serve as the owners an exception reaches through (a Deployment's exception covers the
// Pods its ReplicaSet creates). Objects without a namespace take namespace, as they do when checked. Only files
// that mention PolicyException are parsed unless one is found, so a check without exceptions reads each file
// once more but parses it once.
func readExceptions(sources []manifest.Source, namespace string) ([]v1alpha1.PolicyException, []metav1.PartialObjectMetadata, error) {
	mentions := make([]bool, len(sources))
	errs := make([]error, len(sources))
	parallel(len(sources), func(i int) {
		src := sources[i] // a copy: the content is dropped once scanned
		if errs[i] = src.Load(); errs[i] == nil {
			mentions[i] = bytes.Contains(src.Data, []byte("PolicyException"))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var (
		mu         sync.Mutex
		exceptions []v1alpha1.PolicyException
	)
	parallel(len(sources), func(i int) {
		if !mentions[i] {
			return
		}
		objs, err := manifest.Parse(sources[i])
		if err != nil {
			errs[i] = err
			return
		}
		for _, obj := range objs {
			if !isPolicyException(obj.Object) {
				continue
			}
			var pe v1alpha1.PolicyException
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pe); err != nil {
				md, _ := obj.Object["metadata"].(map[string]any)
				name, _ := md["name"].(string)
				errs[i] = fmt.Errorf("%s:%d: PolicyException %s: cannot read it: %w", obj.File, obj.Line, name, err)
				return
			}
			if pe.Namespace == "" {
				pe.Namespace = namespace
			}
			mu.Lock()
			exceptions = append(exceptions, pe)
			mu.Unlock()
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if len(exceptions) == 0 {
		return nil, nil, nil
	}
	var owners []metav1.PartialObjectMetadata
	parallel(len(sources), func(i int) {
		objs, err := manifest.Parse(sources[i])
		if err != nil {
			errs[i] = err
			return
		}
		for _, obj := range objs {
			if isPolicyException(obj.Object) {
				continue
			}
			if o, ok := ownerMetadata(obj.Object, namespace); ok {
				mu.Lock()
				owners = append(owners, o)
				mu.Unlock()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return exceptions, owners, nil
}

// ownerMetadata is what an owner lookup needs of an object: kind, name, namespace, UID, labels and its own
// owner references. Objects whose metadata cannot be read are left out (their check reports the problem).
func ownerMetadata(obj map[string]any, namespace string) (metav1.PartialObjectMetadata, bool) {
	var o metav1.PartialObjectMetadata
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return o, false
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(md, &o.ObjectMeta); err != nil {
		return o, false
	}
	o.APIVersion, _ = obj["apiVersion"].(string)
	o.Kind, _ = obj["kind"].(string)
	if o.Namespace == "" {
		o.Namespace = namespace
	}
	return o, true
}
