package store

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
)

// TestOneWritePath enforces that write.go is the only way to change the
// database: no other file of the store reaches the writer pool (the
// writer's pool field, or the writer's sql.DB), begins a transaction
// (Begin, BeginTx, Transaction) other than a read-only one, writes
// through the reader pool, or sends gorm (Raw, Exec) a statement that
// inserts, updates or deletes. A new write must therefore go through
// DB.write, which takes the writer slot and invalidates the snapshots of
// what it touched. No exported function of the store hands out a gorm
// handle, and nothing outside the tests calls one named Gorm. Test files
// may inspect the pool.
func TestOneWritePath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("storetest/*.go")
	files = append(files, more...)
	var parsed []*ast.File
	fset := token.NewFileSet()
	names := map[*ast.File]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, file)
		names[file] = f
	}
	consts := stringConsts(parsed)
	checked := 0
	for _, file := range parsed {
		f := names[file]
		checkExportsNoGorm(t, fset, file)
		if f == "write.go" {
			continue
		}
		checked++
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				if n.Name == "writerPool" {
					t.Errorf("%s: reaches the writer pool outside write.go", fset.Position(n.Pos()))
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				switch sel.Sel.Name {
				case "Begin", "BeginTx", "Transaction":
					if !readOnlyTx(n) {
						t.Errorf("%s: begins a transaction outside write.go (use DB.write)", fset.Position(sel.Pos()))
					}
				case "Create", "Save", "Update", "Updates", "Delete":
					if onReader(sel.X) {
						t.Errorf("%s: writes through the reader pool (use DB.write)", fset.Position(sel.Pos()))
					}
				case "Raw", "Exec":
					if onReader(sel.X) && sel.Sel.Name == "Exec" {
						t.Errorf("%s: writes through the reader pool (use DB.write)", fset.Position(sel.Pos()))
					}
					if len(n.Args) > 0 && writesSQL.MatchString(sqlText(n.Args[0], consts)) {
						t.Errorf("%s: sends gorm a statement that writes (use a statement through Tx.exec in DB.write)", fset.Position(sel.Pos()))
					}
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d files; the scan is not looking at the store", checked)
	}
	checkNoGormCalls(t)
}

// writesSQL matches the text of a statement that changes rows.
var writesSQL = regexp.MustCompile(`(?i)\b(INSERT|UPDATE|DELETE)\b`)

// stringConsts maps the store's package-level string constants and
// variables initialised with a string to their text.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || (g.Tok != token.CONST && g.Tok != token.VAR) {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if text := sqlText(vs.Values[i], out); text != "" {
							out[name.Name] = text
						}
					}
				}
			}
		}
	}
	return out
}

// sqlText is the text of a string expression as far as it is known: its
// literals and the constants it names, concatenated.
func sqlText(e ast.Expr, consts map[string]string) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			if s, err := strconv.Unquote(e.Value); err == nil {
				return s
			}
		}
	case *ast.Ident:
		return consts[e.Name]
	case *ast.BinaryExpr:
		return sqlText(e.X, consts) + " " + sqlText(e.Y, consts)
	case *ast.ParenExpr:
		return sqlText(e.X, consts)
	}
	return ""
}

// readOnlyTx reports whether a Begin call asks for a read-only
// transaction (&sql.TxOptions{ReadOnly: true}).
func readOnlyTx(call *ast.CallExpr) bool {
	for _, a := range call.Args {
		u, ok := a.(*ast.UnaryExpr)
		if !ok {
			continue
		}
		lit, ok := u.X.(*ast.CompositeLit)
		if !ok {
			continue
		}
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			k, _ := kv.Key.(*ast.Ident)
			v, _ := kv.Value.(*ast.Ident)
			if k != nil && v != nil && k.Name == "ReadOnly" && v.Name == "true" {
				return true
			}
		}
	}
	return false
}

// checkExportsNoGorm fails for an exported function or method of the
// store that returns a gorm handle: the pools are reached only through
// the store's own methods (ToolQuery, ToolExec for tools and tests).
func checkExportsNoGorm(t *testing.T, fset *token.FileSet, file *ast.File) {
	t.Helper()
	for _, d := range file.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !fn.Name.IsExported() || fn.Type.Results == nil {
			continue
		}
		for _, r := range fn.Type.Results.List {
			if star, ok := r.Type.(*ast.StarExpr); ok {
				if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "DB" {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "gorm" {
						t.Errorf("%s: %s hands out a gorm handle", fset.Position(fn.Pos()), fn.Name.Name)
					}
				}
			}
		}
	}
}

