//go:build !lean

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/exemptions"
)

type exemptOptions struct {
	policies   []string
	resource   string
	reason     string
	duration   string
	approvedBy string
	ticket     string
	emergency  bool
	name       string
	config     string
	apply      bool
	cluster    clusterFlags
}

// defaultApprovedBy fills spec.approvedBy, which is for display only and required: the approvals that count are
// recorded by the webhook from each approver's own `attest policy exempt approve`.
const defaultApprovedBy = "pending"

func newExemptCommand(a app) *cobra.Command {
	o := exemptOptions{}
	cmd := &cobra.Command{
		Use:   "exempt --policy NAME --resource KIND/NAMESPACE/NAME --reason R --duration D",
		Short: fullShort["exempt"],
		Long: "Builds a PolicyException that exempts one object (and what its controllers create) from the named\n" +
			"policies until now + --duration, checked with the webhook's rules (known policies, required fields, the\n" +
			"governance's maximum duration from --config, default 30d). Prints the YAML, or with --apply creates it\n" +
			"in the cluster of the current kubeconfig context, as kubectl does. A new exception is Pending: it\n" +
			"exempts nothing until enough approvers run `attest policy exempt approve NAME -n NAMESPACE`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runExempt(cmd, a, o) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.policies, "policy", nil, "policy to exempt from (repeatable)")
	f.StringVar(&o.resource, "resource", "", "the object to exempt, as KIND/NAMESPACE/NAME (e.g. Deployment/shop/web)")
	f.StringVar(&o.reason, "reason", "", "why the exception is needed")
	f.StringVar(&o.duration, "duration", "", "how long the exception lasts: 30d, 72h, 2w (at most the governance maximum)")
	f.StringVar(&o.approvedBy, "approved-by", "", "the approver named in spec.approvedBy, for display only (the approvals that count are recorded by attest policy exempt approve; default: pending)")
	f.StringVar(&o.ticket, "ticket", "", "change request or ticket reference")
	f.BoolVar(&o.emergency, "emergency", false, "mark an emergency override (needs the governance's emergency number of approvers)")
	f.StringVar(&o.name, "name", "", "name of the PolicyException (default: <kind>-<name>-<policies>, lower-cased, at most 63 characters)")
	f.StringVar(&o.config, "config", "", "policies.yaml whose exemptions: governance bounds the duration (default: 30 days)")
	f.BoolVar(&o.apply, "apply", false, "create the PolicyException in the cluster instead of printing it")
	o.cluster.add(f)
	cmd.AddCommand(newApproveCommand(a), newPromoteCommand(a))
	return cmd
}

func runExempt(cmd *cobra.Command, a app, o exemptOptions) error {
	var missing []string
	for flag, v := range map[string]bool{"--policy": len(o.policies) > 0, "--resource": o.resource != "", "--reason": strings.TrimSpace(o.reason) != "", "--duration": o.duration != ""} {
		if !v {
			missing = append(missing, flag)
		}
	}
	if len(missing) > 0 {
		return usageError(fmt.Errorf("required: %s", strings.Join(sortedStrings(missing), ", ")))
	}
	kind, namespace, name, err := parseResource(o.resource)
	if err != nil {
		return usageError(err)
	}
	d, err := exemptions.ParseDuration(o.duration)
	if err != nil {
		return usageError(fmt.Errorf("--duration: %w", err))
	}
	ctx := cmd.Context()
	engine, cfg, err := engineAndConfig(ctx, o.config)
	if err != nil {
		return err
	}
	if max := cfg.Governance.MaxDuration; d > max {
		return usageError(fmt.Errorf("--duration %s is beyond the maximum of %s (exemptions.maxDuration); ask for at most %s", o.duration, days(max), days(max)))
	}
	now := a.clock.Now()
	pe := &v1alpha1.PolicyException{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PolicyException"},
		ObjectMeta: metav1.ObjectMeta{Name: o.name, Namespace: namespace},
		Spec: v1alpha1.PolicyExceptionSpec{
			Policies:   o.policies,
			Targets:    []v1alpha1.ExceptionTarget{{Kinds: []string{kind}, Names: []string{name}}},
			ExpiresAt:  metav1.NewTime(now.Add(d).UTC().Truncate(time.Second)),
			Reason:     strings.TrimSpace(o.reason),
			ApprovedBy: strings.TrimSpace(o.approvedBy),
			Ticket:     o.ticket,
			Emergency:  o.emergency,
		},
	}
	if pe.Spec.ApprovedBy == "" {
		pe.Spec.ApprovedBy = defaultApprovedBy
	}
	if pe.Name == "" {
		pe.Name = exceptionName(kind, name, o.policies)
	} else if errs := validation.IsDNS1123Subdomain(pe.Name); len(errs) > 0 {
		return usageError(fmt.Errorf("--name %q: %s", pe.Name, strings.Join(errs, "; ")))
	}
	known := func(p string) bool { _, ok := engine.Lookup(p); return ok }
	if problems := exemptions.ValidateException(cfg.Governance, known, pe, nil, now); len(problems) > 0 {
		return usageError(fmt.Errorf("the PolicyException would be refused:\n  %s", strings.Join(problems, "\n  ")))
	}
	if !o.apply {
		return writeExceptionYAML(cmd.OutOrStdout(), pe)
	}
	c, _, err := a.cluster(o.cluster.kubeconfig, o.cluster.context)
	if err != nil {
		return usageError(err)
	}
	if err := c.Create(ctx, pe); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return failure(fmt.Errorf("PolicyException %s/%s already exists; choose another --name or delete it first", pe.Namespace, pe.Name))
		}
		return failure(fmt.Errorf("create PolicyException %s/%s: %w", pe.Namespace, pe.Name, err))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "policyexception.%s/%s created in namespace %s: %s until approved (attest policy exempt approve %s -n %s)\n",
		v1alpha1.GroupVersion.Group, pe.Name, pe.Namespace, phaseOf(pe), pe.Name, pe.Namespace)
	return nil
}

