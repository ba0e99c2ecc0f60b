package store

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"entitlements/billing"
)

// timelineWrite matches SQL that writes a vehicle's timeline: its periods,
// or the vehicle row (owner, epoch, coverage end).
var (
	timelineWrite = regexp.MustCompile(`(?i)\b(INSERT\s+INTO|UPDATE)\s+(periods|vehicles)\b`)
	periodWrite   = regexp.MustCompile(`(?i)\b(INSERT\s+INTO|UPDATE)\s+periods\b`)
)

// TestEveryTimelineWriteIsVersioned fails for a store function that runs
// a statement writing periods without reporting the periods' new state
// (Tx.periodWritten), or one writing vehicles without that or marking the
// vehicle (Tx.timelineChanged), which is what makes DB.write record a
// version, and for a bulk insert into those tables that does not insert
// the versions with them (the seed).
func TestEveryTimelineWriteIsVersioned(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	type fileAST struct {
		fset *token.FileSet
		file *ast.File
	}
	var parsed []fileAST
	stmts := map[string]bool{}   // statement vars and methods whose SQL writes the timeline
	periods := map[string]bool{} // those of them that write periods
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, fileAST{fset, file})
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					vs, ok := s.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, v := range vs.Values {
						if cl, ok := v.(*ast.CompositeLit); ok && isIdent(cl.Type, "statement") && writesTimeline(cl, timelineWrite) {
							stmts[vs.Names[i].Name] = true
							periods[vs.Names[i].Name] = writesTimeline(cl, periodWrite)
						}
					}
				}
			case *ast.FuncDecl:
				if d.Type.Results != nil && len(d.Type.Results.List) == 1 && isIdent(d.Type.Results.List[0].Type, "statement") &&
					writesTimeline(d.Body, timelineWrite) {
					stmts[d.Name.Name] = true
					periods[d.Name.Name] = writesTimeline(d.Body, periodWrite)
				}
			}
		}
	}
	if len(stmts) < 6 {
		t.Fatalf("found %d statements that write periods or vehicles (%v); the scan is not looking at the store", len(stmts), stmts)
	}
	for _, pf := range parsed {
		for _, d := range pf.file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || stmts[fn.Name.Name] {
				continue
			}
			var uses, periodUses []string
			marks, reports, bulk, versions, inserts := false, false, false, false, false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.Ident:
					if stmts[n.Name] {
						uses = append(uses, n.Name)
					}
					if periods[n.Name] {
						periodUses = append(periodUses, n.Name)
					}
					switch n.Name {
					case "timelineChanged":
						marks = true
					case "periodWritten":
						reports = true
					case "seedStatement", "insertSQL": // a multi-row INSERT built or run
						inserts = true
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						s, _ := strconv.Unquote(n.Value)
						bulk = bulk || s == "periods" || s == "vehicles"
						versions = versions || s == "timeline_versions"
					}
				}
				return true
			})
			if len(periodUses) > 0 && !reports {
				t.Errorf("%s: %s runs %v, which writes periods, without Tx.periodWritten: the version would miss them",
					pf.fset.Position(fn.Pos()), fn.Name.Name, periodUses)
			} else if len(uses) > 0 && !marks && !reports {
				t.Errorf("%s: %s runs %v, which writes a vehicle, without Tx.timelineChanged: no version would be recorded",
					pf.fset.Position(fn.Pos()), fn.Name.Name, uses)
			}
			if bulk && inserts && !versions {
				t.Errorf("%s: %s names the periods or vehicles table without inserting timeline_versions", pf.fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func writesTimeline(n ast.Node, re *regexp.Regexp) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, err := strconv.Unquote(lit.Value)
			found = found || (err == nil && re.MatchString(s))
		}
		return !found
	})
	return found
}

// TestTimelineChangeNeedsItsCause: a write that changes a timeline without
// an audit entry for the vehicle (the version's cause) fails and leaves
// nothing; with one, the version is recorded with the entry's action and
// time.
func TestTimelineChangeNeedsItsCause(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "cause.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, loc)
	vin := billing.VIN(billing.FixCheckDigit("LSVHS4E10P2000100"))
	if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: now, OwnerID: "alice"}, billing.TrialTerms{Months: 12}, loc, now); err != nil {
		t.Fatal(err)
	}
	transfer := func(audited bool, at time.Time) error {
		return db.write(ctx, nil, func(tx *Tx) error {
			if err := tx.timelineChanged(vin); err != nil {
				return err
			}
			if _, err := tx.exec(transferStmt, "bob", db.timeArg(at), string(vin)); err != nil {
				return err
			}
			if audited {
				tx.audit(billing.AuditEntry{At: at, Action: billing.AuditOwnerTransferred, VIN: vin})
			}
			return nil
		})
	}
	if err := transfer(false, now.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "without an audit entry") {
		t.Fatalf("an unaudited timeline change = %v, want it refused", err)
	}
	if v, err := db.Vehicle(ctx, vin); err != nil || v.OwnerID != "alice" {
		t.Fatalf("after the refused change: owner %q, %v; want alice", v.OwnerID, err)
	}
	if err := transfer(true, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	hist, err := db.TimelineHistory(ctx, vin)
	if err != nil || len(hist) != 2 || hist[0].Cause != string(billing.AuditOwnerTransferred) || !hist[0].RecordedAt.Equal(now.Add(2*time.Hour)) ||
		hist[0].OwnerID != "bob" || hist[0].Epoch != 1 || len(hist[0].Periods) != 0 {
		t.Errorf("history = %+v, %v; want the transfer on top of the activation", hist, err)
	}
}

// TestPointInTimeQueryPlans: on SQLite the point-in-time reads seek by
// VIN: the version lookup by the timeline_versions key, the period
// versions by theirs, a month's arrivals by theirs.
func TestPointInTimeQueryPlans(t *testing.T) {
	db := planStore(t)
	now := time.Date(2026, 2, 28, 16, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		st   statement
		args []any
		want string
	}{
		{db.versionAtStmt(), []any{"V", db.timeArg(now)}, "SEARCH timeline_versions USING PRIMARY KEY (vin=?)"},
		{db.periodVersionsStmt(), []any{"V", 3, 3}, "SEARCH period_versions USING PRIMARY KEY (vin=?)"},
		{db.cycleArrivalsStmt(), []any{"2026-02", "V"}, "SEARCH usage_arrivals USING PRIMARY KEY (cycle=? AND vin=?)"},
		{db.cycleTotalsStmt(), []any{"V"}, "SEARCH usage_cycles USING"},
		{db.lastVersionStmt(), []any{"V"}, "SEARCH tv USING PRIMARY KEY (vin=? AND version=?)"},
		{db.versionGuardStmt(), []any{"V"}, "SEARCH tv USING PRIMARY KEY (vin=?)"},
	} {
		plan := queryPlan(t, db, c.st.query(), c.args...)
		if !strings.Contains(plan, c.want) {
			t.Errorf("%s: plan\n%s\nwant %s", c.st.key, plan, c.want)
		}
	}
}
