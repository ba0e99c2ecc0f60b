package billing

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps billing the core: it may import the
// standard library and nothing else, not even the service's other packages.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "entitlements/billing").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps entitlements/billing: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		t.Fatalf("go list -deps listed %d packages, want billing and its standard imports:\n%s", len(lines), out)
	}
	for _, line := range lines {
		path, standard, _ := strings.Cut(line, " ")
		if path == "entitlements/billing" {
			continue
		}
		first, _, _ := strings.Cut(path, "/")
		if strings.Contains(first, ".") || standard != "true" {
			t.Errorf("billing depends on %s, want the standard library only", path)
		}
	}
}

// clockReaders are the functions of package time that read the clock.
var clockReaders = map[string]bool{"Now": true, "Since": true, "Until": true}

// TestNoClock keeps billing deterministic: no non-test file reads the clock;
// every rule takes now as a parameter.
func TestNoClock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range clockCalls(t, name, src) {
			t.Errorf("%s reads the clock; billing must take now as a parameter", call)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("checked %d source files, want every non-test file of billing", checked)
	}
}

// TestClockCallsFinds proves the scan in TestNoClock can fail.
func TestClockCallsFinds(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"time.Now", "package p\nimport \"time\"\nfunc f() { _ = time.Now() }\n", 1},
		{"renamed import", "package p\nimport clock \"time\"\nfunc f() { _ = clock.Since(clock.Time{}) }\n", 1},
		{"function value", "package p\nimport \"time\"\nvar now = time.Now\n", 1},
		{"time.Until and time.Now", "package p\nimport \"time\"\nfunc f() { _ = time.Until(time.Now()) }\n", 2},
		{"a parameter named now", "package p\nimport \"time\"\nfunc f(now time.Time) time.Time { return now.Add(time.Hour) }\n", 0},
		{"dot import", "package p\nimport . \"time\"\nfunc f() { _ = Now() }\n", 1},
		{"Now of another package", "package p\nimport \"example.com/time\"\nfunc f() { _ = time.Now() }\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clockCalls(t, "x.go", []byte(tt.src)); len(got) != tt.want {
				t.Errorf("clockCalls() = %v, want %d", got, tt.want)
			}
		})
	}
}

// clockCalls returns the positions where src uses time.Now, time.Since or
// time.Until, whatever name package time is imported under.
func clockCalls(t *testing.T, name string, src []byte) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	local := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			local = "time"
			if imp.Name != nil {
				local = imp.Name.Name
			}
			if local == "." {
				return []string{fset.Position(imp.Pos()).String() + " (dot import of time)"}
			}
		}
	}
	if local == "" {
		return nil
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == local && clockReaders[sel.Sel.Name] {
			found = append(found, fset.Position(sel.Pos()).String())
		}
		return true
	})
	return found
}
