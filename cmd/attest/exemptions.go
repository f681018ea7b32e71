//go:build !lean

package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/exemptions"
)

// Statuses of a PolicyException as `attest policy exemptions list` shows them.
const (
	statusPending = "pending"
	statusActive  = "active"
	statusExpired = "expired"
)

type exemptionsListOptions struct {
	namespace     string
	allNamespaces bool
	status        string
	format        string
	cluster       clusterFlags
}

// exceptionEntry is one PolicyException in `attest policy exemptions list --format json`.
type exceptionEntry struct {
	Namespace     string                     `json:"namespace"`
	Name          string                     `json:"name"`
	Status        string                     `json:"status"`
	Phase         string                     `json:"phase"`
	Policies      []string                   `json:"policies"`
	Targets       []v1alpha1.ExceptionTarget `json:"targets"`
	ExpiresAt     time.Time                  `json:"expiresAt"`
	Reason        string                     `json:"reason"`
	ApprovedBy    string                     `json:"approvedBy"`
	Ticket        string                     `json:"ticket,omitempty"`
	Emergency     bool                       `json:"emergency,omitempty"`
	Creator       string                     `json:"creator,omitempty"`
	ApprovalCount int                        `json:"approvalCount"`
	Approvals     []approvalEntry            `json:"approvals"`
}

