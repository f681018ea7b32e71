package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// PolicyExceptionDrafts is the drafts' resource.
var PolicyExceptionDrafts = v1alpha1.GroupVersion.WithResource("policyexceptiondrafts")

// maxDraftViolations caps the messages a draft keeps (its CRD allows 20).
const maxDraftViolations = 20

// Drafts keeps PolicyExceptionDrafts beside the reports. A policy that this run finds newly enabled, newly
// enforced, or enforced from a future enforceAfter (a rollout under way) gets a draft for each workload that
// violates it; every existing draft is refreshed while its workload still violates its policy and removed when
// the workload is gone, compliant or exempted. "Newly" compares with this replica's previous run: the first run
// after a replica starts leading drafts only for rollouts with an enforceAfter ahead.
type Drafts struct {
	client dynamic.Interface
	config func() *config.Config
	clock  clock.PassiveClock
	log    *slog.Logger

	prev    map[string]policies.Settings
	trigger map[string]trigger
	maxDur  time.Duration
	now     time.Time
	// The namespace being audited: each violated (workload, policy), and the workloads an exemption covers.
	violating map[draftKey]*violation
}

var _ Observer = (*Drafts)(nil)

type trigger struct {
	reason       string
	enforceAfter time.Time
}

type draftKey struct{ kind, name, policy string }

type violation struct {
	ref      Ref
	messages []string
}

// NewDrafts writes drafts through client.
func NewDrafts(client dynamic.Interface, cfg func() *config.Config, log *slog.Logger) *Drafts {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Drafts{client: client, config: cfg, clock: clock.RealClock{}, log: log}
}

// WithClock sets the clock (tests).
func (d *Drafts) WithClock(c clock.PassiveClock) *Drafts {
	d.clock = c
	return d
}

// Begin implements Observer: which policies' violators get new drafts in this run.
func (d *Drafts) Begin() {
	cfg := d.config()
	d.now = d.clock.Now()
	d.trigger = map[string]trigger{}
	if cfg == nil {
		return
	}
	d.maxDur = 30 * 24 * time.Hour
	if cfg.Governance != nil && cfg.Governance.MaxDuration > 0 {
		d.maxDur = cfg.Governance.MaxDuration
	}
	for name, s := range cfg.Policies {
		if s.Mode == policies.ModeOff || s.Mode == "" {
			continue
		}
		prev, had := d.prev[name]
		switch {
		case !s.EnforceAfter.IsZero() && d.now.Before(s.EnforceAfter) && s.Mode == policies.ModeEnforce:
			d.trigger[name] = trigger{fmt.Sprintf("violated %s before it is enforced from %s", name, s.EnforceAfter.UTC().Format(time.RFC3339)), s.EnforceAfter}
		case had && (prev.Mode == policies.ModeOff || prev.Mode == ""):
			d.trigger[name] = trigger{reason: fmt.Sprintf("violated %s when it was enabled (%s)", name, s.Mode)}
		case had && prev.Mode != policies.ModeEnforce && s.Mode == policies.ModeEnforce:
			d.trigger[name] = trigger{reason: fmt.Sprintf("violated %s when it moved to enforce", name)}
		}
	}
	d.prev = make(map[string]policies.Settings, len(cfg.Policies))
	for name, s := range cfg.Policies {
		d.prev[name] = s
	}
}

// Namespace implements Observer.
func (d *Drafts) Namespace(string) { d.violating = map[draftKey]*violation{} }

// Object implements Observer: the unexempted violations of each policy.
func (d *Drafts) Object(ref Ref, dec *admission.Decision) {
	for _, v := range dec.Violations {
		if v.Err || v.Exemption != nil || v.Policy == "exemptions" {
			continue
		}
		k := draftKey{ref.Kind, ref.Name, v.Policy}
		vi := d.violating[k]
		if vi == nil {
			vi = &violation{ref: ref}
			d.violating[k] = vi
		}
		if len(vi.messages) < maxDraftViolations {
			vi.messages = append(vi.messages, v.String())
		}
	}
}

