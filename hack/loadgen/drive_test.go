package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/continuums/attest/hack/internal/loadenv"
)

// A numbered Deployment differs from the next in its name, an annotation and a container's name, and in
// nothing else: the same images, the same length, valid JSON.
func TestNumberedReview(t *testing.T) {
	images := [3]string{"gcr.io/company/migrate:1.0", "gcr.io/company/app:1.0", "gcr.io/company/proxy:2.1"}
	nb, err := numberedReview(loadenv.Deployment("web", images))
	if err != nil {
		t.Fatal(err)
	}
	first, second := string(nb.fill(nil)), string(nb.fill(nil))
	if first == second || len(first) != len(nb.body) || len(second) != len(nb.body) {
		t.Fatalf("two numbered bodies: equal %t, lengths %d and %d, want different and %d", first == second, len(first), len(second), len(nb.body))
	}
	if strings.Contains(first, seqMark) {
		t.Errorf("a numbered body still holds the mark %q", seqMark)
	}
	var review struct {
		Request struct {
			Name   string `json:"name"`
			Object struct {
				Metadata struct {
					Name        string            `json:"name"`
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Name  string `json:"name"`
								Image string `json:"image"`
							} `json:"containers"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal([]byte(first), &review); err != nil {
		t.Fatalf("a numbered body is not JSON: %v", err)
	}
	r, md := review.Request, review.Request.Object.Metadata
	cs := r.Object.Spec.Template.Spec.Containers
	if len(cs) != 2 {
		t.Fatalf("containers %+v, want two", cs)
	}
	seq := md.Name
	if len(seq) != len(seqMark) || seq[0] != 'q' || r.Name != seq || md.Annotations["loadgen.attest.continuu.ms/seq"] != seq || cs[0].Name != seq {
		t.Errorf("name %q, request name %q, annotation %q, container %q: want one number in each", md.Name, r.Name, md.Annotations["loadgen.attest.continuu.ms/seq"], cs[0].Name)
	}
	if cs[0].Image != images[1] || cs[1].Image != images[2] {
		t.Errorf("images %q, %q changed", cs[0].Image, cs[1].Image)
	}
	if _, err := newNumbered([]byte(`{"a":"`+seqMark+`"}`), numberedMarks); err == nil {
		t.Error("a body with one mark was taken for one with four")
	}
}
