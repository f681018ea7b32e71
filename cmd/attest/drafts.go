//go:build !lean

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/exemptions"
)

type draftsOptions struct {
	namespace     string
	allNamespaces bool
	format        string
	cluster       clusterFlags
}

// draftEntry is one PolicyExceptionDraft in `attest policy exemptions drafts --format json`.
type draftEntry struct {
	Namespace    string     `json:"namespace"`
	Name         string     `json:"name"`
	Policy       string     `json:"policy"`
	Kind         string     `json:"kind"`
	Workload     string     `json:"workload"`
	Violations   []string   `json:"violations"`
	Reason       string     `json:"reason"`
	EnforceAfter *time.Time `json:"enforceAfter,omitempty"`
	ValidUntil   time.Time  `json:"validUntil"`
	LastSeen     time.Time  `json:"lastSeen"`
	Promoted     string     `json:"promoted,omitempty"`
}

func newDraftsCommand(a app) *cobra.Command {
	o := draftsOptions{}
	cmd := &cobra.Command{
		Use:   "drafts",
		Short: "List the PolicyExceptionDrafts the background audit suggests for a rollout's existing violators",
		Long: "Lists the PolicyExceptionDrafts of a namespace (-n, default the kubeconfig context's) or of all (-A): one per\n" +
			"workload that already violated a policy when it was enabled, moved to enforce or given an enforceAfter.\n" +
			"Drafts exempt nothing; `attest policy exempt promote DRAFT -n NS` turns one into a PolicyException that\n" +
			"then needs the usual approvals.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDrafts(cmd, a, o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's)")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the drafts of every namespace")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	o.cluster.add(f)
	return cmd
}

func runDrafts(cmd *cobra.Command, a app, o draftsOptions) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	var list v1alpha1.PolicyExceptionDraftList
	ns, err := listScoped(cmd.Context(), a, o.cluster, o.namespace, o.allNamespaces, &list, "PolicyExceptionDrafts")
	if err != nil {
		return err
	}
	entries := make([]draftEntry, 0, len(list.Items))
	for i := range list.Items {
		entries = append(entries, draftEntryOf(&list.Items[i]))
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Namespace != entries[j].Namespace {
			return entries[i].Namespace < entries[j].Namespace
		}
		return entries[i].Name < entries[j].Name
	})
	out := cmd.OutOrStdout()
	if o.format == "json" {
		return writeJSON(out, entries)
	}
	return writeDraftsText(out, entries, a.clock.Now(), !o.allNamespaces, ns)
}

func draftEntryOf(d *v1alpha1.PolicyExceptionDraft) draftEntry {
	e := draftEntry{Namespace: d.Namespace, Name: d.Name, Policy: d.Spec.Policy, Violations: d.Spec.Violations, Reason: d.Spec.Reason,
		ValidUntil: d.Spec.ValidUntil.UTC(), LastSeen: d.Spec.LastSeen.UTC(), Promoted: d.Labels[v1alpha1.LabelPromoted]}
	if e.Violations == nil {
		e.Violations = []string{}
	}
	if t := d.Spec.Target; len(t.Kinds) > 0 && len(t.Names) > 0 {
		e.Kind, e.Workload = t.Kinds[0], t.Names[0]
	}
	if d.Spec.EnforceAfter != nil {
		t := d.Spec.EnforceAfter.UTC()
		e.EnforceAfter = &t
	}
	return e
}

