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