// NamespaceDone implements Observer: refresh or remove the namespace's drafts, then write the new ones.
func (d *Drafts) NamespaceDone(ctx context.Context, ns string) error {
	res := d.client.Resource(PolicyExceptionDrafts).Namespace(ns)
	list, err := res.List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ResultSource})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("list PolicyExceptionDrafts in %s: %w (is the CRD policyexceptiondrafts.policy.attest.continuu.ms installed?)", ns, err)
		}
		return fmt.Errorf("list PolicyExceptionDrafts in %s: %w", ns, err)
	}
	existing := map[string]bool{}
	for i := range list.Items {
		var draft v1alpha1.PolicyExceptionDraft
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &draft); err != nil {
			return fmt.Errorf("read PolicyExceptionDraft %s/%s: %w", ns, list.Items[i].GetName(), err)
		}
		existing[draft.Name] = true
		k := draftKey{policy: draft.Spec.Policy}
		if t := draft.Spec.Target; len(t.Kinds) == 1 && len(t.Names) == 1 {
			k.kind, k.name = t.Kinds[0], t.Names[0]
		}
		vi := d.violating[k]
		if vi == nil {
			if err := res.Delete(ctx, draft.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete PolicyExceptionDraft %s/%s: %w", ns, draft.Name, err)
			}
			d.log.Info("draft removed: its workload is gone, compliant or exempted", "namespace", ns, "draft", draft.Name)
			continue
		}
		draft.Spec.Violations, draft.Spec.LastSeen = vi.messages, metav1.NewTime(d.now.UTC().Truncate(time.Second))
		if err := d.apply(ctx, &draft); err != nil {
			return err
		}
	}
	keys := make([]draftKey, 0, len(d.violating))
	for k := range d.violating {
		if _, ok := d.trigger[k.policy]; ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return DraftName(keys[i].kind, keys[i].name, keys[i].policy) < DraftName(keys[j].kind, keys[j].name, keys[j].policy)
	})
	for _, k := range keys {
		name := DraftName(k.kind, k.name, k.policy)
		if existing[name] {
			continue
		}
		t := d.trigger[k.policy]
		vi := d.violating[k]
		now := metav1.NewTime(d.now.UTC().Truncate(time.Second))
		draft := v1alpha1.PolicyExceptionDraft{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.PolicyExceptionDraftSpec{
				Policy: k.policy, Target: v1alpha1.ExceptionTarget{Kinds: []string{k.kind}, Names: []string{k.name}},
				Violations: vi.messages, Reason: fmt.Sprintf("existing %s %s %s", k.kind, k.name, t.reason),
				ValidUntil: metav1.NewTime(now.Add(d.maxDur)), LastSeen: now,
			},
		}
		if !t.enforceAfter.IsZero() {
			ea := metav1.NewTime(t.enforceAfter)
			draft.Spec.EnforceAfter = &ea
		}
		if err := d.apply(ctx, &draft); err != nil {
			return err
		}
		d.log.Info("draft written", "namespace", ns, "draft", name, "policy", k.policy, "workload", k.kind+"/"+k.name)
	}
	return nil
}

// apply writes the draft with its labels by server-side apply.
func (d *Drafts) apply(ctx context.Context, draft *v1alpha1.PolicyExceptionDraft) error {
	draft.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PolicyExceptionDraft"}
	draft.Labels = map[string]string{
		LabelManagedBy:                 ResultSource,
		v1alpha1.LabelPolicy:           draft.Spec.Policy,
		v1alpha1.LabelValidUntil:       draft.Spec.ValidUntil.UTC().Format(v1alpha1.LabelTimeFormat),
		v1alpha1.LabelWorkloadLastSeen: draft.Spec.LastSeen.UTC().Format(v1alpha1.LabelTimeFormat),
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(draft)
	if err != nil {
		return err
	}
	md, _ := m["metadata"].(map[string]any)
	for _, k := range []string{"creationTimestamp", "resourceVersion", "uid", "managedFields", "generation"} {
		delete(md, k)
	}
	res := d.client.Resource(PolicyExceptionDrafts).Namespace(draft.Namespace)
	if _, err := res.Apply(ctx, draft.Name, &unstructured.Unstructured{Object: m}, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("write PolicyExceptionDraft %s/%s: %w", draft.Namespace, draft.Name, err)
	}
	return nil
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// DraftName is <kind>-<name>-<policy>, lower-cased; a name past 63 characters is cut and ends in a hash of the
// whole, so two workloads never share a draft.
func DraftName(kind, name, policy string) string {
	s := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(kind+"-"+name+"-"+policy), "-"), "-")
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(kind + "/" + name + "/" + policy))
	return strings.TrimRight(s[:52], "-") + "-" + hex.EncodeToString(sum[:5])
}
