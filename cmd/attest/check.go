package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
)

type checkOptions struct {
	files     []string
	config    string
	format    string
	output    string
	now       string
	mode      string
	namespace string
	policies  []string
	as        string
	asGroups  []string
	framework string
	offline   bool
	inventory []string
	// expandWorkloads: Gatekeeper constraints judge every workload kind as the Pod it creates.
	expandWorkloads bool
	// cluster checks the objects of the live cluster instead of files (audit_check.go).
	cluster       bool
	allNamespaces bool
	clusterFlags  clusterFlags
	crds          crdOptions
	// strict fails the check on audit findings (warnings) too, not only on denials.
	strict bool
}

// checkResult is one line of `attest policy check --format json`.
type checkResult struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Policy    string `json:"policy"`
	Mode      string `json:"mode"`
	Severity  string `json:"severity"`
	Path      string `json:"path,omitempty"`
	Container string `json:"container,omitempty"`
	// Message is the line the webhook would send for this violation.
	Message string `json:"message"`
	Denied  bool   `json:"denied"`
	// Exemption is what waived the violation (it is then not denied): CI shows what is exempted and until when.
	Exemption *exemptionRef `json:"exemption,omitempty"`
}

// exemptionRef names the exemption that waived a violation.
type exemptionRef struct {
	// Source is "annotation" or "PolicyException".
	Source string `json:"source"`
	// Name is the annotation key, or namespace/name of the PolicyException.
	Name     string    `json:"name"`
	Approver string    `json:"approver"`
	Expires  time.Time `json:"expires"`
}

type checkReport struct {
	checkCounts
	Results []checkResult `json:"results"`
}

// checkCounts is the summary of a check, written before its results.
type checkCounts struct {
	// Violations counts the violations of enforced policies: what `kubectl apply` would refuse.
	Violations int `json:"violations"`
	// Exempted counts the violations an exemption waived.
	Exempted int `json:"exempted,omitempty"`
	Objects  int `json:"objects"`
	// Exceptions counts the PolicyExceptions read from the inputs and applied to the other objects.
	Exceptions int `json:"exceptions,omitempty"`
	// CedarPolicies counts the Cedar Policy resources read from the inputs and applied to the other objects.
	CedarPolicies int `json:"cedarPolicies,omitempty"`
	// warnings counts the results neither denied nor exempted (the text summary's figure).
	warnings int
}

// checkRun is everything a check found, for the formats that need more than the results (SARIF, JUnit).
type checkRun struct {
	report   checkReport
	objects  []objectRecord
	engine   *policies.Engine
	cfg      *config.Config
	opts     checkOptions
	mode     policies.Mode
	now      time.Time
	inputErr []string
}

// objectRecord is one evaluated object and the policies that ran on it.
type objectRecord struct {
	File, Kind, Namespace, Name string
	Line                        int
	Policies                    []policyRun
	// Results are the indexes of this object's results in the report.
	Results []int
	// InputErr says why the pipeline could not read the object (it was then not evaluated).
	InputErr string
}

type policyRun struct {
	Policy   string
	Duration time.Duration
}

