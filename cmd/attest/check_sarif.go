package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/continuums/attest/policies"
)

// SARIF 2.1.0 (OASIS), the subset `attest policy check --format sarif` writes: one rule per policy that ran,
// one result per violation, located at the object's file and line.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	// exemptionsRule is the policy name admission gives denials about exemptions themselves.
	exemptionsRule = "exemptions"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	FullName       string      `json:"fullName"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      *sarifText     `json:"fullDescription,omitempty"`
	Help                 *sarifText     `json:"help,omitempty"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties,omitempty"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          map[string]any     `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

// securitySeverity is the CVSS-like score code scanning tools (GitHub) rank alerts by.
var securitySeverity = map[policies.Severity]string{
	policies.SeverityCritical: "9.5", policies.SeverityHigh: "8.0", policies.SeverityMedium: "5.5", policies.SeverityLow: "3.0",
}

func writeSARIF(w io.Writer, run *checkRun) error {
	rules, index := sarifRules(run)
	results := make([]sarifResult, 0, len(run.report.Results))
	for _, r := range run.report.Results {
		level := "warning"
		if r.Denied {
			level = "error"
		}
		obj := r.Kind + "/" + r.Name
		if r.Namespace != "" {
			obj = r.Namespace + "/" + obj
		}
		loc := sarifLocation{LogicalLocations: []sarifLogical{{Name: r.Name, FullyQualifiedName: obj, Kind: "resource"}}}
		if r.Path != "" {
			loc.LogicalLocations = append(loc.LogicalLocations, sarifLogical{Name: r.Path, FullyQualifiedName: obj + "/" + r.Path, Kind: "member"})
		}
		if r.File != "<stdin>" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: fileURI(r.File)}, Region: sarifRegion{StartLine: max(r.Line, 1)}}
		}
		sum := sha256.Sum256([]byte(strings.Join([]string{obj, r.Policy, r.Path, r.Container}, "\x00")))
		res := sarifResult{
			RuleID: r.Policy, RuleIndex: index[r.Policy], Level: level, Message: sarifText{Text: r.Message},
			Locations:           []sarifLocation{loc},
			PartialFingerprints: map[string]string{"attestViolation/v1": hex.EncodeToString(sum[:16])},
			Properties:          map[string]any{"mode": r.Mode, "severity": r.Severity},
		}
		if e := r.Exemption; e != nil {
			res.Suppressions = []sarifSuppression{{
				Kind: "external", Status: "accepted",
				Justification: fmt.Sprintf("exempted by %s %s, approved by %s, expires %s", e.Source, e.Name, e.Approver, e.Expires.UTC().Format(time.RFC3339)),
			}}
		}
		results = append(results, res)
	}
	inv := sarifInvocation{ExecutionSuccessful: len(run.inputErr) == 0}
	for _, msg := range run.inputErr {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{Level: "error", Message: sarifText{Text: msg}})
	}
	log := sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{{
		Tool: sarifTool{Driver: sarifDriver{
			Name: "attest", FullName: "ATTEST admission policy check", InformationURI: "https://github.com/continuums/attest", Rules: rules,
		}},
		Invocations: []sarifInvocation{inv},
		Results:     results,
	}}}
	return writeJSON(w, log)
}

// sarifRules describes every policy that ran (configured mode not off), in name order, and the exemptions
// pseudo-policy when a result carries it; index maps a rule ID to its position.
func sarifRules(run *checkRun) ([]sarifRule, map[string]int) {
	index := map[string]int{}
	var rules []sarifRule
	for _, p := range run.engine.Policies() {
		mode := run.cfg.Policies[p.Name].Mode
		if mode == policies.ModeOff || mode == "" {
			continue
		}
		level := "warning"
		if mode == policies.ModeEnforce && run.mode != policies.ModeAudit {
			level = "error"
		}
		rule := sarifRule{
			ID: p.Name, Name: ruleName(p.Name), ShortDescription: sarifText{Text: p.Title},
			DefaultConfiguration: sarifConfig{Level: level},
			Properties: map[string]any{
				"severity": string(p.Severity), "security-severity": securitySeverity[p.Severity],
				"tags": complianceTags(p.Compliance),
			},
		}
		if p.Description != "" {
			rule.FullDescription = &sarifText{Text: p.Description}
		}
		if help := p.Remediation; help != "" {
			rule.Help = &sarifText{Text: "To fix: " + help + ".", Markdown: "**To fix:** " + help + "."}
		}
		index[p.Name] = len(rules)
		rules = append(rules, rule)
	}
	for _, r := range run.report.Results {
		if _, ok := index[r.Policy]; ok || r.Policy != exemptionsRule {
			continue
		}
		index[r.Policy] = len(rules)
		rules = append(rules, sarifRule{
			ID: exemptionsRule, Name: ruleName(exemptionsRule),
			ShortDescription:     sarifText{Text: "Exemptions within the governance limits"},
			FullDescription:      &sarifText{Text: "An exemption (annotation or PolicyException) asks for more than the governance allows, e.g. an expiry beyond the maximum duration."},
			Help:                 &sarifText{Text: "To fix: shorten the exemption's expiry to within the maximum, or remove it."},
			DefaultConfiguration: sarifConfig{Level: "error"},
			Properties:           map[string]any{"severity": string(policies.SeverityHigh), "security-severity": securitySeverity[policies.SeverityHigh], "tags": []string{"attest"}},
		})
	}
	return rules, index
}

// ruleName is the SARIF rule name: the policy name in camel case (no-privileged → NoPrivileged).
func ruleName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// complianceTags are "attest" plus "<framework>:<control>" for every control the policy serves, sorted.
func complianceTags(c map[string][]string) []string {
	tags := []string{"attest"}
	fws := make([]string, 0, len(c))
	for fw := range c {
		fws = append(fws, fw)
	}
	slices.Sort(fws)
	for _, fw := range fws {
		for _, id := range c[fw] {
			tags = append(tags, fw+":"+id)
		}
	}
	return tags
}

// fileURI is a SARIF artifact URI: a relative reference for relative paths (resolved against the checkout by
// code scanning), a file: URI for absolute ones.
func fileURI(path string) string {
	slash := filepath.ToSlash(path)
	if filepath.IsAbs(path) {
		return (&url.URL{Scheme: "file", Path: slash}).String()
	}
	return (&url.URL{Path: slash}).String()
}
