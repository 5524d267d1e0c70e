package etcdsd

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/etcdsd/etcdsd/skydns"
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

// The README's Metrics section names every metric metrics.go defines, every reason label
// value, and the staleness the stale gauge stands for.
func TestMetricsDocumented(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start, end := strings.Index(readme, "\n## Metrics\n"), strings.Index(readme, "\n## Ready\n")
	if start < 0 || end < start {
		t.Fatal("README has no Metrics section before Ready")
	}
	section := readme[start:end]

	f, err := parser.ParseFile(token.NewFileSet(), "metrics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		if kv, ok := n.(*ast.KeyValueExpr); ok {
			if key, ok := kv.Key.(*ast.Ident); ok && key.Name == "Name" {
				if lit, ok := kv.Value.(*ast.BasicLit); ok {
					names = append(names, strings.Trim(lit.Value, `"`))
				}
			}
		}
		return true
	})
	if len(names) < 10 {
		t.Fatalf("found %d metric names in metrics.go, want at least 10", len(names))
	}
	for _, name := range names {
		if !strings.Contains(section, "`"+plugin.Namespace+"_"+pluginName+"_"+name) {
			t.Errorf("README's Metrics section does not name %s_%s_%s", plugin.Namespace, pluginName, name)
		}
	}
	for _, reason := range append(slices.Clone(listReasons), skydns.Reasons...) {
		if !strings.Contains(section, "`"+reason+"`") {
			t.Errorf("README's Metrics section does not explain the reason %q", reason)
		}
	}
	if stale := fmt.Sprintf("for %d s", int(staleAfter.Seconds())); !strings.Contains(section, stale) {
		t.Errorf("README's Metrics section does not say the stale gauge stands for %q", stale)
	}
}
