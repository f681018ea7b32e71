package policies

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed library
var library embed.FS

// Library returns the built-in policies and, separately, their Rego unit tests, both in path order.
func Library() (policies, tests []Source, err error) {
	return ReadSources(library, "library")
}

// ReadSources collects *.rego files under root of fsys; files ending in _test.rego are tests.
func ReadSources(fsys fs.FS, root string) (policies, tests []Source, err error) {
	err = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		text, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		src := Source{Name: p, Text: string(text)}
		if strings.HasSuffix(p, "_test.rego") {
			tests = append(tests, src)
		} else {
			policies = append(policies, src)
		}
		return nil
	})
	byName := func(s []Source) { sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name }) }
	byName(policies)
	byName(tests)
	return policies, tests, err
}