func writeDraftsText(w io.Writer, entries []draftEntry, now time.Time, oneNamespace bool, ns string) error {
	tw, err := startTable(w, "PolicyExceptionDrafts", len(entries) == 0, oneNamespace, ns, "NAME\tPOLICY\tWORKLOAD\tENFORCED FROM\tLAST SEEN\tVALID UNTIL\tPROMOTED\tVIOLATION")
	if tw == nil {
		return err
	}
	for _, e := range entries {
		from := "-"
		if e.EnforceAfter != nil {
			from = e.EnforceAfter.Format(time.RFC3339)
		}
		promoted := e.Promoted
		if promoted == "" {
			promoted = "-"
		}
		first := ""
		if len(e.Violations) > 0 {
			first = oneLine(e.Violations[0])
			if n := len(e.Violations) - 1; n > 0 {
				first += fmt.Sprintf(" (+%d)", n)
			}
		}
		row := fmt.Sprintf("%s\t%s\t%s/%s\t%s\t%s\t%s (%s)\t%s\t%s", e.Name, e.Policy, e.Kind, e.Workload, from,
			e.LastSeen.Format(time.RFC3339), e.ValidUntil.Format(time.RFC3339), relative(e.ValidUntil.Sub(now)), promoted, first)
		if !oneNamespace {
			row = e.Namespace + "\t" + row
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

type promoteOptions struct {
	namespace string
	duration  string
	reason    string
	ticket    string
	config    string
	cluster   clusterFlags
}

func newPromoteCommand(a app) *cobra.Command {
	o := promoteOptions{}
	cmd := &cobra.Command{
		Use:   "promote DRAFT",
		Short: "Turn a PolicyExceptionDraft into a PolicyException (Pending until approved)",
		Long: "Creates a PolicyException from the draft: its policy, its workload as the target, and the draft's reason\n" +
			"(or --reason), expiring after --duration (default: the draft's valid-until, at most the governance\n" +
			"maximum from now). The exception is checked with the webhook's rules, created as you (the creator), and is\n" +
			"Pending: it exempts nothing until approvers run `attest policy exempt approve NAME -n NAMESPACE`. The\n" +
			"draft is labelled with the exception's name; the audit removes it once the exception waives the violation.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runPromote(cmd, a, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace of the draft (default: the kubeconfig context's)")
	f.StringVar(&o.duration, "duration", "", "how long the exception lasts: 30d, 72h, 2w (default: until the draft's valid-until)")
	f.StringVar(&o.reason, "reason", "", "why the exception is needed (default: the draft's reason)")
	f.StringVar(&o.ticket, "ticket", "", "change request or ticket reference")
	f.StringVar(&o.config, "config", "", "policies.yaml whose exemptions: governance bounds the duration (default: 30 days)")
	o.cluster.add(f)
	return cmd
}

func runPromote(cmd *cobra.Command, a app, o promoteOptions, name string) error {
	ctx := cmd.Context()
	engine, cfg, err := engineAndConfig(ctx, o.config)
	if err != nil {
		return err
	}
	c, ns, err := a.cluster(o.cluster.kubeconfig, o.cluster.context)
	if err != nil {
		return usageError(err)
	}
	if o.namespace != "" {
		ns = o.namespace
	}
	var draft v1alpha1.PolicyExceptionDraft
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &draft); err != nil {
		if apierrors.IsNotFound(err) {
			return failure(fmt.Errorf("PolicyExceptionDraft %s/%s not found (attest policy exemptions drafts -n %s lists them)", ns, name, ns))
		}
		return failure(fmt.Errorf("read PolicyExceptionDraft %s/%s: %w", ns, name, err))
	}
	now := a.clock.Now()
	maxDur := cfg.Governance.MaxDuration
	expires := draft.Spec.ValidUntil.Time
	if o.duration != "" {
		d, err := exemptions.ParseDuration(o.duration)
		if err != nil {
			return usageError(fmt.Errorf("--duration: %w", err))
		}
		if d > maxDur {
			return usageError(fmt.Errorf("--duration %s is beyond the maximum of %s (exemptions.maxDuration); ask for at most %s", o.duration, days(maxDur), days(maxDur)))
		}
		expires = now.Add(d)
	} else if !expires.After(now) || expires.After(now.Add(maxDur)) {
		expires = now.Add(maxDur)
	}
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		reason = draft.Spec.Reason
	}
	pe := &v1alpha1.PolicyException{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PolicyException"},
		ObjectMeta: metav1.ObjectMeta{Name: draft.Name, Namespace: ns},
		Spec: v1alpha1.PolicyExceptionSpec{
			Policies: []string{draft.Spec.Policy}, Targets: []v1alpha1.ExceptionTarget{draft.Spec.Target},
			ExpiresAt: metav1.NewTime(expires.UTC().Truncate(time.Second)), Reason: reason, ApprovedBy: defaultApprovedBy, Ticket: o.ticket,
		},
	}
	known := func(p string) bool { _, ok := engine.Lookup(p); return ok }
	if problems := exemptions.ValidateException(cfg.Governance, known, pe, nil, now); len(problems) > 0 {
		return usageError(fmt.Errorf("the PolicyException would be refused:\n  %s", strings.Join(problems, "\n  ")))
	}
	if err := c.Create(ctx, pe); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return failure(fmt.Errorf("PolicyException %s/%s already exists: the draft was promoted before (attest policy exemptions list -n %s)", ns, pe.Name, ns))
		}
		return failure(fmt.Errorf("create PolicyException %s/%s: %w", ns, pe.Name, err))
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{v1alpha1.LabelPromoted: pe.Name}}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, &draft, client.RawPatch(types.MergePatchType, patch)); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: could not label the draft as promoted: %v\n", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "policyexception.%s/%s created in namespace %s from draft %s: %s until approved (attest policy exempt approve %s -n %s), expires %s\n",
		v1alpha1.GroupVersion.Group, pe.Name, ns, draft.Name, phaseOf(pe), pe.Name, ns, pe.Spec.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}
