// Package rulesync keeps the operations of ATTEST's validating webhook in step with its policies: DELETE and
// CONNECT requests reach ATTEST only while a loaded policy judges them, so a cluster without such policies sends
// it no deletions; CREATE and UPDATE of kinds beyond the workloads (a Cedar policy on ConfigMaps) reach it through
// a second entry whose rules are exactly those kinds. It changes rules only: the namespaceSelector (never
// kube-system or attest-system) and matchConditions stay as the manifests wrote them.
package rulesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// ConnectResources are the subresources a CONNECT request names; the CONNECT rule covers them.
var ConnectResources = []string{"pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "services/proxy", "nodes/proxy"}

// Options configure a Syncer.
type Options struct {
	Client kubernetes.Interface
	// Configuration is the ValidatingWebhookConfiguration, Webhook the entry of it whose rules are kept.
	Configuration string
	Webhook       string
	// Needed returns the operations beyond CREATE and UPDATE that the loaded policies judge: "DELETE" (every
	// resource the webhook's rules cover), "DELETE apps/deployments" (that resource only), "CONNECT".
	Needed func() []string
	// Writes returns the resources ("group/resource", core "/configmaps") whose CREATE and UPDATE the loaded
	// policies judge beyond the workload kinds; nil: none.
	Writes func() []string
	// WritesWebhook is the entry of Configuration that carries a rule for each resource of Writes that Webhook's
	// rules do not cover (none when Writes is empty). The manifests ship it with no rules.
	WritesWebhook string
	// Interval is how often Needed is asked (default 2 s); the configuration is read again when it changes, and
	// every 30 intervals to restore what someone else changed.
	Interval time.Duration
	Log      *slog.Logger
}

// Syncer keeps one webhook's operations in step with Needed.
type Syncer struct {
	o Options
}

// New validates the options.
func New(o Options) (*Syncer, error) {
	if o.Client == nil || o.Configuration == "" || o.Webhook == "" || o.Needed == nil {
		return nil, errors.New("rulesync: client, configuration, webhook and needed operations are required")
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{o: o}, nil
}

// Run syncs until ctx ends; failures are logged and retried (admission goes on with the rules as they are).
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	var last, lastWrites []string
	synced := false
	for n := 0; ; n++ {
		want, writes := normalize(s.o.Needed()), s.writes()
		if !synced || !slices.Equal(want, last) || !slices.Equal(writes, lastWrites) || n%30 == 0 {
			changed, err := s.sync(ctx, want, writes)
			switch {
			case err != nil:
				s.o.Log.Error("cannot keep the webhook's operations in step with the policies", "configuration", s.o.Configuration, "error", err)
				synced = false
			case changed:
				s.o.Log.Info("webhook operations updated for the loaded policies", "configuration", s.o.Configuration, "webhook", s.o.Webhook, "judged", want, "writes", writes)
				last, lastWrites, synced = want, writes, true
			default:
				last, lastWrites, synced = want, writes, true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// writes are the resources of Options.Writes, sorted, once each.
func (s *Syncer) writes() []string {
	if s.o.Writes == nil {
		return nil
	}
	w := slices.Clone(s.o.Writes())
	slices.Sort(w)
	return slices.Compact(w)
}

// Sync makes the webhook's rules carry exactly the operations needed: DELETE beside CREATE and UPDATE in every
// rule, and a CONNECT rule for ConnectResources; and WritesWebhook's rules the resources of Writes. It reports
// whether it changed the configuration.
func (s *Syncer) Sync(ctx context.Context, needed []string) (bool, error) {
	return s.sync(ctx, normalize(needed), s.writes())
}

func (s *Syncer) sync(ctx context.Context, needed, writes []string) (bool, error) {
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = false
		vwcs := s.o.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
		// List by name: ATTEST's ClusterRole grants list and watch on webhook configurations, update on its own.
		list, err := vwcs.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", s.o.Configuration).String()})
		if err != nil {
			return fmt.Errorf("read ValidatingWebhookConfiguration %s: %w", s.o.Configuration, err)
		}
		j := slices.IndexFunc(list.Items, func(v admissionregistrationv1.ValidatingWebhookConfiguration) bool {
			return v.Name == s.o.Configuration
		})
		if j < 0 {
			return fmt.Errorf("ValidatingWebhookConfiguration %s not found", s.o.Configuration)
		}
		vwc := list.Items[j]
		i := slices.IndexFunc(vwc.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool { return w.Name == s.o.Webhook })
		if i < 0 {
			return fmt.Errorf("ValidatingWebhookConfiguration %s has no webhook %s", s.o.Configuration, s.o.Webhook)
		}
		rules := Rules(vwc.Webhooks[i].Rules, needed)
		update := !equalRules(rules, vwc.Webhooks[i].Rules)
		vwc.Webhooks[i].Rules = rules
		var missing error // the main webhook's rules are kept all the same
		if s.o.WritesWebhook != "" {
			w := slices.IndexFunc(vwc.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool { return w.Name == s.o.WritesWebhook })
			want := WriteRules(rules, writes)
			switch {
			case w >= 0 && !equalRules(want, vwc.Webhooks[w].Rules):
				vwc.Webhooks[w].Rules, update = want, true
			case w < 0 && len(want) > 0:
				missing = fmt.Errorf("ValidatingWebhookConfiguration %s has no webhook %s for the writes of %s that policies judge (apply ATTEST's manifests of this version)",
					s.o.Configuration, s.o.WritesWebhook, strings.Join(writes, ", "))
			}
		}
		if !update {
			return missing
		}
		if _, err := vwcs.Update(ctx, &vwc, metav1.UpdateOptions{}); err != nil {
			return err
		}
		changed = true
		return missing
	})
	return changed, err
}

// Rules are rules with the operations needed: DELETE added to (or removed from) every rule that is not the
// CONNECT rule when "DELETE" is needed; when only "DELETE group/resource" entries are, one DELETE rule beside each
// rule for the resources of it named, and one per group for those no rule covers; the CONNECT rule present only
// when CONNECT is needed.
func Rules(rules []admissionregistrationv1.RuleWithOperations, needed []string) []admissionregistrationv1.RuleWithOperations {
	del := slices.Contains(needed, string(admissionregistrationv1.Delete))
	conn := slices.Contains(needed, string(admissionregistrationv1.Connect))
	narrowed := map[string][]string{} // group → resources DELETE is judged for
	if !del {
		for _, n := range needed {
			if gr, ok := strings.CutPrefix(n, string(admissionregistrationv1.Delete)+" "); ok {
				group, resource, _ := strings.Cut(gr, "/")
				narrowed[group] = append(narrowed[group], resource)
			}
		}
	}
	covered := map[string]bool{}
	out := make([]admissionregistrationv1.RuleWithOperations, 0, len(rules)+1)
	for _, r := range rules {
		if isConnectRule(r) || isDeleteRule(r) {
			continue
		}
		ops := make([]admissionregistrationv1.OperationType, 0, len(r.Operations)+1)
		for _, op := range r.Operations {
			if op != admissionregistrationv1.Delete && op != admissionregistrationv1.Connect && op != admissionregistrationv1.OperationAll {
				ops = append(ops, op)
			}
		}
		if slices.Contains(r.Operations, admissionregistrationv1.OperationAll) {
			ops = append(ops, admissionregistrationv1.Create, admissionregistrationv1.Update)
		}
		if del {
			ops = append(ops, admissionregistrationv1.Delete)
		}
		r.Operations = ops
		out = append(out, r)
		var deletes []string
		for _, res := range r.Resources {
			for _, g := range r.APIGroups {
				if slices.Contains(narrowed[g], res) && !covered[g+"/"+res] {
					covered[g+"/"+res] = true
					deletes = append(deletes, res)
				}
			}
		}
		if len(deletes) > 0 {
			d := r
			d.Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}
			d.Resources = deletes
			out = append(out, d)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(narrowed)) {
		var rest []string
		for _, res := range narrowed[g] {
			if !covered[g+"/"+res] && !slices.Contains(rest, res) {
				rest = append(rest, res)
			}
		}
		if len(rest) == 0 {
			continue
		}
		scope := admissionregistrationv1.AllScopes
		out = append(out, admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{g}, APIVersions: []string{"*"}, Resources: rest, Scope: &scope},
		})
	}
	if conn {
		scope := admissionregistrationv1.AllScopes
		out = append(out, admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Connect},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: slices.Clone(ConnectResources), Scope: &scope},
		})
	}
	return out
}

