package admission

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
)

// TestSanitize: the byte scan finds every control character the API server refuses (each becomes a space), and a
// warning without one is returned byte for byte, invalid UTF-8 included.
func TestSanitize(t *testing.T) {
	cases := []string{"", "plain", "tab\there", "line\nbreak", "del\x7f", "nul\x00", "next line \u0085 (C1)", "csi \u009b",
		"no-break\u00a0space", "Â and ü", "emoji 🚀", "invalid \xc2", "invalid \xff\xfe", "\xc2\x85 invalid \xff"}
	for r := rune(0); r < 0x300; r++ {
		cases = append(cases, "a"+string(r)+"b")
	}
	for _, s := range cases {
		got := sanitize(s)
		if strings.IndexFunc(s, unicode.IsControl) < 0 {
			if got != s {
				t.Errorf("sanitize(%q) = %q: changed a warning without control characters", s, got)
			}
			continue
		}
		if strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Errorf("sanitize(%q) = %q still holds a control character", s, got)
		}
		if utf8.RuneCountInString(got) != utf8.RuneCountInString(s) {
			t.Errorf("sanitize(%q) = %q: %d runes, want %d", s, got, utf8.RuneCountInString(got), utf8.RuneCountInString(s))
		}
		want := []rune(s)
		for i, r := range []rune(got) {
			if unicode.IsControl(want[i]) && r != ' ' || !unicode.IsControl(want[i]) && want[i] != utf8.RuneError && r != want[i] {
				t.Errorf("sanitize(%q) = %q: rune %d is %q", s, got, i, r)
			}
		}
	}
}

// TestCapWarningsDeduplicates: a warning is sent once, in first-seen order, whether the list is scanned (up to
// smallWarningList) or deduplicated through a set; texts that differ only by a control character are the same
// warning once sanitised.
func TestCapWarningsDeduplicates(t *testing.T) {
	many := func(n int) []string {
		var out []string
		for i := range n {
			w := "w" + strings.Repeat("x", i%5) // five distinct texts, repeated
			out = append(out, w)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, nil},
		{"distinct", []string{"a", "b"}, []string{"a", "b"}},
		{"repeated, scanned", []string{"b", "a", "b", "a", "c"}, []string{"b", "a", "c"}},
		{"sanitised alike", []string{"a\tb", "a b", "a\nb"}, []string{"a b"}},
		{"at the scan's limit", many(smallWarningList), []string{"w", "wx", "wxx", "wxxx", "wxxxx"}},
		{"through the set", many(smallWarningList + 30), []string{"w", "wx", "wxx", "wxxx", "wxxxx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CapWarnings(tc.in)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("CapWarnings(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// violationsJSON is what violationsAnnotation wrote with encoding/json, the reference it must match byte for byte.
func violationsJSON(vs []Violation) string {
	type entry struct {
		Policy   string `json:"policy"`
		Path     string `json:"path,omitempty"`
		Mode     string `json:"mode"`
		Denied   bool   `json:"denied"`
		Exempted string `json:"exempted,omitempty"`
	}
	n := min(len(vs), maxAnnotatedEntries)
	list := make([]entry, 0, n)
	for _, v := range vs[:n] {
		e := entry{Policy: v.Policy, Path: v.Path, Mode: string(v.Mode), Denied: v.Denied}
		if v.Exemption != nil {
			e.Exempted = v.Exemption.Source + " " + v.Exemption.Name
		}
		list = append(list, e)
	}
	b, _ := json.Marshal(list)
	if len(vs) > n {
		b = append(append(append(b[:len(b)-1], `,{"more":`...), strconv.Itoa(len(vs)-n)...), "}]"...)
	}
	return string(b)
}

// annotationStrings are texts that exercise every escape encoding/json makes.
var annotationStrings = []string{"", "no-privileged", `metadata.annotations["policy.attest.continuu.ms/exempt"]`, "a<b>&c", "tab\there",
	"nl\ncr\rbs\bff\f", "nul\x00 esc\x1b del\x7f", "quote\" backslash\\", "line\u2028para\u2029", "invalid \xff\xfe end",
	"truncated \xe2\x82", "émoji 🚀 ü", "\u0085 C1", "</script>"}

// TestViolationsAnnotationAsEncodingJSON: the annotation is written as encoding/json wrote it, for every escape,
// an exemption, the empty path and more entries than are kept.
func TestViolationsAnnotationAsEncodingJSON(t *testing.T) {
	var vs []Violation
	for i, s := range annotationStrings {
		v := Violation{Policy: s, Path: annotationStrings[(i+1)%len(annotationStrings)], Mode: policies.Mode(s), Denied: i%2 == 0}
		if i%3 == 0 {
			v.Exemption = &exemptions.Exemption{Source: s, Name: annotationStrings[(i+2)%len(annotationStrings)]}
		}
		vs = append(vs, v)
	}
	for n := 0; n <= len(vs); n++ {
		if got, want := violationsAnnotation(vs[:n]), violationsJSON(vs[:n]); got != want {
			t.Errorf("%d entries:\n got %s\nwant %s", n, got, want)
		}
	}
	many := slices.Repeat(vs, maxAnnotatedEntries/len(vs)+2)
	if got, want := violationsAnnotation(many), violationsJSON(many); got != want {
		t.Errorf("%d entries:\n got %s\nwant %s", len(many), got, want)
	}
}

// FuzzAppendJSONString: any text a policy or an object names is quoted as encoding/json quotes it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range annotationStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
