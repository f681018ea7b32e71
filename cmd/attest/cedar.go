package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/continuums/attest/policies/cedar"
)

func newCedarSchemaCommand() *cobra.Command {
	var crds crdOptions
	cmd := &cobra.Command{
		Use:   "cedar-schema",
		Short: "Print the Cedar schema ATTEST validates and evaluates Cedar policies with",
		Long: "Prints, in Cedar's schema format, Cedar for Kubernetes' principals (k8s::User, k8s::ServiceAccount,\n" +
			"k8s::Node in k8s::Group) and admission actions (k8s::admission::Action::\"create|update|delete|connect\"),\n" +
			"an entity type for every built-in kind (core::v1::Pod, apps::v1::Deployment, ...) and ATTEST's context\n" +
			"(attest::Context). With --crds, or --kubeconfig/--context (the cluster's CustomResourceDefinitions, as\n" +
			"`attest serve` sees them), also an entity type for every served version of each custom kind\n" +
			"(widgets.example.com/v1 Widget: com::example::widgets::v1::Widget). `attest policy validate` checks .cedar\n" +
			"files against it.",
		Example: "  attest policy cedar-schema --crds deploy/crds/\n  attest policy cedar-schema --kubeconfig ~/.kube/config --context staging",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := crds.use(cmd.Context(), cmd.ErrOrStderr()); err != nil {
				return err
			}
			text, err := cedar.SchemaText()
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), text)
			return err
		},
	}
	crds.add(cmd.Flags(), true)
	return cmd
}

type authorizeOptions struct {
	principal, action, resource, oldResource string
	context, entities, now                   string
	groups, policies                         []string
	crds                                     crdOptions
}

func newAuthorizeCommand() *cobra.Command {
	o := authorizeOptions{}
	cmd := &cobra.Command{
		Use:   "authorize --policies FILE|DIR --principal UID --action UID --resource FILE",
		Short: "Answer one Cedar request like `cedar authorize`, with the deciding policy ids",
		Long: "Evaluates .cedar policies on one request: the principal and action as Cedar entity UIDs, the resource a\n" +
			"Kubernetes object (YAML or JSON) converted as the webhook converts it, the context ATTEST builds (request\n" +
			"time from --now, namespace, approval annotation) with --context's JSON object laid over it. For a\n" +
			"k8s::admission::Action the answer is admission's (what no forbid matches is allowed); for other actions,\n" +
			"Cedar's (a permit must match). Prints ALLOW or DENY and the deciding policies; exits 0 on ALLOW, 1 on DENY.",
		Example: "  attest policy authorize --policies examples/cedar --principal 'k8s::User::\"dana\"' --group developers \\\n" +
			"    --action 'k8s::admission::Action::\"create\"' --resource examples/cedar/deployment.yaml \\\n" +
			"    --context '{\"namespace\": {\"name\": \"prod\", \"labels\": [], \"production\": true}}'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAuthorize(cmd, o) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.policies, "policies", nil, ".cedar file or directory (repeatable)")
	f.StringVar(&o.principal, "principal", "", `principal entity UID, e.g. k8s::User::"alice"`)
	f.StringArrayVar(&o.groups, "group", nil, "a k8s::Group the principal is in (repeatable)")
	f.StringVar(&o.action, "action", "", `action entity UID, e.g. k8s::admission::Action::"create"`)
	f.StringVar(&o.resource, "resource", "", "the resource: a Kubernetes object file (YAML or JSON)")
	f.StringVar(&o.oldResource, "old-resource", "", "the old object of an update (resource.oldObject)")
	f.StringVar(&o.context, "context", "", "JSON object laid over ATTEST's context (Cedar JSON values)")
	f.StringVar(&o.entities, "entities", "", "file of further entities (Cedar JSON entity format)")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now)")
	o.crds.add(f, false) // --context is Cedar's context here
	return cmd
}

