package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/webhook"
)

const exemptionsNow = "2026-11-25T12:00:00Z"

var exemptionInputs = []string{"testdata/exemptions/annotations", "testdata/exemptions/cluster"}

// checkAs runs `attest policy check --format json` on the exemption fixtures as user and groups.
func checkAs(t *testing.T, user string, groups []string, extra ...string) (checkReport, int) {
	t.Helper()
	args := []string{"policy", "check", "--format", "json", "--now", exemptionsNow, "--config", "testdata/exemptions/policies.yaml"}
	for _, in := range exemptionInputs {
		args = append(args, "-f", in)
	}
	if user != "" {
		args = append(args, "--as", user)
	}
	for _, g := range groups {
		args = append(args, "--as-group", g)
	}
	out, errOut, code := attest(t, "", append(args, extra...)...)
	var r checkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v; stdout %q, stderr %q", err, out, errOut)
	}
	return r, code
}

// verdicts are each object's policies as DENY, EXEMPT or WARN.
func verdicts(r checkReport) map[string][]string {
	out := map[string][]string{}
	for _, res := range r.Results {
		v := "WARN"
		switch {
		case res.Denied:
			v = "DENY"
		case res.Exemption != nil:
			v = "EXEMPT"
		}
		out[res.Kind+"/"+res.Name] = append(out[res.Kind+"/"+res.Name], res.Policy+"="+v)
	}
	return out
}

func TestCheckExemptionVerdicts(t *testing.T) {
	const controller = "system:serviceaccount:kube-system:replicaset-controller"
	cases := []struct {
		name   string
		user   string
		groups []string
		want   map[string][]string
	}{
		{
			name: "break-glass member: annotations honoured, the approved exception applies to its Deployment",
			user: "alice", groups: []string{"break-glass"},
			want: map[string][]string{
				"Deployment/debug":    {"no-privileged=EXEMPT"},
				"Pod/probe":           {"no-privileged=EXEMPT", "trusted-registries=DENY"}, // exempting A never exempts B
				"Pod/yes-please":      {"no-privileged=DENY"},                              // malformed: ignored, denied
				"Pod/bad-expiry":      {"no-privileged=DENY"},
				"Pod/too-long":        {"no-privileged=DENY", "exemptions=DENY"},
				"Deployment/web":      {"no-privileged=EXEMPT"},
				"ReplicaSet/web-7d9f": {"no-privileged=DENY"}, // only controllers inherit their owner's exception
				"Pod/web-7d9f-x2k4p":  {"no-privileged=DENY"},
				"Pod/web-x":           {"no-privileged=DENY"}, // its exception is pending
			},
		},
		{
			name: "anyone else: annotations ignored",
			user: "mallory",
			want: map[string][]string{
				"Deployment/debug":    {"no-privileged=DENY"},
				"Pod/probe":           {"no-privileged=DENY", "trusted-registries=DENY"},
				"Pod/yes-please":      {"no-privileged=DENY"},
				"Pod/bad-expiry":      {"no-privileged=DENY"},
				"Pod/too-long":        {"no-privileged=DENY"},
				"Deployment/web":      {"no-privileged=EXEMPT"},
				"ReplicaSet/web-7d9f": {"no-privileged=DENY"},
				"Pod/web-7d9f-x2k4p":  {"no-privileged=DENY"},
				"Pod/web-x":           {"no-privileged=DENY"},
			},
		},
		{
			name: "the ReplicaSet controller: the Deployment's exception covers what it creates, through the inputs' owners",
			user: controller,
			want: map[string][]string{
				"Deployment/debug":    {"no-privileged=DENY"},
				"Pod/probe":           {"no-privileged=DENY", "trusted-registries=DENY"},
				"Pod/yes-please":      {"no-privileged=DENY"},
				"Pod/bad-expiry":      {"no-privileged=DENY"},
				"Pod/too-long":        {"no-privileged=DENY"},
				"Deployment/web":      {"no-privileged=EXEMPT"},
				"ReplicaSet/web-7d9f": {"no-privileged=EXEMPT"},
				"Pod/web-7d9f-x2k4p":  {"no-privileged=EXEMPT"},
				"Pod/web-x":           {"no-privileged=DENY"}, // not owned by web: still denied
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, code := checkAs(t, tc.user, tc.groups)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (denials, not input errors)", code)
			}
			got := verdicts(r)
			for obj, want := range tc.want {
				if !slices.Equal(got[obj], want) {
					t.Errorf("%s: %v, want %v", obj, got[obj], want)
				}
			}
			if len(got) != len(tc.want) || r.Exceptions != 2 || r.Objects != 9 {
				t.Errorf("objects %d, exceptions %d, verdicts %v", r.Objects, r.Exceptions, got)
			}
			for _, res := range r.Results {
				if e := res.Exemption; e != nil && (e.Source == "" || e.Name == "" || e.Approver == "" || e.Expires.IsZero()) {
					t.Errorf("incomplete exemption %+v", e)
				}
			}
		})
	}
}

