package etcdsd

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every test the documentation cites exists.
func TestDocumentedTestsExist(t *testing.T) {
	var tests strings.Builder
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		tests.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile(`\bTest[A-Z][A-Za-z0-9_]*`)
	for _, doc := range []string{"README.md", "BENCHMARKS.md", "examples/kubernetes/README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range cited.FindAllString(string(b), -1) {
			if !strings.Contains(tests.String(), "func "+name+"(") {
				t.Errorf("%s cites %s, which does not exist", doc, name)
			}
		}
	}
}
