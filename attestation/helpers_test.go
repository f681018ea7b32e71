package attestation_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// jsonRoundTrip is v as decoding its JSON yields it (numbers as float64).
func jsonRoundTrip(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// filepathGlob lists what the directory named by environment variable env contains.
func filepathGlob(t testing.TB, env string) ([]string, error) {
	t.Helper()
	return filepath.Glob(filepath.Join(os.Getenv(env), "*"))
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