func TestCheckExemptionMessages(t *testing.T) {
	r, _ := checkAs(t, "alice", []string{"break-glass"})
	msgs := map[string]string{}
	for _, res := range r.Results {
		msgs[res.Name+" "+res.Policy] = res.Message
	}
	for key, want := range map[string]string{
		"yes-please no-privileged": `metadata.annotations["policy.attest.continuu.ms/exempt"] "yes please" is neither "true" nor a comma-separated list of policy names`,
		"bad-expiry no-privileged": `"next tuesday" is not an RFC 3339 time (e.g. 2026-12-02T12:00:00Z)`,
		"too-long exemptions":      "exemption expiry 2027-03-01T00:00:00Z is beyond the maximum of 30 days from now",
		"web-x no-privileged":      "PolicyException shop/web-x is pending: 0 of 1 required approvals",
	} {
		if !strings.Contains(msgs[key], want) {
			t.Errorf("%s: %q lacks %q", key, msgs[key], want)
		}
	}
	r, _ = checkAs(t, "mallory", nil)
	for _, res := range r.Results {
		if res.Name == "debug" && !strings.Contains(res.Message, "exemption annotations are honoured only for groups break-glass, and mallory is not one of them") {
			t.Errorf("unauthorized user: %q", res.Message)
		}
	}
}

// TestCheckAsAgreesWithWebhook sends every object the CLI checks to /validate as the same user, with the same
// PolicyExceptions and owners in the webhook's lookup, and compares denials and exemptions object by object.
func TestCheckAsAgreesWithWebhook(t *testing.T) {
	ctx := context.Background()
	engine, err := compileLibrary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("testdata/exemptions/policies.yaml", engine)
	if err != nil {
		t.Fatal(err)
	}
	sources, err := manifest.Collect(exemptionInputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	exceptions, owners, err := readExceptions(sources, "default")
	if err != nil || len(exceptions) != 2 {
		t.Fatalf("exceptions %d, %v", len(exceptions), err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg), Exemptions: exemptions.NewStatic(exceptions, owners)})
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, exemptionsNow)
	// The webhook stamps the request with its clock; the CLI with --now: the same instant.
	h, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval, Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12

	for _, who := range []struct {
		user   string
		groups []string
	}{
		{"alice", []string{"break-glass"}},
		{"mallory", nil},
		{"system:serviceaccount:kube-system:replicaset-controller", nil},
	} {
		t.Run(who.user, func(t *testing.T) {
			r, _ := checkAs(t, who.user, who.groups)
			cliDenials, cliExempt := map[string][]string{}, map[string]int{}
			for _, res := range r.Results {
				key := res.Kind + "/" + res.Name
				if res.Denied {
					cliDenials[key] = append(cliDenials[key], res.Message)
				}
				if res.Exemption != nil {
					cliExempt[key]++
				}
			}
			checked := 0
			for _, src := range sources {
				objs, err := manifest.Parse(src)
				if err != nil {
					t.Fatal(err)
				}
				for _, obj := range objs {
					if isPolicyException(obj.Object) {
						continue
					}
					in := admission.ObjectInput(obj.Object, "default", now)
					resp := postReviewAs(t, client, srv.URL+"/validate", in, obj.Object, who.user, who.groups)
					key := in.Request.Kind + "/" + in.Request.Name
					var denials []string
					if !resp.Allowed {
						denials = strings.Split(resp.Result.Message, "\n")
					}
					if !slices.Equal(denials, cliDenials[key]) {
						t.Errorf("%s: webhook denies with\n%s\nCLI reports\n%s", key, strings.Join(denials, "\n"), strings.Join(cliDenials[key], "\n"))
					}
					exempt := 0
					for _, w := range resp.Warnings {
						if strings.HasPrefix(w, "exempted by ") {
							exempt++
						}
					}
					if exempt != cliExempt[key] {
						t.Errorf("%s: webhook warns of %d exempted violations, CLI reports %d (warnings %q)", key, exempt, cliExempt[key], resp.Warnings)
					}
					checked++
				}
			}
			if checked != 9 {
				t.Fatalf("checked %d objects", checked)
			}
		})
	}
}

