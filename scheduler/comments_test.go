package scheduler_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// measuredFigure matches a duration quoted in a comment, such as "17.6 s"
// or "100 ms" (a setting such as "10s", in Go's syntax, is not matched):
// figures measured on one machine go stale in a comment.
var measuredFigure = regexp.MustCompile(`\b\d+( \d{3})*(\.\d+)? (ms|µs|us|ns|s)\b`)

// TestCommentsNameBenchmarksNotFigures: the scheduler's comments name the
// benchmark or test that justifies a choice instead of quoting what it
// measured (docs/performance.md keeps the figures).
func TestCommentsNameBenchmarksNotFigures(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range file.Comments {
			for _, c := range g.List {
				if m := measuredFigure.FindString(c.Text); m != "" {
					t.Errorf("%s: comment quotes the figure %q; name the benchmark or test that measures it", fset.Position(c.Pos()), m)
				}
			}
		}
	}
}