func newCheckCommand() *cobra.Command {
	o := checkOptions{}
	cmd := &cobra.Command{
		Use:   "check -f PATH...",
		Short: "Evaluate manifests with the webhook's decision code, offline",
		Long: "Reads manifests (files, directories recursively, or - for stdin), evaluates each object as a CREATE\n" +
			"through the same admission pipeline the webhook runs, and exits 0 when nothing would be denied,\n" +
			"1 when something would be, 2 on usage or input errors.\n\n" +
			"PolicyException documents among the inputs are not checked: they apply to the other objects as they would\n" +
			"in the cluster (approvals as recorded in their status), and the inputs' workloads serve as the owners\n" +
			"that an exception for a Deployment or CronJob reaches through. --as and --as-group name the requester, so\n" +
			"annotation exemptions are judged as for that user (and Cedar policies see them as the principal).\n\n" +
			"Gatekeeper ConstraintTemplate, Constraint and ExpansionTemplate documents among the inputs are not checked\n" +
			"either: as in `gator test`, each constraint becomes a policy named <Kind>/<name> (deny enforces, warn and\n" +
			"dryrun audit), ExpansionTemplates make workloads judged as the Pods they create, and data.inventory holds\n" +
			"the other inputs and the --inventory objects.\n\n" +
			"Cedar policies among the inputs apply to the other objects: ATTEST Policies with spec.cedar, and Cedar for\n" +
			"Kubernetes' cedar.k8s.aws/v1alpha1 Policies (spec.content; validated when spec.validation.enforced).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCheck(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	f.StringVar(&o.config, "config", "", "policies.yaml (default: .attest/policies.yaml and .attest/governance.yaml here or above, over ~/.config/attest/policies.yaml; none: every policy as the library ships it)")
	f.StringVar(&o.format, "format", "text", "output format: text, json, sarif (SARIF 2.1.0) or junit (JUnit XML)")
	f.StringVarP(&o.output, "output", "o", "", "write the report to FILE instead of stdout")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now), for reproducible time-dependent results")
	f.StringVar(&o.mode, "mode", "", "audit: downgrade every enforced policy to audit")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	f.StringArrayVar(&o.policies, "policy", nil, "check only this policy (repeatable); the others are off")
	f.StringVar(&o.as, "as", "", "username of the requester, as kubectl --as: annotation exemptions are judged for this user")
	f.StringArrayVar(&o.asGroups, "as-group", nil, "group of the requester, as kubectl --as-group (repeatable)")
	f.BoolVar(&o.offline, "offline", false, "contact no registry: images a trust policy covers are reported as not verified (require-attestation denies them)")
	f.BoolVar(&o.expandWorkloads, "expand-workloads", false, "Gatekeeper constraints judge Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and ReplicationControllers as the Pods they create, as ATTEST's policies do (an ExpansionTemplate among the inputs takes the place of ATTEST's for its kind)")
	f.StringSliceVar(&o.inventory, "inventory", nil, "objects for Gatekeeper templates' data.inventory, not checked themselves: file, directory or - (repeatable)")
	f.StringVar(&o.framework, "framework", "", "report the results grouped by this compliance framework's controls (soc2, gdpr, hipaa; text or json)")
	f.BoolVar(&o.cluster, "cluster", false, "check the objects in the cluster of the current kubeconfig context instead of files, as the background audit does (-n NS: one namespace, default the context's; -A: all); PolicyExceptions are read from the cluster")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "with --cluster: check every namespace")
	f.BoolVar(&o.strict, "strict", false, "exit 1 on audit findings (warnings) too, not only on what would be denied")
	o.clusterFlags.add(f)
	o.crds.add(f, false)
	return cmd
}

