package audit_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/audit"
)

// TestClusterSink: reports are created, then replaced; a run that needs fewer reports deletes the rest of ATTEST's,
// and a report someone else wrote in the namespace is left alone.
func TestClusterSink(t *testing.T) {
	ctx := context.Background()
	c := fakeDynamic(t)
	foreign := &unstructured.Unstructured{Object: map[string]any{"apiVersion": audit.ReportAPIVersion, "kind": "PolicyReport",
		"metadata": map[string]any{"name": "kyverno-1", "namespace": "shop"}}}
	if _, err := c.Resource(audit.PolicyReports).Namespace("shop").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sink := audit.NewClusterSink(c, "replica-a")
	write := func(chunks int, result string) {
		t.Helper()
		for i := range chunks {
			r := &audit.Report{Namespace: "shop", Name: audit.ReportName(i), Chunk: i, Summary: audit.Summary{Pass: 1},
				Results: []audit.Result{{Source: "attest", Policy: "p", Result: result, Resources: []audit.Ref{{Kind: "Pod", Name: "x"}}}}}
			if err := sink.Write(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Finish(ctx, "shop", chunks); err != nil {
			t.Fatal(err)
		}
	}
	names := func() string {
		list, err := c.Resource(audit.PolicyReports).Namespace("shop").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range list.Items {
			out = append(out, i.GetName())
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	write(3, "pass")
	if got := names(); got != "attest,attest-2,attest-3,kyverno-1" {
		t.Fatalf("after 3 reports: %s", got)
	}
	write(1, "fail")
	if got := names(); got != "attest,kyverno-1" {
		t.Fatalf("after 1 report: %s", got)
	}
	u, err := c.Resource(audit.PolicyReports).Namespace("shop").Get(ctx, "attest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	if len(results) != 1 || results[0].(map[string]any)["result"] != "fail" ||
		u.GetAnnotations()[audit.AnnotationAuditedBy] != "replica-a" || u.GetLabels()[audit.LabelManagedBy] != "attest" || u.GetLabels()[audit.LabelChunk] != "0" {
		t.Fatalf("report after the second run: %v", u.Object)
	}
	write(0, "")
	if got := names(); got != "kyverno-1" {
		t.Fatalf("after a run with nothing to report: %s", got)
	}
}