type approvalEntry struct {
	User    string    `json:"user"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
	// Current is false for an approval of an earlier spec, which no longer counts.
	Current bool `json:"current"`
}

func newExemptionsCommand(a app) *cobra.Command {
	cmd := &cobra.Command{Use: "exemptions", Short: fullShort["exemptions"]}
	o := exemptionsListOptions{}
	list := &cobra.Command{
		Use:   "list",
		Short: "List PolicyExceptions with their status: pending, active or expired",
		Long: "Lists the PolicyExceptions of a namespace (-n, default the kubeconfig context's) or of all (-A). Status is\n" +
			"computed now from spec and status: expired once expiresAt has passed; active when approved (phase\n" +
			"Approved, for the current spec) and not expired; pending otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runExemptionsList(cmd, a, o) },
	}
	f := list.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's)")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the PolicyExceptions of every namespace")
	f.StringVar(&o.status, "status", "", "show only pending, active or expired exceptions")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	o.cluster.add(f)
	cmd.AddCommand(list, newDraftsCommand(a))
	return cmd
}

func runExemptionsList(cmd *cobra.Command, a app, o exemptionsListOptions) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	switch o.status {
	case "", statusPending, statusActive, statusExpired:
	default:
		return usageError(fmt.Errorf("--status must be pending, active or expired, got %q", o.status))
	}
	var list v1alpha1.PolicyExceptionList
	ns, err := listScoped(cmd.Context(), a, o.cluster, o.namespace, o.allNamespaces, &list, "PolicyExceptions")
	if err != nil {
		return err
	}
	now := a.clock.Now()
	entries := []exceptionEntry{}
	for i := range list.Items {
		e := entryOf(&list.Items[i], now)
		if o.status == "" || e.Status == o.status {
			entries = append(entries, e)
		}
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
	return writeExceptionsText(out, entries, now, !o.allNamespaces, ns)
}

// exceptionStatus is pending, active or expired at now. Active needs the webhook's Approved phase recorded for
// the spec as it is now (a spec changed behind the webhook's back has no valid approvals).
func exceptionStatus(pe *v1alpha1.PolicyException, now time.Time) string {
	switch {
	case !pe.Spec.ExpiresAt.After(now):
		return statusExpired
	case pe.Status.Phase == exemptions.PhaseApproved && pe.Status.SpecHash == exemptions.SpecHash(pe.Spec):
		return statusActive
	}
	return statusPending
}

func entryOf(pe *v1alpha1.PolicyException, now time.Time) exceptionEntry {
	e := exceptionEntry{
		Namespace: pe.Namespace, Name: pe.Name, Status: exceptionStatus(pe, now), Phase: phaseOf(pe),
		Policies: pe.Spec.Policies, Targets: pe.Spec.Targets, ExpiresAt: pe.Spec.ExpiresAt.UTC(),
		Reason: pe.Spec.Reason, ApprovedBy: pe.Spec.ApprovedBy, Ticket: pe.Spec.Ticket, Emergency: pe.Spec.Emergency,
		Creator: pe.Annotations[v1alpha1.AnnotationCreatedBy], ApprovalCount: pe.Status.ApprovalCount, Approvals: []approvalEntry{},
	}
	hash := exemptions.SpecHash(pe.Spec)
	for _, ap := range pe.Status.Approvals {
		e.Approvals = append(e.Approvals, approvalEntry{User: ap.User, Time: ap.Time.UTC(), Comment: ap.Comment, Current: ap.SpecHash == hash})
	}
	return e
}

// listScoped lists into list the objects of the namespace -n names (by default the kubeconfig context's) or, with
// -A, of every namespace, and returns the namespace it listed.
func listScoped(ctx context.Context, a app, f clusterFlags, namespace string, all bool, list client.ObjectList, what string) (string, error) {
	if all && namespace != "" {
		return "", usageError(fmt.Errorf("-n and -A exclude each other"))
	}
	c, ns, err := a.cluster(f.kubeconfig, f.context)
	if err != nil {
		return "", usageError(err)
	}
	if namespace != "" {
		ns = namespace
	}
	var opts []client.ListOption
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return "", failure(fmt.Errorf("list %s: %w", what, err))
	}
	return ns, nil
}

// startTable writes the line of an empty list ("No PolicyExceptions found in namespace shop.") and returns no
// table, or starts the table with header, NAMESPACE first when the list spans namespaces.
func startTable(w io.Writer, what string, empty, oneNamespace bool, ns, header string) (*tabwriter.Writer, error) {
	if empty {
		where := "in namespace " + ns
		if !oneNamespace {
			where = "in any namespace"
		}
		_, err := fmt.Fprintf(w, "No %s found %s.\n", what, where)
		return nil, err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if !oneNamespace {
		header = "NAMESPACE\t" + header
	}
	_, err := fmt.Fprintln(tw, header)
	return tw, err
}

func writeExceptionsText(w io.Writer, entries []exceptionEntry, now time.Time, oneNamespace bool, ns string) error {
	tw, err := startTable(w, "PolicyExceptions", len(entries) == 0, oneNamespace, ns, "NAME\tSTATUS\tPOLICIES\tTARGETS\tAPPROVALS\tEXPIRES\tREASON")
	if tw == nil {
		return err
	}
	for _, e := range entries {
		approvers := make([]string, 0, len(e.Approvals))
		for _, ap := range e.Approvals {
			if ap.Current {
				approvers = append(approvers, ap.User)
			}
		}
		approvals := fmt.Sprint(e.ApprovalCount)
		if len(approvers) > 0 {
			approvals += " (" + strings.Join(approvers, ", ") + ")"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s (%s)\t%s", e.Name, e.Status, strings.Join(e.Policies, ","), targetsText(e.Targets),
			approvals, e.ExpiresAt.Format(time.RFC3339), relative(e.ExpiresAt.Sub(now)), oneLine(e.Reason))
		if !oneNamespace {
			row = e.Namespace + "\t" + row
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// targetsText is a compact form of the targets: Deployment/web, Pod/web-*, app=web.
func targetsText(ts []v1alpha1.ExceptionTarget) string {
	var parts []string
	for _, t := range ts {
		kinds := strings.Join(t.Kinds, "|")
		if kinds == "" {
			kinds = "*"
		}
		names := strings.Join(t.Names, "|")
		if names == "" {
			names = "*"
		}
		p := kinds + "/" + names
		if t.Selector != nil {
			var sel []string
			for k, v := range t.Selector.MatchLabels {
				sel = append(sel, k+"="+v)
			}
			sort.Strings(sel)
			for _, r := range t.Selector.MatchExpressions {
				sel = append(sel, fmt.Sprintf("%s %s (%s)", r.Key, strings.ToLower(string(r.Operator)), strings.Join(r.Values, ",")))
			}
			p += "[" + strings.Join(sel, ",") + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// relative is "in 14d12h" or "3d ago", to the hour.
func relative(d time.Duration) string {
	past := d < 0
	if past {
		d = -d
	}
	d = d.Round(time.Hour)
	s := fmt.Sprintf("%dh", int(d.Hours()))
	if days := int(d.Hours()) / 24; days > 0 {
		s = fmt.Sprintf("%dd", days)
		if h := int(d.Hours()) % 24; h > 0 {
			s += fmt.Sprintf("%dh", h)
		}
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

func oneLine(s string) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return string(r)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
