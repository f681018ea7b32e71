package gatekeeper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"weak"

	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	mutationtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/continuums/attest/policies"
)

// Gatekeeper's template annotations that ATTEST shows as a constraint policy's title and description.
const (
	annotationTitle       = "metadata.gatekeeper.sh/title"
	annotationDescription = "metadata.gatekeeper.sh/description"
)

// A Set holds templates, constraints, ExpansionTemplates and data.inventory and makes each constraint a policy of
// ATTEST's pipeline, named "<Kind>/<name>". All its constraints are reviewed together, once per document, by
// Gatekeeper's evaluation library; each constraint's policy reports the violations of its constraint. It is safe
// for concurrent use once loaded.
type Set struct {
	client     *Client
	ep         string
	templates  map[string]*setTemplate // by constraint kind
	kinds      map[string]bool         // constraint kinds, lower-cased: Gatekeeper's template names
	order      []*setConstraint
	byPolicy   map[string]*setConstraint
	expander   *Expander
	nsMu       sync.RWMutex                 // guards namespaces: inventory may change while the Set reviews
	namespaces map[string]*corev1.Namespace // the inventory's Namespaces, for a caller that knows only names
	memo       reviewMemo
}

type setTemplate struct {
	t      *Template
	source string
}

type setConstraint struct {
	k      *Constraint
	source string
	mode   policies.Mode
}

// NewSet returns an empty Set reviewing at o.EnforcementPoint (default the webhook's).
func NewSet(o Options) (*Set, error) {
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	return &Set{
		client: c, ep: c.ep,
		templates: map[string]*setTemplate{}, kinds: map[string]bool{}, byPolicy: map[string]*setConstraint{},
		expander: NewExpander(), namespaces: map[string]*corev1.Namespace{},
		memo: reviewMemo{m: map[weak.Pointer[policies.Document]]*reviewEntry{}},
	}, nil
}

// AddTemplate compiles a template; source (file:line) names it in errors and in its constraints' policies.
func (s *Set) AddTemplate(ctx context.Context, t *Template, source string) error {
	if prev, dup := s.templates[t.Kind()]; dup {
		return fmt.Errorf("%s: template %s: kind %s is already defined by the template of %s", source, t.Name(), t.Kind(), prev.source)
	}
	if !policies.ValidName(t.Kind() + "/x") {
		return fmt.Errorf("%s: template %s: spec.crd.spec.names.kind %q is not a kind (a letter, then letters, digits and '-', at most 63 characters)", source, t.Name(), t.Kind())
	}
	if err := s.client.AddTemplate(ctx, t); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	s.templates[t.Kind()] = &setTemplate{t: t, source: source}
	s.kinds[t.Name()] = true
	return nil
}

// AddConstraint adds a constraint of a template added before; its parameters are checked against the
// template's schema, and its enforcementAction at the Set's enforcement point decides its policy's mode.
func (s *Set) AddConstraint(ctx context.Context, k *Constraint, source string) error {
	if _, ok := s.templates[k.Kind()]; !ok {
		return fmt.Errorf("%s: constraint %s: no ConstraintTemplate defines the kind %s", source, k.Policy(), k.Kind())
	}
	if prev, dup := s.byPolicy[k.Policy()]; dup {
		return fmt.Errorf("%s: constraint %s is already defined at %s", source, k.Policy(), prev.source)
	}
	if !policies.ValidName(k.Policy()) {
		return fmt.Errorf("%s: constraint %s: metadata.name %q is not a Kubernetes object name (lower-case letters, digits, '-' and '.')", source, k.Policy(), k.Name())
	}
	mode, err := k.modeAt(s.ep)
	if err != nil {
		return fmt.Errorf("%s: constraint %s: %w", source, k.Policy(), err)
	}
	if err := s.client.AddConstraint(ctx, k); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	sc := &setConstraint{k: k, source: source, mode: mode}
	s.order = append(s.order, sc)
	s.byPolicy[k.Policy()] = sc
	return nil
}

// AddExpansionTemplate adds an ExpansionTemplate: the objects it applies to are reviewed as the objects they
// generate too (a Deployment as its Pod), as Gatekeeper's webhook does.
func (s *Set) AddExpansionTemplate(e *ExpansionTemplate, source string) error {
	if err := s.expander.Add(e); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return nil
}

// AddInventory puts an object into data.inventory; a Namespace also gives its labels to namespaceSelector for
// objects reviewed in it.
func (s *Set) AddInventory(ctx context.Context, obj *unstructured.Unstructured) error {
	if err := s.client.AddInventory(ctx, obj); err != nil {
		return err
	}
	if obj.GroupVersionKind().GroupKind() == (schema.GroupKind{Kind: "Namespace"}) {
		ns := &corev1.Namespace{}
		if err := runtimeFromUnstructured(obj, ns); err != nil {
			return fmt.Errorf("inventory Namespace %s: %w", obj.GetName(), err)
		}
		s.nsMu.Lock()
		s.namespaces[ns.Name] = ns
		s.nsMu.Unlock()
	}
	return nil
}