// WriteRules are the rules that send CREATE and UPDATE of the resources of writes ("group/resource") that rules
// do not already send: one rule per group, every version, any scope.
func WriteRules(rules []admissionregistrationv1.RuleWithOperations, writes []string) []admissionregistrationv1.RuleWithOperations {
	byGroup := map[string][]string{}
	for _, gr := range writes {
		group, resource, _ := strings.Cut(gr, "/")
		if !covers(rules, group, resource) && !slices.Contains(byGroup[group], resource) {
			byGroup[group] = append(byGroup[group], resource)
		}
	}
	out := []admissionregistrationv1.RuleWithOperations{}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		scope := admissionregistrationv1.AllScopes
		out = append(out, admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{g}, APIVersions: []string{"*"}, Resources: slices.Sorted(slices.Values(byGroup[g])), Scope: &scope},
		})
	}
	return out
}

// covers reports whether a rule sends CREATE and UPDATE of group/resource.
func covers(rules []admissionregistrationv1.RuleWithOperations, group, resource string) bool {
	for _, r := range rules {
		ops := r.Operations
		if !slices.Contains(ops, admissionregistrationv1.OperationAll) &&
			(!slices.Contains(ops, admissionregistrationv1.Create) || !slices.Contains(ops, admissionregistrationv1.Update)) {
			continue
		}
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) {
			return true // the webhooks match equivalent versions (matchPolicy: Equivalent)
		}
	}
	return false
}