func runCheck(cmd *cobra.Command, o checkOptions) error {
	switch {
	case o.cluster && len(o.files) > 0:
		return usageError(fmt.Errorf("--cluster checks the cluster's objects: pass it without -f"))
	case !o.cluster && o.allNamespaces:
		return usageError(fmt.Errorf("-A goes with --cluster"))
	case len(o.files) == 0 && !o.cluster:
		return usageError(fmt.Errorf("no input: pass -f FILE, -f DIR or -f -, or --cluster"))
	case o.cluster:
		if err := clusterCheckHere(); err != nil { // the lean build has no cluster client: attest-full checks
			return err
		}
	}
	if err := checkFormat(o.format, "text", "json", "sarif", "junit"); err != nil {
		return err
	}
	now, err := parseNow(o.now)
	if err != nil {
		return err
	}
	mode, err := parseGlobalMode(o.mode)
	if err != nil {
		return usageError(err)
	}
	tuneGC(batchGCPercent, noMemoryLimit)
	ctx := cmd.Context()
	if o.cluster { // the cluster's custom kinds, as attest serve's schema has them
		o.crds.fromCluster(o.clusterFlags)
	}
	if err := o.crds.use(ctx, cmd.ErrOrStderr()); err != nil { // before the configuration's Cedar policies are validated
		return err
	}
	engine, err := compileLibrary(ctx)
	if err != nil {
		return err
	}
	sources, cleanup, err := checkSources(cmd, o.files)
	if err != nil {
		return err
	}
	defer cleanup()
	if engine, err = withGatekeeperInputs(ctx, cmd, engine, o, sources); err != nil {
		return usageError(err)
	}
	cfg, err := loadConfig(ctx, o.config, engine)
	if err != nil {
		return usageError(err)
	}
	// Decided before anything is printed: the lean build hands a check that needs a registry to attest-full.
	verifier, keychain, err := checkVerification(cfg, o.offline, 30*time.Second, sources)
	if err != nil {
		return err
	}
	if o.config == "" {
		reportConfigFiles(ctx, cmd.ErrOrStderr(), cfg)
	}
	if cfg.Engine != nil {
		engine = cfg.Engine // the library with the configuration's custom_policies
	}
	cfg, engine, cedarInputs, err := withCedarInputs(ctx, cfg, engine, sources)
	if err != nil {
		return usageError(err)
	}
	if len(o.policies) > 0 {
		if cfg, err = onlyPolicies(cfg, engine, o.policies, cmd.ErrOrStderr()); err != nil {
			return usageError(err)
		}
	}
	var framework frameworkReport
	if o.framework != "" {
		if o.format != "text" && o.format != "json" {
			return usageError(fmt.Errorf("--framework reports as text or json, not %s", o.format))
		}
		if framework, err = frameworkOf(&checkRun{engine: engine, cfg: cfg}, o.framework); err != nil {
			return usageError(err)
		}
	}
	if o.cluster {
		return checkCluster(cmd, o, engine, cfg, mode, now, framework)
	}
	exceptions, owners, err := readExceptions(sources, o.namespace)
	if err != nil {
		return usageError(err)
	}
	opts := admission.Options{Engine: engine, Config: cfgFunc(cfg), Mode: mode, Verifier: verifier, Keychain: keychain}
	if len(exceptions) > 0 {
		opts.Exemptions = exemptions.NewStatic(exceptions, owners)
	}
	// The memo pays off in the webhook, where one change brings the same pod template 3-13 times; a manifest
	// stream's objects are distinct, so it would hash every object for hits that seldom come.
	engine.SetMemo(false)
	eval, err := admission.New(opts)
	if err != nil {
		return err
	}
	req := requester{user: o.as, groups: o.asGroups}
	run := checkRun{report: checkReport{Results: []checkResult{}}, engine: engine, cfg: cfg, opts: o, mode: mode, now: now}
	run.report.Exceptions = len(exceptions)
	run.report.CedarPolicies = cedarInputs
	// Documents are read, parsed and evaluated one at a time on every core and only their findings are kept
	// (text and json write them as they come), so memory stays flat however many objects a stream holds.
	err = emit(cmd, o.output, func(w io.Writer) error {
		sink, err := newCheckSink(&run, w)
		if err != nil {
			return err
		}
		defer sink.close()
		manifest.Walk(ctx, sources, runtime.GOMAXPROCS(0), func(doc manifest.Document, err error) docReport {
			if err != nil {
				return docReport{inputErrs: []string{err.Error()}}
			}
			return checkDocument(ctx, eval, doc, o.namespace, now, req)
		}, sink.add)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("check interrupted after %d objects: %w", run.report.Objects, err)
		}
		return finishCheck(w, &run, sink, framework)
	})
	if err := checkExit(&run, err); err != nil {
		return err
	}
	if o.strict && run.report.warnings > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// finishCheck writes what follows the results: the grouped report, the JSON head and results, SARIF, JUnit or the
