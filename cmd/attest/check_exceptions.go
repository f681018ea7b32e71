package main

import (
	"context"
	"fmt"
	goruntime "runtime"

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
// Pods its ReplicaSet creates). Objects without a namespace take namespace, as they do when checked. Only
// documents that mention PolicyException are parsed unless one is found; documents that cannot be read are left
// to the check, which reports them.
func readExceptions(sources []manifest.Source, namespace string) ([]v1alpha1.PolicyException, []metav1.PartialObjectMetadata, error) {
	var exceptions []v1alpha1.PolicyException
	for _, src := range sources {
		for doc, err := range manifest.Documents(src) {
			if err != nil || !doc.MayHold("PolicyException") {
				continue
			}
			objs, err := doc.Objects()
			if err != nil {
				continue
			}
			for _, obj := range objs {
				if !isPolicyException(obj.Object) {
					continue
				}
				var pe v1alpha1.PolicyException
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pe); err != nil {
					md, _ := obj.Object["metadata"].(map[string]any)
					name, _ := md["name"].(string)
					return nil, nil, fmt.Errorf("%s:%d: PolicyException %s: cannot read it: %w", obj.File, obj.Line, name, err)
				}
				if pe.Namespace == "" {
					pe.Namespace = namespace
				}
				exceptions = append(exceptions, pe)
			}
		}
	}
	if len(exceptions) == 0 {
		return nil, nil, nil
	}
	var owners []metav1.PartialObjectMetadata
	manifest.Walk(context.Background(), sources, goruntime.GOMAXPROCS(0), func(doc manifest.Document, err error) []metav1.PartialObjectMetadata {
		if err != nil {
			return nil
		}
		objs, err := doc.Objects()
		if err != nil {
			return nil
		}
		var out []metav1.PartialObjectMetadata
		for _, obj := range objs {
			if isPolicyException(obj.Object) {
				continue
			}
			if o, ok := ownerMetadata(obj.Object, namespace); ok {
				out = append(out, o)
			}
		}
		return out
	}, func(o []metav1.PartialObjectMetadata) { owners = append(owners, o...) })
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

// eachObject calls fn with every object of the sources but PolicyExceptions, reading one document at a time; the
// first error (reading, parsing, or fn's) stops it.
func eachObject(sources []manifest.Source, fn func(manifest.Object) error) error {
	for _, src := range sources {
		for doc, err := range manifest.Documents(src) {
			if err != nil {
				return err
			}
			objs, err := doc.Objects()
			if err != nil {
				return err
			}
			for _, obj := range objs {
				if isPolicyException(obj.Object) || isCedarInput(obj.Object) {
					continue
				}
				if err := fn(obj); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
