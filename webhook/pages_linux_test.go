package webhook

import (
	"regexp"
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