// postReviewAs sends obj to the webhook as an AdmissionReview from user.
func postReviewAs(t *testing.T, client *http.Client, url string, in admission.Input, obj map[string]any, user string, groups []string) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":       "u-" + in.Request.Name,
			"kind":      map[string]any{"group": in.Request.Group, "version": in.Request.Version, "kind": in.Request.Kind},
			"namespace": in.Request.Namespace, "name": in.Request.Name, "operation": "CREATE",
			"userInfo": map[string]any{"username": user, "groups": groups},
			"object":   json.RawMessage(raw),
		},
	}
	body, _ := json.Marshal(review)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil {
		t.Fatal("no response")
	}
	return out.Response
}

func TestCheckPolicyFlag(t *testing.T) {
	t.Run("only the named policies run", func(t *testing.T) {
		r, code := checkAs(t, "", nil, "--policy", "trusted-registries")
		if code != 1 {
			t.Fatalf("exit %d", code)
		}
		for _, res := range r.Results {
			if res.Policy != "trusted-registries" {
				t.Errorf("result of %s", res.Policy)
			}
		}
		if len(r.Results) != 1 {
			t.Errorf("%d results, want probe's untrusted image only", len(r.Results))
		}
	})
	t.Run("a policy the config turns off runs in audit", func(t *testing.T) {
		out, errOut, code := attest(t, "", "policy", "check", "-f", "testdata/mixed", "--config", "testdata/exemptions/policies.yaml", "--policy", "resource-limits", "--policy", "no-privileged", "--format", "json")
		if code != 1 || !strings.Contains(errOut, "note: policy resource-limits is off in the configuration; checking it in audit mode") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		var r checkReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, res := range r.Results {
			seen[res.Policy] = res.Mode
		}
		if len(seen) != 2 || seen["resource-limits"] != "audit" || seen["no-privileged"] != "enforce" {
			t.Errorf("policies and modes %v", seen)
		}
	})
	t.Run("unknown policy", func(t *testing.T) {
		_, errOut, code := attest(t, "", "policy", "check", "-f", "testdata/mixed", "--policy", "no-such")
		if code != 2 || !strings.Contains(errOut, `--policy: unknown policy "no-such" (known: change-window,`) {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
	})
}

func TestCheckExceptionInputErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	text := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: gcr.io/company/a:1}]\n---\n" +
		"apiVersion: policy.attest.continuu.ms/v1alpha1\nkind: PolicyException\nmetadata: {name: broken}\nspec:\n  policies: no-privileged\n"
	if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := attest(t, "", "policy", "check", "-f", bad)
	if code != 2 || !strings.Contains(errOut, bad+":7: PolicyException broken: cannot read it") {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
}

// TestCheckFormatsWithInputErrors: an object the pipeline cannot read still yields a valid report (an error
// notification in SARIF, an error testcase in JUnit) and exit code 2.
func TestCheckFormatsWithInputErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "malformed.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := attest(t, "", "policy", "check", "-f", path, "--format", "sarif")
	if code != 2 {
		t.Fatalf("exit %d", code)
	}
	if err := validateSARIF(compileSARIFSchema(t), out); err != nil {
		t.Fatal(err)
	}
	var log sarifLog
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	inv := log.Runs[0].Invocations[0]
	if inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != 1 || !strings.Contains(inv.ToolExecutionNotifications[0].Message.Text, "expected a list of containers") {
		t.Fatalf("invocation %+v", inv)
	}
	out, _, code = attest(t, "", "policy", "check", "-f", path, "--format", "junit")
	if code != 2 || !strings.Contains(out, `<error message="cannot read the Pod: spec.containers: expected a list of containers, got a string" type="input">`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if err := checkJUnitStructure([]byte(out)); err != nil {
		t.Fatal(err)
	}
}
