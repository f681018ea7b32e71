package admission

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/workload"
)

// ReceiptAnnotation is where the mutating path records what it verified; require-receipt checks it.
const ReceiptAnnotation = "attest.continuu.ms/receipt"

// ReceiptVersion is the version of the receipt's shape.
const ReceiptVersion = 1

// Receipt is the JSON of the receipt annotation: for each image that passed its trust policy (keyed by the image as
// the object carries it after mutation), the digest verified, who signed it, the attestations verified and when.
//
//	{"version":1,"images":{"gcr.io/company/app:1.4@sha256:…":{"digest":"sha256:…","signer":"sha256:…",
//	 "predicate_types":["https://slsa.dev/provenance/v1"],"verified_at":"2026-11-25T12:00:00Z"}}}
type Receipt struct {
	Version int                     `json:"version"`
	Images  map[string]ReceiptEntry `json:"images"`
}

// ReceiptEntry is one image of a Receipt.
type ReceiptEntry struct {
	Digest         string   `json:"digest"`
	Signer         string   `json:"signer"`
	PredicateTypes []string `json:"predicate_types"`
	// VerifiedAt is RFC 3339, UTC.
	VerifiedAt string `json:"verified_at"`
}

// imagePatches is the mutating path's part of verification: it pins each image that passed its trust policy to the
// digest verified (`repo:tag@sha256:…`, a JSON Patch replace at the container's exact path, in every container list)
// where mutation.pinDigests says so, and writes the receipt annotation on the object. A second admission of the
// result changes nothing: pinned images stay as they are, and a receipt entry that still holds keeps its time.
// Dry runs are mutated alike (the webhooks declare sideEffects: None). Nothing is changed without trust policies.
func (e *Evaluator) imagePatches(ctx context.Context, in Input, cfg *config.Config, d *Decision) {
	if e.images.verifier == nil || cfg.Trust.Len() == 0 {
		return
	}
	sub := in.Request.SubResource
	if sub != "" && sub != workload.SubresourceEphemeralContainers {
		return
	}
	gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
	containers, err := workload.Extract(gk, sub, in.Object)
	if err != nil || len(containers) == 0 {
		return // validation reports an unreadable object
	}
	facts := e.verifyImages(ctx, in, cfg, containers)
	pin := cfg.Mutation.Pins(in.Request.Kind)
	entries := map[string]ReceiptEntry{}
	for _, c := range containers {
		f, ok := facts[c.Image]
		if !ok || !f.Passed() || f.Digest == "" {
			continue
		}
		image := c.Image
		if pin && !strings.Contains(image, "@") && !existingEphemeral(in, c) {
			image = c.Image + "@" + f.Digest
			d.Patches = append(d.Patches, PatchOp{Op: "replace", Path: pointer(c.Path) + "/image", Value: image})
		}
		entries[image] = receiptEntry(f)
	}
	if sub != "" {
		return // the ephemeralcontainers subresource changes containers only: metadata is not written through it
	}
	if op, ok := receiptPatch(in.Object, entries, d.Patches); ok {
		d.Patches = append(d.Patches, op)
	}
}

func receiptEntry(f attestation.Facts) ReceiptEntry {
	types := f.PredicateTypes()
	if types == nil {
		types = []string{}
	}
	return ReceiptEntry{Digest: f.Digest, Signer: f.Signature.Signer, PredicateTypes: types, VerifiedAt: f.VerifiedAt.UTC().Format(time.RFC3339)}
}

// existingEphemeral reports whether c is an ephemeral container the Pod already had: those cannot be changed.
func existingEphemeral(in Input, c workload.Container) bool {
	if c.Type != workload.TypeEphemeral || in.OldObject == nil {
		return false
	}
	old, err := workload.Extract(workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}, in.Request.SubResource, in.OldObject)
	if err != nil {
		return true // cannot tell: leave it alone
	}
	for _, o := range old {
		if o.Type == workload.TypeEphemeral && o.Name == c.Name {
			return true
		}
	}
	return false
}

// receiptPatch writes the receipt of entries, keeping the entries of the object's receipt that still hold (same
// digest, signer and attestations: their verified_at stays, so a second admission patches nothing), and removes a
// receipt when nothing passed. ok is false when the object already carries exactly that.
func receiptPatch(obj map[string]any, entries map[string]ReceiptEntry, earlier []PatchOp) (PatchOp, bool) {
	md, _ := obj["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	raw, present := ann[ReceiptAnnotation].(string)
	var old Receipt
	if present && json.Unmarshal([]byte(raw), &old) == nil && old.Version == ReceiptVersion {
		for image, e := range entries {
			o, ok := old.Images[image]
			if ok && o.Digest == e.Digest && o.Signer == e.Signer && reflect.DeepEqual(o.PredicateTypes, e.PredicateTypes) && validTime(o.VerifiedAt) {
				entries[image] = o
			}
		}
		if reflect.DeepEqual(old.Images, entries) {
			return PatchOp{}, false
		}
	}
	key := "/metadata/annotations/" + escapePointer(ReceiptAnnotation)
	if len(entries) == 0 {
		if _, exists := ann[ReceiptAnnotation]; exists {
			return PatchOp{Op: "remove", Path: key}, true
		}
		return PatchOp{}, false
	}
	b, err := json.Marshal(Receipt{Version: ReceiptVersion, Images: entries})
	if err != nil {
		return PatchOp{}, false // strings only: cannot fail
	}
	value := string(b)
	switch {
	case md == nil:
		return PatchOp{Op: "add", Path: "/metadata", Value: map[string]any{"annotations": map[string]any{ReceiptAnnotation: value}}}, true
	case ann == nil && !patched(earlier, "/metadata/annotations"):
		return PatchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]any{ReceiptAnnotation: value}}, true
	}
	return PatchOp{Op: "add", Path: key, Value: value}, true
}

func patched(ops []PatchOp, path string) bool {
	for _, op := range ops {
		if op.Path == path && op.Op != "remove" {
			return true
		}
	}
	return false
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// pointer turns a container path ("spec.template.spec.containers[0]") into a JSON Pointer
// ("/spec/template/spec/containers/0"). Its segments are Kubernetes field names and indexes: nothing to escape.
func pointer(path string) string {
	r := strings.NewReplacer(".", "/", "[", "/", "]", "")
	return "/" + r.Replace(path)
}
