package gatekeeper

import (
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// A compiler's position inside a template's sources: Rego names the entry point "template" and the libraries
// libs["lib_N"]; Gatekeeper's CEL driver names the validation ("validation[N]") or says "variable NAME" and gives
// the expression's line as <input>:L:C.
var (
	regoPosition  = regexp.MustCompile(`(template|libs\["lib_([0-9]+)"\]):([0-9]+):`)
	celValidation = regexp.MustCompile(`validation\[([0-9]+)\]: .*<input>:([0-9]+):`)
	celVariable   = regexp.MustCompile(`variable ([^:]+): .*<input>:([0-9]+):`)
)

// ErrorLine finds the line of a template document (the YAML text of one ConstraintTemplate, 1-based) that an
// error of AddTemplate is about: the Rego or CEL line the compiler names, placed in the block that holds that
// source; 0 when the error names no place in a source, or the document does not say where the source is.
func ErrorLine(doc []byte, err error) int {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	msg := err.Error()
	if m := regoPosition.FindStringSubmatch(msg); m != nil {
		row, _ := strconv.Atoi(m[3])
		for _, code := range regoSources(root.Content[0]) {
			var n *yaml.Node
			if m[2] == "" {
				n = code.rego
			} else if i, _ := strconv.Atoi(m[2]); i < len(code.libs) {
				n = code.libs[i]
			}
			if n != nil {
				return scalarLine(n, row)
			}
		}
		return 0
	}
	for _, src := range celSources(root.Content[0]) {
		if m := celValidation.FindStringSubmatch(msg); m != nil {
			i, _ := strconv.Atoi(m[1])
			row, _ := strconv.Atoi(m[2])
			if exprs := mappingSeq(src, "validations", "expression"); i < len(exprs) && exprs[i] != nil {
				return scalarLine(exprs[i], row)
			}
		}
		if m := celVariable.FindStringSubmatch(msg); m != nil {
			row, _ := strconv.Atoi(m[2])
			for _, v := range seq(child(src, "variables")) {
				if name := child(v, "name"); name != nil && name.Value == m[1] {
					if e := child(v, "expression"); e != nil {
						return scalarLine(e, row)
					}
				}
			}
		}
	}
	return 0
}

type regoSource struct {
	rego *yaml.Node
	libs []*yaml.Node
}

// regoSources are the Rego sources of a template: each target's rego and libs, and its code entries of engine Rego.
func regoSources(doc *yaml.Node) []regoSource {
	var out []regoSource
	for _, t := range seq(child(child(doc, "spec"), "targets")) {
		if r := child(t, "rego"); r != nil {
			out = append(out, regoSource{rego: r, libs: seq(child(t, "libs"))})
		}
		for _, c := range seq(child(t, "code")) {
			if e := child(c, "engine"); e != nil && e.Value == "Rego" {
				src := child(c, "source")
				if r := child(src, "rego"); r != nil {
					out = append(out, regoSource{rego: r, libs: seq(child(src, "libs"))})
				}
			}
		}
	}
	return out
}

// celSources are the sources of a template's code entries of engine K8sNativeValidation.
func celSources(doc *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for _, t := range seq(child(child(doc, "spec"), "targets")) {
		for _, c := range seq(child(t, "code")) {
			if e := child(c, "engine"); e != nil && e.Value == "K8sNativeValidation" {
				if src := child(c, "source"); src != nil {
					out = append(out, src)
				}
			}
		}
	}
	return out
}

// scalarLine is the document line of line row of a scalar's text: a block scalar's text starts on the line
// after its indicator (| or >); a quoted or plain scalar's lines are not the document's (line breaks fold,
// \n escapes make lines), so it is the line the scalar starts on.
func scalarLine(n *yaml.Node, row int) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + row
	}
	return n.Line
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// mappingSeq is the field key of each element of the sequence field list of n.
func mappingSeq(n *yaml.Node, list, key string) []*yaml.Node {
	var out []*yaml.Node
	for _, e := range seq(child(n, list)) {
		out = append(out, child(e, key))
	}
	return out
}
