//go:build !lean

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/audit"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
)

// clusterFile is what a result read from the cluster names as its file.
const clusterFile = "cluster"

// checkCluster is `attest policy check --cluster`: the background audit's listing (page by page, Pods folded into
// their top owner) through the current kubeconfig, each object evaluated as a background CREATE by the same
// pipeline, written in the check's formats. PolicyExceptions come from the cluster.
func checkCluster(cmd *cobra.Command, o checkOptions, engine *policies.Engine, cfg *config.Config, mode policies.Mode, now time.Time, framework frameworkReport) error {
	ctx := cmd.Context()
	rc, contextNS, err := kubeconfigRest(o.clusterFlags)
	if err != nil {
		return usageError(err)
	}
	ns := contextNS
	switch {
	case o.allNamespaces && cmd.Flags().Changed("namespace"):
		return usageError(fmt.Errorf("-n and -A exclude each other"))
	case o.allNamespaces:
		ns = ""
	case cmd.Flags().Changed("namespace"):
		ns = o.namespace
	}
	rc.QPS, rc.Burst, rc.UserAgent = auditQPS, auditBurst, "attest-cli"
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return failure(fmt.Errorf("cluster client: %w", err))
	}
	c, err := newClusterClient(rc)
	if err != nil {
		return failure(err)
	}
	exceptions, err := clusterExceptions(ctx, c, ns, cmd.ErrOrStderr())
	if err != nil {
		return failure(err)
	}
	verifier, keychain, err := checkVerification(cfg, o.offline, 30*time.Second, nil)
	if err != nil {
		return err
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg), Mode: mode, Verifier: verifier, Keychain: keychain,
		Exemptions: exemptions.NewStatic(exceptions, nil)})
	if err != nil {
		return err
	}
	run := checkRun{report: checkReport{Results: []checkResult{}}, engine: engine, cfg: cfg, opts: o, mode: mode, now: now}
	run.report.Exceptions = len(exceptions)
	err = emit(cmd, o.output, func(w io.Writer) error {
		sink, err := newCheckSink(&run, w)
		if err != nil {
			return err
		}
		defer sink.close()
		src := audit.NewClusterSource(dyn, 0)
		src.Only = ns
		a, err := audit.New(audit.Options{Source: src, Evaluator: timedEvaluator{eval, now}, Config: cfgFunc(cfg), Engine: engine,
			Sink: discardReports{}, Observer: &checkObserver{sink: sink}, Namespace: ns, SkipNamespaces: audit.DefaultSkipNamespaces})
		if err != nil {
			return err
		}
		if _, err := a.Run(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("check interrupted after %d objects: %w", run.report.Objects, ctx.Err())
			}
			return failure(err)
		}
		return finishCheck(w, &run, sink, framework)
	})
	return checkExit(&run, err)
}

// timedEvaluator evaluates at --now, as a check of files does.
type timedEvaluator struct {
	eval *admission.Evaluator
	now  time.Time
}

func (t timedEvaluator) Evaluate(ctx context.Context, in admission.Input) admission.Decision {
	in.Request.TimestampNS = t.now.UnixNano()
	return t.eval.Evaluate(ctx, in)
}

// checkObserver turns each audited object's decision into the check's results.
type checkObserver struct{ sink *checkSink }

func (c *checkObserver) Begin()                                      {}
func (c *checkObserver) Namespace(string)                            {}
func (c *checkObserver) NamespaceDone(context.Context, string) error { return nil }

func (c *checkObserver) Object(ref audit.Ref, d *admission.Decision) {
	var dr docReport
	addObjectReport(&dr, clusterFile, 0, admission.Request{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}, d)
	c.sink.add(dr)
}

// discardReports drops the PolicyReports: the check writes its own formats and nothing to the cluster.
type discardReports struct{}

func (discardReports) Write(context.Context, *audit.Report) error { return nil }
func (discardReports) Finish(context.Context, string, int) error  { return nil }

// clusterExceptions reads the PolicyExceptions in scope; a cluster without their CRD has none.
func clusterExceptions(ctx context.Context, c client.Client, ns string, stderr io.Writer) ([]v1alpha1.PolicyException, error) {
	var opts []client.ListOption
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	var list v1alpha1.PolicyExceptionList
	if err := c.List(ctx, &list, opts...); err != nil {
		if meta.IsNoMatchError(err) {
			fmt.Fprintln(stderr, "note: the cluster has no PolicyException CRD: no exception applies")
			return nil, nil
		}
		return nil, fmt.Errorf("list PolicyExceptions: %w", err)
	}
	return list.Items, nil
}

// kubeconfigRest loads the kubeconfig as kubectl does (see kubeconfigCluster) and returns its REST config and the
// context's namespace.
func kubeconfigRest(f clusterFlags) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, ns, nil
}