// checkNoGormCalls fails for a call of a method named Gorm in any
// non-test file of the module.
func checkNoGormCalls(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Gorm" {
				t.Errorf("%s: uses Gorm() outside the tests (use ToolQuery or ToolExec, or a store method)", fset.Position(sel.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteInvalidatesSnapshots: a write through DB.write drops the cached
// snapshots of the VINs it was given and of those its helpers touched,
// also when it fails, and leaves the others cached.
func TestWriteInvalidatesSnapshots(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "w.db"), SnapshotCache: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	loc := time.UTC
	trial := billing.TrialTerms{Months: 12, DataBytesPerMonth: 1 << 30}
	vins := []billing.VIN{"VIN-GIVEN", "VIN-TOUCHED", "VIN-FAILED", "VIN-OTHER"}
	cycle := billing.CycleAt(now, loc)
	for _, v := range vins {
		if _, _, err := db.Activate(ctx, v, billing.Activation{ActivatedAt: now, OwnerID: "o"}, trial, loc, now); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() map[billing.VIN]bool {
		out := map[billing.VIN]bool{}
		db.cache.mu.Lock()
		defer db.cache.mu.Unlock()
		for v, e := range db.cache.entries {
			out[v] = e.ready
		}
		return out
	}
	fill := func() {
		for _, v := range vins {
			if _, err := db.Snapshot(ctx, v, cycle); err != nil {
				t.Fatal(err)
			}
		}
		if c := cached(); len(c) != len(vins) {
			t.Fatalf("cached %v, want all of %v", c, vins)
		}
	}
	fill()
	end := now.AddDate(2, 0, 0)
	err = db.write(ctx, []billing.VIN{"VIN-GIVEN"}, func(tx *Tx) error {
		return setCoverageEnd(tx, "VIN-TOUCHED", end, now, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := cached(); c["VIN-GIVEN"] || c["VIN-TOUCHED"] || !c["VIN-OTHER"] || !c["VIN-FAILED"] {
		t.Errorf("after a write given VIN-GIVEN that touched VIN-TOUCHED, cached: %v", c)
	}
	fill()
	err = db.write(ctx, nil, func(tx *Tx) error {
		tx.touch("VIN-FAILED")
		return billing.Errorf(billing.EOrderNotFound, "refused")
	})
	if err == nil {
		t.Fatal("the failing write returned nil")
	}
	if c := cached(); c["VIN-FAILED"] || !c["VIN-OTHER"] {
		t.Errorf("after a failed write that touched VIN-FAILED, cached: %v", c)
	}
}

// onReader reports whether a call chain starts from the reader pool
// (db.read...).
func onReader(x ast.Expr) bool {
	for {
		switch e := x.(type) {
		case *ast.SelectorExpr:
			if e.Sel.Name == "read" {
				return true
			}
			x = e.X
		case *ast.CallExpr:
			x = e.Fun
		default:
			return false
		}
	}
}

// TestWriteTransactionsReachTheDatabaseOneWay: a write transaction holds
// no gorm handle, so its work goes through statements (Tx.query, Tx.exec)
// and nothing else.
func TestWriteTransactionsReachTheDatabaseOneWay(t *testing.T) {
	tx := reflect.TypeFor[Tx]()
	for i := range tx.NumField() {
		if f := tx.Field(i); f.Type == reflect.TypeFor[*gorm.DB]() {
			t.Errorf("Tx.%s is a gorm handle: a write transaction would reach the database two ways", f.Name)
		}
	}
}

// TestSQLiteReaderPoolRefusesWrites: the reader pool's connections are
// query-only, so a write cannot bypass the writer slot and the snapshot
// cache's invalidation; the writer and the tool path still write.
func TestSQLiteReaderPoolRefusesWrites(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "r.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ToolExec(ctx, `INSERT INTO job_runs (job, tick, replica, started_at) VALUES ('j', ?, 'r', ?)`, time.Now(), time.Now()); err != nil {
		t.Fatalf("a write through the write path: %v", err)
	}
	if err := db.read.Exec(`DELETE FROM job_runs`).Error; err == nil {
		t.Error("a DELETE through the reader pool succeeded, want it refused")
	}
	var n int
	if err := db.ToolQuery(ctx, &n, `SELECT COUNT(*) FROM job_runs`); err != nil || n != 1 {
		t.Errorf("job_runs holds %d rows (%v), want the 1 written", n, err)
	}
}
