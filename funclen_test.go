package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function of the service may be: one that
// does not fit on a screen does more than one thing.
const maxFuncLines = 80

// TestFunctionsFitOnAScreen keeps every function of the service (this
// package, api, billing, scheduler, store) under maxFuncLines lines.
// Tests, generated code and the benchmark tools under bench/ are not
// checked.
func TestFunctionsFitOnAScreen(t *testing.T) {
	checked := 0
	eachServiceFile(t, 0, func(fset *token.FileSet, f *ast.File) {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			checked++
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n >= maxFuncLines {
				t.Errorf("%s: %s is %d lines; split it below %d", fset.Position(fn.Pos()), fn.Name.Name, n, maxFuncLines)
			}
		}
	})
	if checked < 100 {
		t.Fatalf("checked %d functions: the walk is not looking at the service", checked)
	}
}

// measuredFigure matches a duration quoted in a comment, such as "17.6 s"
// or "100 ms" (a setting in Go's syntax, such as "10s", is not matched):
// figures measured on one machine go stale in a comment.
var measuredFigure = regexp.MustCompile(`\b\d+( \d{3})*(\.\d+)? (ms|µs|us|ns|s)\b`)

// TestCommentsNameBenchmarksNotFigures: the service's comments name the
// benchmark or test that justifies a choice instead of quoting what it
// measured (docs/performance.md and docs/storage.md keep the figures).
func TestCommentsNameBenchmarksNotFigures(t *testing.T) {
	eachServiceFile(t, parser.ParseComments, func(fset *token.FileSet, f *ast.File) {
		for _, g := range f.Comments {
			for _, c := range g.List {
				if m := measuredFigure.FindString(c.Text); m != "" {
					t.Errorf("%s: comment quotes the figure %q; name the benchmark or test that measures it", fset.Position(c.Pos()), m)
				}
			}
		}
	})
}

// eachServiceFile parses every Go file of the service (this package, api,
// billing, scheduler, store) with mode and passes it to fn. Tests,
// generated code and the benchmark tools under bench/ are left out.
func eachServiceFile(t *testing.T, mode parser.Mode, fn func(*token.FileSet, *ast.File)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == "bench" || strings.HasPrefix(d.Name(), ".") && path != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".gen.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, mode)
		if err != nil {
			return err
		}
		fn(fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
