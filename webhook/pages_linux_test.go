package webhook

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestReleaseStartupPages drops the test binary's resident code and read-only data and checks that the process
// goes on running code and reading data it had mapped before (they map back from the page cache).
func TestReleaseStartupPages(t *testing.T) {
	re := regexp.MustCompile(`^v[0-9]+$`) // code and tables mapped before the release
	before, after, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resident code and read-only data: %d KiB before, %d KiB after", before>>10, after>>10)
	if before <= 0 {
		t.Fatalf("no resident read-only mappings of the binary before the release (%d bytes)", before)
	}
	if after >= before/2 {
		t.Errorf("resident read-only mappings %d KiB after the release, want well below the %d KiB before", after>>10, before>>10)
	}
	if !re.MatchString("v12") || re.MatchString("x") {
		t.Error("the regexp compiled before the release answers differently after it")
	}
}

// TestReadOnlyMappingsKeepWrittenPages: a read-only mapping of the binary holding an anonymous page (the relocated
// GOT of a cgo binary, made read-only after the dynamic loader wrote it) is never released; the others are, and
// mappings of other files or writable ones are not read-only mappings of the binary.
func TestReadOnlyMappingsKeepWrittenPages(t *testing.T) {
	const smaps = `00400000-00402000 r--p 00000000 fe:00 1 /bin/attest
Rss:                   8 kB
Anonymous:             0 kB
00402000-03517000 r-xp 00002000 fe:00 1 /bin/attest
Rss:               20092 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
075f4000-075f5000 r--p 071f3000 fe:00 1 /bin/attest
Rss:                   4 kB
Anonymous:             4 kB
075f5000-077b2000 rw-p 071f4000 fe:00 1 /bin/attest
Rss:                1268 kB
Anonymous:           328 kB
7f0000000000-7f0000001000 r-xp 00000000 fe:00 2 /lib/libxml2.so
Rss:                   4 kB
Anonymous:             0 kB
7f0000002000-7f0000003000 rw-p 00000000 00:00 0
Rss:                   4 kB
Anonymous:             4 kB
`
	ranges, rss, err := readOnlyMappings(strings.NewReader(smaps), "/bin/attest")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]uintptr{{0x400000, 0x402000}, {0x402000, 0x3517000}}
	if !reflect.DeepEqual(ranges, want) {
		t.Errorf("released %#x, want %#x (never the read-only mapping with a written page)", ranges, want)
	}
	if rss != (8+20092+4)<<10 {
		t.Errorf("resident read-only bytes %d, want %d", rss, (8+20092+4)<<10)
	}
	if _, _, err := readOnlyMappings(strings.NewReader("zz-00 r-xp 0 fe:00 1 /bin/attest\n"), "/bin/attest"); err == nil {
		t.Error("a malformed mapping was read")
	}
}