func runAuthorize(cmd *cobra.Command, o authorizeOptions) error {
	if len(o.policies) == 0 || o.principal == "" || o.action == "" || o.resource == "" {
		return usageError(fmt.Errorf("--policies, --principal, --action and --resource are required"))
	}
	now, err := parseNow(o.now)
	if err != nil {
		return err
	}
	if err := o.crds.use(cmd.Context(), cmd.ErrOrStderr()); err != nil {
		return err
	}
	srcs, err := readCedarSources(o.policies)
	if err != nil {
		return usageError(err)
	}
	if len(srcs) == 0 {
		return usageError(fmt.Errorf("no .cedar files in %s", strings.Join(o.policies, ", ")))
	}
	set, err := cedar.Parse(srcs...)
	if err != nil {
		return failure(err)
	}
	r := cedar.AuthorizeRequest{Principal: o.principal, Action: o.action, Groups: o.groups, Context: []byte(o.context), Now: now}
	if r.Object, err = readObject(o.resource); err != nil {
		return usageError(fmt.Errorf("--resource: %w", err))
	}
	if o.oldResource != "" {
		if r.OldObject, err = readObject(o.oldResource); err != nil {
			return usageError(fmt.Errorf("--old-resource: %w", err))
		}
	}
	if o.entities != "" {
		if r.Entities, err = os.ReadFile(o.entities); err != nil {
			return usageError(fmt.Errorf("--entities: %w", err))
		}
	}
	d, err := set.Authorize(r, cedar.Options{})
	if err != nil {
		return usageError(err)
	}
	w := cmd.OutOrStdout()
	verdict := "ALLOW"
	if !d.Allowed {
		verdict = "DENY"
	}
	fmt.Fprintln(w, verdict)
	if len(d.Reasons) > 0 {
		fmt.Fprintln(w, "\nnote: this decision was due to the following policies:")
		for _, id := range d.Reasons {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
	for _, f := range d.Findings {
		fmt.Fprintf(w, "  message: %s\n", f.Message)
	}
	if len(d.Errors) > 0 {
		fmt.Fprintln(w, "\nnote: these policies could not be evaluated:")
		for _, e := range d.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if !d.Allowed {
		return &exitError{code: 1}
	}
	return nil
}

func readObject(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := sigsyaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// readCedarSources reads .cedar files given or found (recursively) in directories, named by their paths.
func readCedarSources(paths []string) ([]cedar.Source, error) {
	var out []cedar.Source
	for _, p := range paths {
		files, err := findFiles(p, func(name string) bool { return strings.HasSuffix(name, ".cedar") })
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, cedar.Source{Name: f, Text: string(text)})
		}
	}
	return out, nil
}

// findFiles is p itself when it is a file that match accepts, or the files under p that it accepts, sorted.
func findFiles(p string, match func(string) bool) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		if match(p) {
			return []string{p}, nil
		}
		return nil, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && match(path) {
			out = append(out, path)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

var cedarPosition = regexp.MustCompile(`(\S+\.cedar):(\d+):(\d+):?`)

// validateCedar parses and validates each .cedar file of paths (each alone, as the config loads them) against
// ATTEST's schema: the valid ones by name, the problems at file:line.
func validateCedar(paths []string) (valid []string, problems []problem, found bool, err error) {
	srcs, err := readCedarSources(paths)
	if err != nil {
		return nil, nil, false, err
	}
	for _, src := range srcs {
		set, err := cedar.Parse(src)
		if err == nil {
			err = set.Validate()
		}
		if err == nil {
			valid = append(valid, strings.TrimSuffix(filepath.Base(src.Name), ".cedar"))
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			line = strings.TrimPrefix(line, "invalid Cedar policy: ")
			p := problem{File: src.Name, Message: line}
			if m := cedarPosition.FindStringSubmatchIndex(line); m != nil {
				p.Line, _ = strconv.Atoi(line[m[4]:m[5]])
				if m[0] == 0 { // "file:line:col: message": the position is the problem's
					p.Message = strings.TrimSpace(line[m[1]:])
				}
			}
			problems = append(problems, p)
		}
	}
	return valid, problems, len(srcs) > 0, nil
}

// cedarTestFiles are the Cedar test files (*_test.yaml naming .cedar policies) of paths.
func cedarTestFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		files, err := findFiles(p, func(name string) bool {
			return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
		})
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			var head struct {
				Policies []string `json:"policies"`
			}
			if sigsyaml.Unmarshal(raw, &head) == nil && len(head.Policies) > 0 && strings.HasSuffix(head.Policies[0], ".cedar") {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// runCedarTests runs the Cedar test files as test results of `attest policy test`.
func runCedarTests(files []string) ([]testResult, error) {
	var out []testResult
	for _, f := range files {
		results, err := cedar.RunTestFile(f, cedar.Options{})
		if err != nil {
			return nil, err
		}
		for _, r := range results {
			out = append(out, testResult{Test: "cedar." + r.Name, File: r.File, Line: r.Line, Pass: r.Pass, Error: r.Error})
		}
	}
	return out, nil
}

// regoPaths are the paths but the Cedar files named directly (the Rego readers refuse them).
func regoPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, ".cedar") || strings.HasSuffix(p, "_test.yaml") || strings.HasSuffix(p, "_test.yml") {
			continue
		}
		out = append(out, p)
	}
	return out
}
