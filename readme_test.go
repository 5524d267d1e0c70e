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

// docs are the repository's documentation pages: README.md, BENCHMARKS.md, the Kubernetes
// example's README and docs/*.md.
func docs(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"README.md", "BENCHMARKS.md", "examples/kubernetes/README.md"}, pages...)
}

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
	for _, doc := range docs(t) {
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

// Every relative link of the documentation leads to a file of the repository and, with a
// fragment, to a heading of that file (as GitHub makes anchors of headings).
func TestDocumentedLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range docs(t) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(outsideCode(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, fragment, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), path)
			}
			st, err := os.Stat(file)
			if err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, target)
				continue
			}
			if fragment == "" {
				continue
			}
			if st.IsDir() || !strings.HasSuffix(file, ".md") {
				t.Errorf("%s links to %s: a fragment of what is no markdown file", doc, target)
				continue
			}
			if !slices.Contains(anchors(t, file), fragment) {
				t.Errorf("%s links to %s: %s has no heading #%s (it has %v)", doc, target, file, fragment, anchors(t, file))
			}
		}
	}
}

// outsideCode is text with its fenced blocks and code spans blanked out.
func outsideCode(text string) string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "~~~") || strings.HasPrefix(line, "```") {
			fenced = !fenced
			out = append(out, "")
			continue
		}
		if fenced {
			out = append(out, "")
			continue
		}
		out = append(out, line)
	}
	return regexp.MustCompile("`[^`]*`").ReplaceAllString(strings.Join(out, "\n"), "")
}

// anchors are the fragments GitHub makes of the headings of a markdown file.
func anchors(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(outsideCode(string(b)), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		var a strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case r == ' ':
				a.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				a.WriteRune(r)
			}
		}
		out = append(out, a.String())
	}
	return out
}

// Every make and go test command the documentation names, in a code span or a command
// block, asks for a target and variables the Makefile has, and for tests, benchmarks and
// test flags its package has. The commands the end-to-end tests run from README.md and
// docs/ (test/e2e, TestDocCommandsAccountedFor) are run there; these are the ones too long,
// or too heavy, to run in make test.
func TestDocumentedCommandsExist(t *testing.T) {
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z0-9][a-z0-9-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	span := regexp.MustCompile("`(make|go test) ([^`]*)`")
	prompt := regexp.MustCompile(`(?m)^\$ (make|go test) (.*)$`)
	checked := 0
	for _, doc := range docs(t) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range append(span.FindAllStringSubmatch(string(b), -1), prompt.FindAllStringSubmatch(string(b), -1)...) {
			args, _, _ := strings.Cut(m[2], "#") // a comment after the command
			fields := strings.Fields(args)
			checked++
			if m[1] == "make" {
				checkMake(t, doc, fields, targets, string(makefile))
			} else {
				checkGoTest(t, doc, fields)
			}
		}
	}
	if checked < 10 {
		t.Errorf("found %d make and go test commands in the documentation, want at least 10", checked)
	}
}

// documentedTargets are the make targets the documentation names, and how far make test
// runs them.
var documentedTargets = map[string]string{
	"run":           "TestReadmeCommands (test/e2e) runs its recipe, as make -n prints it, on ports of its own",
	"test":          "the run these tests are part of",
	"build":         "make test builds first, and the tests use what it built",
	"fuzz":          "make test runs it with FUZZTIME=5s",
	"bench":         "not run: about 25 minutes; make test runs bench-smoke",
	"soak":          "not run: TestModel with 10,000 operations on each etcd; make test runs 120",
	"compat":        "not run: 200,000 queries; make test runs the hand-written data sets and seeds 1-20",
	"image":         "not run: it needs root and buildah; CI runs it after make test",
	"etcd-releases": "not run: it builds etcd 3.5 and 3.6 from the Go module proxy",
}

func checkMake(t *testing.T, doc string, args []string, targets map[string]bool, makefile string) {
	t.Helper()
	for _, a := range args {
		if name, _, ok := strings.Cut(a, "="); ok {
			if !strings.Contains(makefile, "$("+name+")") {
				t.Errorf("%s: make %s: the Makefile uses no variable %s", doc, strings.Join(args, " "), name)
			}
			continue
		}
		if !targets[a] {
			t.Errorf("%s: make %s: the Makefile has no target %s", doc, strings.Join(args, " "), a)
		}
		if _, ok := documentedTargets[a]; !ok {
			t.Errorf("%s: make %s: documentedTargets does not say whether make test runs %s", doc, strings.Join(args, " "), a)
		}
	}
}

// checkGoTest checks the -run and -bench patterns and the package's own flags of a go test
// command line against the package's test files.
func checkGoTest(t *testing.T, doc string, args []string) {
	t.Helper()
	pkg := "."
	var patterns []struct{ kind, re string }
	var flags []string
	for i := 0; i < len(args); i++ {
		a := strings.Trim(args[i], "'\"")
		if !strings.HasPrefix(a, "-") {
			pkg = a
			continue
		}
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		known := map[string]bool{"run": true, "bench": true, "benchtime": true, "count": true, "race": true, "v": true, "timeout": true}
		if !ok && (name == "run" || name == "bench" || name == "benchtime" || name == "count" || name == "timeout") && i+1 < len(args) {
			i++
			value = args[i]
		}
		value = strings.Trim(value, "'\"")
		switch {
		case name == "run" || name == "bench":
			patterns = append(patterns, struct{ kind, re string }{map[string]string{"run": "Test", "bench": "Benchmark"}[name], value})
		case !known[name]:
			flags = append(flags, name)
		}
	}
	if pkg == "./..." {
		return
	}
	files, err := filepath.Glob(filepath.Join(pkg, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Errorf("%s: go test %s: no test files in %s", doc, strings.Join(args, " "), pkg)
		return
	}
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	funcs := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark)[A-Za-z0-9_]*)\(`).FindAllStringSubmatch(src.String(), -1)
	for _, p := range patterns {
		if p.re == "^$" {
			continue
		}
		re, err := regexp.Compile(p.re)
		if err != nil {
			t.Errorf("%s: go test %s: %v", doc, strings.Join(args, " "), err)
			continue
		}
		found := false
		for _, f := range funcs {
			found = found || strings.HasPrefix(f[1], p.kind) && re.MatchString(f[1])
		}
		if !found {
			t.Errorf("%s: go test %s: no %s function of %s matches %q", doc, strings.Join(args, " "), p.kind, pkg, p.re)
		}
	}
	for _, f := range flags {
		if !strings.Contains(src.String(), `"`+f+`"`) {
			t.Errorf("%s: go test %s: the tests of %s define no flag -%s", doc, strings.Join(args, " "), pkg, f)
		}
	}
}