// text summary.
func finishCheck(w io.Writer, run *checkRun, sink *checkSink, framework frameworkReport) error {
	if err := sink.err(); err != nil {
		return err
	}
	o := run.opts
	if o.framework != "" {
		grouped := byControl(run, framework)
		if o.format == "json" {
			return writeJSON(w, grouped)
		}
		writeFrameworkCheckText(w, grouped)
		return nil
	}
	switch o.format {
	case "json":
		return sink.finishJSON()
	case "sarif":
		return writeSARIF(w, run)
	case "junit":
		return writeJUnit(w, run)
	}
	writeTextSummary(w, run.report.checkCounts)
	return nil
}

// checkExit is the exit of a check that wrote its report (err: it could not).
func checkExit(run *checkRun, err error) error {
	if err != nil {
		return err
	}
	if len(run.inputErr) > 0 {
		return usageError(fmt.Errorf("some objects could not be read:\n%s", strings.Join(run.inputErr, "\n")))
	}
	if run.report.Violations > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// checkSources collects the inputs; PolicyExceptions and Gatekeeper documents are read before the objects they
// apply to, so stdin is read twice (from a temporary copy).
func checkSources(cmd *cobra.Command, files []string) ([]manifest.Source, func(), error) {
	sources, err := manifest.Collect(files, cmd.InOrStdin())
	if err != nil {
		return nil, nil, usageError(err)
	}
	sources, cleanup, err := manifest.Rereadable(sources, "")
	if err != nil {
		return nil, nil, usageError(err)
	}
	return sources, cleanup, nil
}

// onlyPolicies turns every policy but the named ones off. A named policy that the configuration turns off is
// checked in audit mode: asking for it by name means wanting to see its findings, not to deny with it.
func onlyPolicies(cfg *config.Config, engine *policies.Engine, names []string, stderr io.Writer) (*config.Config, error) {
	for _, n := range names {
		if _, ok := engine.Lookup(n); !ok {
			known := make([]string, 0, len(engine.Policies()))
			for _, p := range engine.Policies() {
				known = append(known, p.Name)
			}
			return nil, fmt.Errorf("--policy: unknown policy %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	out := *cfg
	out.Policies = make(map[string]policies.Settings, len(cfg.Policies))
	for name, s := range cfg.Policies {
		switch {
		case !slices.Contains(names, name):
			s.Mode = policies.ModeOff
		case s.Mode == policies.ModeOff || s.Mode == "":
			fmt.Fprintf(stderr, "note: policy %s is off in the configuration; checking it in audit mode\n", name)
			s.Mode = policies.ModeAudit
		}
		out.Policies[name] = s
	}
	return &out, nil
}

// writeResultLine is one result as text: `file:line: DENY|WARN|EXEMPT Kind ns/name: message (exemption)`.
func writeResultLine(w io.Writer, indent string, res checkResult) {
	verdict := "DENY"
	switch {
	case res.Exemption != nil:
		verdict = "EXEMPT"
	case !res.Denied:
		verdict = "WARN"
	}
	obj := res.Kind + " " + objectName(res.Namespace, res.Name)
	where := fmt.Sprintf("%s:%d", res.File, res.Line)
	if res.Line == 0 { // an object read from the cluster (--cluster) has no line
		where = res.File
	}
	fmt.Fprintf(w, "%s%s: %s %s: %s", indent, where, verdict, obj, res.Message)
	if e := res.Exemption; e != nil {
		fmt.Fprintf(w, " (exempted by %s %s, approved by %s, expires %s)", e.Source, e.Name, e.Approver, e.Expires.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
}

// writeTextSummary is the last line of the text report.
func writeTextSummary(w io.Writer, r checkCounts) {
	fmt.Fprintf(w, "%d objects checked, %d violations would be denied, %d warnings", r.Objects, r.Violations, r.warnings)
	if r.Exempted > 0 {
		fmt.Fprintf(w, ", %d exempted", r.Exempted)
	}
	if r.Exceptions > 0 {
		fmt.Fprintf(w, " (%d PolicyExceptions applied from the inputs)", r.Exceptions)
	}
	if r.CedarPolicies > 0 {
		fmt.Fprintf(w, " (%d Cedar policies applied from the inputs)", r.CedarPolicies)
	}
	fmt.Fprintln(w)
}

// requester is who the offline request comes from (--as, --as-group).
type requester struct {
	user   string
	groups []string
}

// docReport is what checking one document found.
type docReport struct {
	objects   []objectRecord
	results   []checkResult
	inputErrs []string // the document, or objects in it, that could not be read
}

// checkDocument evaluates every object of one document as a CREATE by the requester; PolicyExceptions are not
// objects to check (they were read beforehand and apply to the others). A document that cannot be parsed is
// reported and the others are still checked.
func checkDocument(ctx context.Context, eval *admission.Evaluator, doc manifest.Document, namespace string, now time.Time, who requester) docReport {
	var dr docReport
	objects, err := doc.Objects()
	if err != nil {
		dr.inputErrs = append(dr.inputErrs, err.Error())
		return dr
	}
	for _, obj := range objects {
		if isPolicyException(obj.Object) || isGatekeeperDocument(obj.Object) || isCedarInput(obj.Object) {
			continue
		}
		if isAdmissionReview(obj.Object) { // judged as the request it carries, as gator does
			in, err := reviewInput(obj.Object, now, who)
			if err != nil {
				dr.inputErrs = append(dr.inputErrs, fmt.Sprintf("%s:%d: %v", obj.File, obj.Line, err))
				continue
			}
			d := eval.Evaluate(ctx, in)
			addObjectReport(&dr, obj.File, obj.Line, in.Request, &d)
			continue
		}
		in := admission.ObjectInput(obj.Object, namespace, now)
		in.Request.Username, in.Request.Groups = who.user, who.groups
		d := eval.Evaluate(ctx, in)
		addObjectReport(&dr, obj.File, obj.Line, in.Request, &d)
	}
	return dr
}

// addObjectReport adds one evaluated object and its results to dr.
func addObjectReport(dr *docReport, file string, line int, req admission.Request, d *admission.Decision) {
	rec := objectRecord{File: file, Line: line, Kind: req.Kind, Namespace: req.Namespace, Name: req.Name}
	if d.Code == 400 || d.Code == 500 {
		dr.inputErrs = append(dr.inputErrs, fmt.Sprintf("%s:%d: %s %s: %s", file, line, req.Kind, req.Name, d.Message))
		rec.InputErr = d.Message
		dr.objects = append(dr.objects, rec)
		return
	}
	for _, r := range d.Results {
		rec.Policies = append(rec.Policies, policyRun{Policy: r.Policy, Duration: r.Duration})
	}
	for _, v := range d.Violations {
		rec.Results = append(rec.Results, len(dr.results))
		res := checkResult{
			File: file, Line: line, Kind: req.Kind, Namespace: req.Namespace, Name: req.Name,
			Policy: v.Policy, Mode: string(v.Mode), Severity: string(v.Severity), Path: v.Path, Container: v.Container,
			Message: v.String(), Denied: v.Denied,
		}
		if e := v.Exemption; e != nil {
			res.Exemption = &exemptionRef{Source: e.Source, Name: e.Name, Approver: e.Approver, Expires: e.Expires}
		}
		dr.results = append(dr.results, res)
	}
	dr.objects = append(dr.objects, rec)
}

// newScanCommand is the documents' `attest policy scan`: `policy check` whose report is SARIF unless --format
// says otherwise (`scan -f . --output results.sarif` for code scanning).
func newScanCommand() *cobra.Command {
	cmd := newCheckCommand()
	cmd.Use = "scan -f PATH... [--format sarif] [--output F]"
	cmd.Short = "policy check with a SARIF report by default (for code scanning)"
	f := cmd.Flags().Lookup("format")
	_ = f.Value.Set("sarif") // a value check accepts
	f.DefValue = "sarif"
	return cmd
}

// objectName is NAMESPACE/NAME, or NAME for a cluster-scoped object.
func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
