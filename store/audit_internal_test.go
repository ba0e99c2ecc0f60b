package store

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
)

// TestGroupWriteAuditsEachWrite: writes that share a group commit each get
// their own entry, with their own caller's actor and request id; a write
// of the group that fails (an error or a panic) leaves no entry, and the
// others keep theirs.
func TestGroupWriteAuditsEachWrite(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "a.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
	release := holdWriter(db)
	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			actx := billing.WithActor(ctx, billing.Actor{Role: "billing", Subject: "op" + strconv.Itoa(i), RequestID: "req-" + strconv.Itoa(i)})
			errs[i] = db.write(actx, nil, func(tx *Tx) error {
				tx.audit(billing.AuditEntry{At: at, Action: billing.AuditPaymentApplied, OrderID: "ord-" + strconv.Itoa(i),
					After: billing.Fields{"n": i}})
				switch i % 3 {
				case 1:
					return fmt.Errorf("write %d refused", i)
				case 2:
					panic("write panicked")
				}
				return nil
			})
		})
	}
	waitQueued(t, db, n)
	release()
	wg.Wait()

	es, _, err := db.AuditEntries(ctx, billing.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byOrder := map[string]billing.AuditEntry{}
	for _, e := range es {
		byOrder[e.OrderID] = e
	}
	if len(es) != n/3 {
		t.Errorf("%d entries, want %d (one per write that succeeded)", len(es), n/3)
	}
	for i := range n {
		e, ok := byOrder["ord-"+strconv.Itoa(i)]
		if ok != (i%3 == 0) || (errs[i] == nil) != (i%3 == 0) {
			t.Errorf("write %d: err %v, entry %v; want an entry exactly when it succeeded", i, errs[i], ok)
			continue
		}
		if ok && (e.Actor != "billing:op"+strconv.Itoa(i) || e.RequestID != "req-"+strconv.Itoa(i) || e.After["n"] != float64(i)) {
			t.Errorf("write %d's entry = %+v, want its own actor, request id and fields", i, e)
		}
	}
}

// auditWrites are the statements that would change or remove audit
// entries: UPDATE or DELETE or TRUNCATE naming the table, in any case and
// spacing, quoted or not.
var auditWrites = regexp.MustCompile(`(?is)\b(update|delete\s+from|truncate(\s+table)?)\s+["` + "`" + `]?audit_log\b`)

// gormWrites are gorm's methods that update or delete rows.
var gormWrites = map[string]bool{"Update": true, "Updates": true, "UpdateColumn": true, "UpdateColumns": true, "Save": true, "Delete": true}

// TestAuditLogAppendOnly proves from the sources that no code path
// changes or removes an audit entry: no Go file of the module (tests
// aside) holds an UPDATE, DELETE or TRUNCATE of audit_log, and nothing
// calls gorm's update or delete methods on the table's row type or on a
// query naming the table. The migration's triggers are the other half
// (TestAuditLogRefusesUpdateAndDelete).
func TestAuditLogAppendOnly(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked, sawInsert := 0, false
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, path)
		sawInsert = sawInsert || strings.Contains(string(src), "INSERT INTO audit_log")
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(n.Value)
				if err != nil {
					s = n.Value
				}
				if auditWrites.MatchString(s) && !strings.Contains(s, "TRIGGER") {
					t.Errorf("%s:%d: changes audit_log: %q", rel, fset.Position(n.Pos()).Line, s)
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if ok && gormWrites[sel.Sel.Name] && mentionsAuditTable(sel.X) {
					t.Errorf("%s:%d: %s on audit_log", rel, fset.Position(n.Pos()).Line, sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 || !sawInsert {
		t.Fatalf("checked %d files (insert seen: %v); the scan is not looking at the module", checked, sawInsert)
	}
}

// mentionsAuditTable reports whether the receiver chain of a call names
// auditRow or the audit_log table.
func mentionsAuditTable(x ast.Expr) bool {
	found := false
	ast.Inspect(x, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			found = found || n.Name == "auditRow"
		case *ast.BasicLit:
			found = found || strings.Contains(n.Value, "audit_log")
		}
		return !found
	})
	return found
}

// TestAuditScanCatchesChanges: the patterns of TestAuditLogAppendOnly
// find the statements they are meant to.
func TestAuditScanCatchesChanges(t *testing.T) {
	for _, s := range []string{
		"UPDATE audit_log SET actor = ?", "delete from audit_log", "DELETE\n\tFROM  \"audit_log\" WHERE id = ?",
		"TRUNCATE audit_log", "truncate table audit_log",
	} {
		if !auditWrites.MatchString(s) {
			t.Errorf("%q is not caught", s)
		}
	}
	for _, s := range []string{"INSERT INTO audit_log (id) VALUES (?)", "SELECT * FROM audit_log", "UPDATE audit_logs_archive SET x = 1"} {
		if auditWrites.MatchString(s) {
			t.Errorf("%q is caught, but changes no entry", s)
		}
	}
	for src, want := range map[string]bool{
		`db.read.Model(&auditRow{}).Where("id = ?", id).Update("actor", "x")`: true,
		`tx.g.Table("audit_log").Delete(nil)`:                                 true,
		`tx.g.Model(&refundRow{}).Update("note", "x")`:                        false,
	} {
		e, err := parser.ParseExpr(src)
		if err != nil {
			t.Fatal(err)
		}
		call := e.(*ast.CallExpr)
		if got := mentionsAuditTable(call.Fun.(*ast.SelectorExpr).X); got != want {
			t.Errorf("%s: caught = %v, want %v", src, got, want)
		}
	}
}

