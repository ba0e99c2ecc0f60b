package store

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/billing"
)

// TestOneWritePath enforces that write.go is the only way to change the
// database: no other file of the store reaches the writer pool (the
// writer's pool field, or the writer's sql.DB) or begins a transaction
// (Begin, BeginTx, Transaction) on anything. A new write must therefore
// go through DB.write, which takes the writer slot and invalidates the
// snapshots of what it touched. Test files may inspect the pool.
func TestOneWritePath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("storetest/*.go")
	files = append(files, more...)
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "write.go" {
			continue
		}
		checked++
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
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
					t.Errorf("%s: begins a transaction outside write.go (use DB.write)", fset.Position(sel.Pos()))
				case "Exec", "Create", "Save", "Update", "Updates", "Delete":
					if onReader(sel.X) {
						t.Errorf("%s: writes through the reader pool (use DB.write)", fset.Position(sel.Pos()))
					}
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d files; the scan is not looking at the store", checked)
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
		return setCoverageEnd(tx, "VIN-TOUCHED", end, now)
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