// parseResource reads KIND/NAMESPACE/NAME.
func parseResource(s string) (kind, namespace, name string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("--resource %q: want KIND/NAMESPACE/NAME, e.g. Deployment/shop/web", s)
	}
	if errs := validation.IsDNS1123Label(parts[1]); len(errs) > 0 {
		return "", "", "", fmt.Errorf("--resource %q: namespace %q: %s", s, parts[1], strings.Join(errs, "; "))
	}
	return parts[0], parts[1], parts[2], nil
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// exceptionName derives <kind>-<name>-<policies>: lower case, other characters as '-', at most 63 characters,
// starting and ending with a letter or digit.
func exceptionName(kind, name string, policies []string) string {
	s := strings.ToLower(strings.Join(append([]string{kind, name}, policies...), "-"))
	s = notNameChars.ReplaceAllString(s, "-")
	if len(s) > validation.DNS1123LabelMaxLength {
		s = s[:validation.DNS1123LabelMaxLength]
	}
	return strings.Trim(s, "-")
}

// writeExceptionYAML prints the object as `kubectl create --dry-run=client -o yaml` would, without the empty
// status and creationTimestamp.
func writeExceptionYAML(w io.Writer, pe *v1alpha1.PolicyException) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pe)
	if err != nil {
		return err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

type approveOptions struct {
	namespace string
	comment   string
	cluster   clusterFlags
}

func newApproveCommand(a app) *cobra.Command {
	o := approveOptions{}
	cmd := &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve a PolicyException as yourself",
		Long: "Sets the annotation policy.attest.continuu.ms/approve (value: --comment) on the PolicyException with a\n" +
			"merge patch. The ATTEST webhook turns it into an approval from your authenticated identity (never from\n" +
			"text), refusing the exception's creator and anyone outside the approver groups, and removes the annotation.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runApprove(cmd, a, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace of the PolicyException (default: the kubeconfig context's)")
	f.StringVar(&o.comment, "comment", "", "comment recorded with the approval")
	o.cluster.add(f)
	return cmd
}

func runApprove(cmd *cobra.Command, a app, o approveOptions, name string) error {
	c, ns, err := a.cluster(o.cluster.kubeconfig, o.cluster.context)
	if err != nil {
		return usageError(err)
	}
	if o.namespace != "" {
		ns = o.namespace
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationApprove: o.comment}}})
	if err != nil {
		return err
	}
	pe := &v1alpha1.PolicyException{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := c.Patch(cmd.Context(), pe, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return failure(fmt.Errorf("PolicyException %s/%s not found", ns, name))
		}
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().Message != "" {
			return failure(fmt.Errorf("approve PolicyException %s/%s: %s", ns, name, status.Status().Message))
		}
		return failure(fmt.Errorf("approve PolicyException %s/%s: %w", ns, name, err))
	}
	out := cmd.OutOrStdout()
	if _, pending := pe.Annotations[v1alpha1.AnnotationApprove]; pending {
		fmt.Fprintf(out, "PolicyException %s/%s: approval requested, but no ATTEST webhook recorded it (the approve annotation is still set): check that ATTEST's webhook configurations cover PolicyExceptions\n", ns, name)
		return failure(nil)
	}
	fmt.Fprintf(out, "PolicyException %s/%s approved: %s, %d valid approvals\n", ns, name, phaseOf(pe), pe.Status.ApprovalCount)
	return nil
}

func phaseOf(pe *v1alpha1.PolicyException) string {
	if pe.Status.Phase == "" {
		return exemptions.PhasePending
	}
	return pe.Status.Phase
}