// unaudited are the store's writes that record no audit entry, each with
// the reason. Every other function that runs a write must record its
// change (Tx.audit): TestEveryWriteIsAudited fails for a new write until
// it does, or until it is added here with a reason.
var unaudited = map[string]string{
	"jobWrite":              "the jobs' wrapper of write; its callers audit",
	"migrateWhere":          "schema changes; the start-up entry lists the migrations applied",
	"Seed":                  "synthetic data for load tests and demos, refused on real data",
	"seedChunks":            "Seed's load, chunk by chunk",
	"PurgeIdempotencyKeys":  "retention of stored responses; changes nothing a person did",
	"DeleteUsageBefore":     "retention of raw usage records; the aggregates stay",
	"MarkNoticeSent":        "delivery bookkeeping; the notice keeps sent_at",
	"createCoverageNotices": "the jobs' reminders and expiry notices; the notices are the record",
	"ClaimJobRun":           "scheduler bookkeeping (which replica runs a tick); the job's changes are audited",
	"ToolExec":              "changes made by hand by the benchmark tool and the tests; the service never calls it",
}

// TestEveryWriteIsAudited: every function of the store that runs a write
// transaction records audit entries in it, or is listed in unaudited.
func TestEveryWriteIsAudited(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "write.go" {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			writes, audits := false, false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
						switch sel.Sel.Name {
						case "write", "writeAlone", "writeBulk", "jobWrite":
							writes = true
						case "audit":
							audits = true
						}
					}
				}
				return true
			})
			if !writes {
				continue
			}
			writers[fn.Name.Name] = true
			_, excused := unaudited[fn.Name.Name]
			switch {
			case audits && excused:
				t.Errorf("%s: %s records audit entries but is listed in unaudited", fset.Position(fn.Pos()), fn.Name.Name)
			case !audits && !excused:
				t.Errorf("%s: %s runs a write and records no audit entry (Tx.audit)", fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
	}
	for name := range unaudited {
		if !writers[name] {
			t.Errorf("unaudited lists %s, which runs no write", name)
		}
	}
	if len(writers) < 15 {
		t.Fatalf("found %d writing functions; the scan is not looking at the store", len(writers))
	}
}

// TestAuditQueryPlans: on SQLite every filter of the audit list reads an
// index in (at, id) order, newest first, with no sort and no table scan.
func TestAuditQueryPlans(t *testing.T) {
	db := planStore(t)
	at := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
	before := &billing.Cursor{At: at, ID: "aud_1"}
	// The table is WITHOUT ROWID: its own B-tree is the (at, id) key.
	const table = "SCAN audit_log"
	const seek = "SEARCH audit_log USING PRIMARY KEY"
	for name, c := range map[string]struct {
		q    billing.AuditQuery
		want []string // the plan holds one of these
	}{
		"all":          {billing.AuditQuery{Limit: 50}, []string{table}},
		"page 2":       {billing.AuditQuery{Limit: 50, Before: before}, []string{seek}},
		"range":        {billing.AuditQuery{Limit: 50, From: at.Add(-time.Hour), To: at}, []string{seek}},
		"vin":          {billing.AuditQuery{Limit: 50, VIN: "LSVAX4E10P2400001", Before: before}, []string{"USING INDEX audit_log_vin_idx (vin=? AND"}},
		"order":        {billing.AuditQuery{Limit: 50, OrderID: "ord_1", From: at.Add(-time.Hour)}, []string{"USING INDEX audit_log_order_idx (order_id=? AND"}},
		"actor":        {billing.AuditQuery{Limit: 50, Actor: "billing:bob", Before: before}, []string{"USING INDEX audit_log_actor_idx (actor=? AND"}},
		"action":       {billing.AuditQuery{Limit: 50, Action: billing.AuditRefundIssued}, []string{"USING INDEX audit_log_action_idx (action=?)"}},
		"vin, action":  {billing.AuditQuery{Limit: 50, VIN: "LSVAX4E10P2400001", Action: billing.AuditRefundIssued}, []string{"audit_log_vin_idx", "audit_log_action_idx"}},
		"actor, range": {billing.AuditQuery{Limit: 50, Actor: "ops:delivery", From: at.Add(-time.Hour), To: at}, []string{"USING INDEX audit_log_actor_idx (actor=? AND"}},
	} {
		stmt := auditSelect(db.read.Session(&gorm.Session{DryRun: true}), c.q).Find(&[]auditRow{}).Statement
		got := queryPlan(t, db, stmt.SQL.String(), stmt.Vars...)
		found := false
		for _, w := range c.want {
			found = found || strings.Contains(got, w)
		}
		if !found || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s: plan %q, want one of %q without a sort", name, got, c.want)
		}
	}
}