// Resources maps kinds ("group/Kind") to the resources ("group/resource") that serve them, with the mapper (the
// cluster's discovery); a kind the cluster does not serve is left out, as no request can name it.
func Resources(kinds []string, mapper meta.RESTMapper) []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		group, kind, _ := strings.Cut(k, "/")
		m, err := mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
		if err != nil {
			continue
		}
		out = append(out, m.Resource.Group+"/"+m.Resource.Resource)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isDeleteRule reports whether a rule is one Rules wrote for narrowed deletions (DELETE alone).
func isDeleteRule(r admissionregistrationv1.RuleWithOperations) bool {
	return len(r.Operations) == 1 && r.Operations[0] == admissionregistrationv1.Delete
}

func isConnectRule(r admissionregistrationv1.RuleWithOperations) bool {
	return len(r.Operations) == 1 && r.Operations[0] == admissionregistrationv1.Connect
}

func equalRules(a, b []admissionregistrationv1.RuleWithOperations) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].Operations, b[i].Operations) || !slices.Equal(a[i].APIGroups, b[i].APIGroups) ||
			!slices.Equal(a[i].APIVersions, b[i].APIVersions) || !slices.Equal(a[i].Resources, b[i].Resources) {
			return false
		}
	}
	return true
}

// normalize keeps the CONNECT and DELETE entries (narrowed ones too), sorted, once each.
func normalize(ops []string) []string {
	out := []string{}
	for _, op := range ops {
		if op == string(admissionregistrationv1.Connect) || op == string(admissionregistrationv1.Delete) ||
			strings.HasPrefix(op, string(admissionregistrationv1.Delete)+" ") {
			out = append(out, op)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Needs are the Needed entries for operations and the kinds each is judged for (config.OperationKinds: "group/
// Kind", nil for every kind): "DELETE group/resource" for each kind the mapper knows, and the bare operation,
// every resource, when one it does not (the rules must never miss a request a policy judges).
func Needs(opKinds map[string][]string, mapper meta.RESTMapper) []string {
	var out []string
	for _, op := range slices.Sorted(maps.Keys(opKinds)) {
		kinds := opKinds[op]
		if kinds == nil || op != string(admissionregistrationv1.Delete) || mapper == nil {
			out = append(out, op)
			continue
		}
		entries := make([]string, 0, len(kinds))
		for _, k := range kinds {
			group, kind, _ := strings.Cut(k, "/")
			m, err := mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
			if err != nil {
				entries = []string{op}
				break
			}
			entries = append(entries, op+" "+m.Resource.Group+"/"+m.Resource.Resource)
		}
		out = append(out, entries...)
	}
	return normalize(out)
}
