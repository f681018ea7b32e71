package admission

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
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
