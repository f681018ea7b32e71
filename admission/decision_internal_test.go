package admission

import (
	"strings"
	"testing"
	"unicode"
)

// TestSanitize: the byte scan finds every control character the API server refuses, and nothing else is changed.
func TestSanitize(t *testing.T) {
	reference := func(s string) string { // the rune-by-rune check it replaces
		if strings.IndexFunc(s, unicode.IsControl) < 0 {
			return s
		}
		return strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	cases := []string{"", "plain", "tab\there", "line\nbreak", "del\x7f", "nul\x00", "next line \u0085 (C1)", "csi \u009b",
		"no-break\u00a0space", "Â and ü", "emoji 🚀", "invalid \xc2", "invalid \xff\xfe"}
	for r := rune(0); r < 0x300; r++ {
		cases = append(cases, "a"+string(r)+"b")
	}
	for _, s := range cases {
		if got, want := sanitize(s), reference(s); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", s, got, want)
		}
	}
}