// Constraints counts the constraints added.
func (s *Set) Constraints() int { return len(s.order) }

// IsConstraintKind tells whether kind is the kind of a template of the Set.
func (s *Set) IsConstraintKind(kind string) bool { _, ok := s.templates[kind]; return ok }

// Policies makes one pipeline policy per constraint, named "<Kind>/<name>": its title and description are the
// template's (Gatekeeper's metadata.gatekeeper.sh annotations), its default mode the constraint's
// enforcementAction (deny: enforce; warn and dryrun: audit; scoped: the actions for the enforcement point,
// off when none), and it has no parameters of its own: they are the constraint's.
func (s *Set) Policies() ([]*policies.Policy, error) {
	out := make([]*policies.Policy, 0, len(s.order))
	for _, sc := range s.order {
		tmpl := s.templates[sc.k.Kind()]
		ann := tmpl.t.ct.GetAnnotations()
		md := policies.Metadata{
			Name:        sc.k.Policy(),
			Title:       ann[annotationTitle],
			Description: ann[annotationDescription],
			Severity:    policies.SeverityMedium, // Gatekeeper has no severity; config's compliance and metrics see medium
			DefaultMode: sc.mode,
			Package:     "gatekeeper:" + tmpl.t.Name(),
			File:        sc.source,
			Digest:      digest(tmpl.t.ct, sc.k.u.Object),
		}
		if md.Title == "" {
			md.Title = sc.k.Kind()
		}
		p, err := policies.NewPolicy(md, &constraintEvaluator{set: s, policy: sc.k.Policy(), mode: sc.mode})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// digest identifies a constraint's policy by the template and constraint it runs, as a Rego policy's digest
// identifies its source text.
func digest(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		b, _ := json.Marshal(p) // JSON-shaped values: cannot fail
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// constraintEvaluator is one constraint's policy: the violations of that constraint in the Set's review.
type constraintEvaluator struct {
	set    *Set
	policy string
	mode   policies.Mode
}

var _ policies.Evaluator = (*constraintEvaluator)(nil)

// Engine is the engine label of constraints' evaluation metrics (Rego and CEL templates alike).
func (e *constraintEvaluator) Engine() string { return "gatekeeper" }

// Evaluate reviews the document (once for all the Set's constraints) and returns this constraint's violations,
// with the template's message. A violation found on an object an ExpansionTemplate generated carries
// Gatekeeper's "[Implied by <template>]" prefix; one whose ExpansionTemplate sets a weaker enforcementAction
// than the constraint's only warns.
func (e *constraintEvaluator) Evaluate(ctx context.Context, doc *policies.Document, _ policies.Settings) ([]policies.Finding, error) {
	results, err := e.set.reviewOnce(ctx, doc)
	if err != nil {
		return nil, err
	}
	var out []policies.Finding
	for _, r := range results {
		if r.Policy != e.policy {
			continue
		}
		f := policies.Finding{Message: r.Message, Severity: policies.SeverityMedium}
		switch {
		case recordOnly(r):
			f.RecordOnly = true // Gatekeeper's dryrun: recorded, never shown to the user
		case e.mode == policies.ModeEnforce && modeOfResult(r) != policies.ModeEnforce:
			f.Warning = true
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Message < out[j].Message })
	return out, nil
}

// modeOfResult is what a result does at its enforcement point: deny, or (warn, dryrun) audit.
func modeOfResult(r Result) policies.Mode {
	actions := []string{r.EnforcementAction}
	if r.EnforcementAction == string(util.Scoped) {
		actions = r.ScopedActions
	}
	if slices.Contains(actions, string(util.Deny)) {
		return policies.ModeEnforce
	}
	return policies.ModeAudit
}

// recordOnly tells whether a result's only action at its enforcement point is dryrun: Gatekeeper records it
// (audit) and neither denies nor warns.
func recordOnly(r Result) bool {
	actions := []string{r.EnforcementAction}
	if r.EnforcementAction == string(util.Scoped) {
		actions = r.ScopedActions
	}
	if len(actions) == 0 {
		return false
	}
	for _, a := range actions {
		if a != string(util.Dryrun) {
			return false
		}
	}
	return true
}

// modeAt is the mode of the constraint's policy at an enforcement point.
func (c *Constraint) modeAt(ep string) (policies.Mode, error) {
	action, err := util.GetEnforcementAction(c.u.Object)
	if err != nil {
		return "", err
	}
	switch action {
	case util.Deny:
		return policies.ModeEnforce, nil
	case util.Warn, util.Dryrun:
		return policies.ModeAudit, nil
	case util.Scoped:
		if err := util.ValidateScopedEnforcementAction(c.u.Object); err != nil {
			return "", err
		}
		actions, err := util.ScopedActionForEP(ep, c.u)
		if err != nil {
			return "", err
		}
		switch {
		case slices.Contains(actions, string(util.Deny)):
			return policies.ModeEnforce, nil
		case len(actions) > 0:
			return policies.ModeAudit, nil
		}
		return policies.ModeOff, nil
	}
	return "", fmt.Errorf("spec.enforcementAction %q: want deny, dryrun, warn or scoped", c.EnforcementAction())
}

// reviewOnce reviews the document against every constraint of the Set, once per document however many
// constraint policies ask.
func (s *Set) reviewOnce(ctx context.Context, doc *policies.Document) ([]Result, error) {
	e := s.memo.entry(doc)
	e.once.Do(func() { e.results, e.err = s.review(ctx, doc.Input()) })
	return e.results, e.err
}

// review builds Gatekeeper's AdmissionRequest from the pipeline's input and reviews it, with the objects
// ExpansionTemplates generate from it.
func (s *Set) review(ctx context.Context, in *policies.Input) ([]Result, error) {
	raw, err := json.Marshal(in.Resource)
	if err != nil {
		return nil, fmt.Errorf("review: encode the object: %w", err)
	}
	r := in.Request
	req := &admissionv1.AdmissionRequest{
		UID:         ktypes.UID(r.UID),
		Kind:        metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
		SubResource: r.SubResource,
		Name:        r.Name,
		Namespace:   r.Namespace,
		Operation:   admissionv1.Operation(r.Operation),
		UserInfo:    authenticationv1.UserInfo{Username: r.Username, Groups: r.Groups},
		Object:      runtimeRaw(raw),
		DryRun:      &r.DryRun,
	}
	if r.Group == "" && r.Kind == "Namespace" {
		req.Namespace = "" // as Gatekeeper's webhook: a Namespace is reviewed as cluster-scoped
	}
	if in.OldResource != nil {
		old, err := json.Marshal(in.OldResource)
		if err != nil {
			return nil, fmt.Errorf("review: encode the old object: %w", err)
		}
		req.OldObject = runtimeRaw(old)
	}
	ns := s.namespaceOf(in, req.Namespace)
	opts := []reviews.ReviewOpt{reviews.EnforcementPoint(s.ep)}
	if ns != nil {
		nsMap, err := util.NamespaceToMap(ns)
		if err != nil {
			return nil, fmt.Errorf("review: namespace %s: %w", ns.Name, err)
		}
		opts = append(opts, reviews.Namespace(nsMap))
	}
	resp, err := s.client.cc.Review(ctx, target.AugmentedReview{
		AdmissionRequest: req, Namespace: ns, Source: mutationtypes.SourceTypeOriginal, IsAdmission: true,
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	if !s.expander.empty() && in.Resource != nil {
		base := (&unstructured.Unstructured{Object: in.Resource}).DeepCopy() // nothing of the document is handed on
		base.SetNamespace(req.Namespace)
		base.SetGroupVersionKind(schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind})
		if err := s.client.expand(ctx, s.expander, base, ns, req.UserInfo.Username, req.Operation, resp, opts); err != nil {
			return nil, err
		}
	}
	return toResults(resp.Results()), nil
}

// namespaceOf is the namespace object Gatekeeper matches namespaceSelector against and shows as
// namespaceObject: the one the caller knows (the webhook's namespace cache), else, as gator does, the
// inventory's, a bare "default", or an empty one for a cluster-scoped object. nil leaves it to Gatekeeper
// (a namespaceSelector then cannot match, and says so).
func (s *Set) namespaceOf(in *policies.Input, name string) *corev1.Namespace {
	if in.Namespace.Labels != nil || in.Namespace.Annotations != nil {
		return &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: in.Namespace.Name, Labels: in.Namespace.Labels, Annotations: in.Namespace.Annotations},
		}
	}
	s.nsMu.RLock()
	ns, ok := s.namespaces[name]
	s.nsMu.RUnlock()
	if ok {
		return ns
	}
	switch name {
	case "":
		return &corev1.Namespace{}
	case "default":
		return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	}
	return nil
}

// reviewMemo keeps each document's review for as long as the document lives: every constraint policy of one
// admission reads the one review, and nothing outlives the admission (entries go when the document is collected).
type reviewMemo struct {
	mu sync.Mutex
	m  map[weak.Pointer[policies.Document]]*reviewEntry
}

type reviewEntry struct {
	once    sync.Once
	results []Result
	err     error
}

func (m *reviewMemo) entry(doc *policies.Document) *reviewEntry {
	key := weak.Make(doc)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[key]; ok {
		return e
	}
	e := &reviewEntry{}
	m.m[key] = e
	runtime.AddCleanup(doc, m.drop, key)
	return e
}

func (m *reviewMemo) drop(key weak.Pointer[policies.Document]) {
	m.mu.Lock()
	delete(m.m, key)
	m.mu.Unlock()
}

// size is the number of documents whose review is kept (for tests).
func (m *reviewMemo) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

func runtimeRaw(b []byte) kruntime.RawExtension { return kruntime.RawExtension{Raw: b} }

func runtimeFromUnstructured(u *unstructured.Unstructured, into any) error {
	return kruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}
