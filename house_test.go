package etcdsd

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxFields is the most fields a struct of the plugin package holds: one that needs more
// does more than one job (issue 23: the watcher that was a loop, a publisher, a liveness
// detector and a bag of tunables at once).
const maxFields = 16

func TestStructsStaySmall(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			fields := 0
			for _, fl := range st.Fields.List {
				fields += max(len(fl.Names), 1) // an embedded field is one
			}
			if fields > maxFields {
				t.Errorf("%s: struct %s has %d fields, more than %d: split it along its jobs", fset.Position(ts.Pos()), ts.Name, fields, maxFields)
			}
			return true
		})
	}
}
