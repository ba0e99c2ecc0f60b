package store

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

func TestSQLiteTimeMatchesDriverFormat(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC),
		time.Date(2015, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 3, 9, 7, 5, 3, 120000000, time.UTC),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(2_000_000_000)+1_400_000_000, r.Int64N(1e9)).UTC().Truncate(time.Microsecond))
	}
	for _, tm := range times {
		if got, want := sqliteTime(tm), tm.Format(sqlite3.SQLiteTimestampFormats[0]); got != want {
			t.Fatalf("sqliteTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func TestChunkSizes(t *testing.T) {
	tests := []struct {
		n, max int
		want   []int
	}{
		{0, 1024, nil},
		{1, 1024, []int{1}},
		{1024, 1024, []int{1024}},
		{10000, 1024, []int{1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 512, 256, 16}},
		{7, 4, []int{4, 2, 1}},
	}
	for _, tc := range tests {
		got := chunkSizes(tc.n, tc.max)
		sum := 0
		for _, g := range got {
			sum += g
		}
		if len(got) != len(tc.want) || sum != tc.n {
			t.Errorf("chunkSizes(%d, %d) = %v, want %v", tc.n, tc.max, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("chunkSizes(%d, %d) = %v, want %v", tc.n, tc.max, got, tc.want)
				break
			}
		}
	}
}

func TestInsertSQL(t *testing.T) {
	got := insertSQL("t", []string{"a", "b"}, []string{"at"}, 2, "ON CONFLICT DO NOTHING")
	want := "INSERT INTO t (a, b, at) VALUES (?2,?3,?1),(?4,?5,?1) ON CONFLICT DO NOTHING"
	if got != want {
		t.Errorf("insertSQL() = %q, want %q", got, want)
	}
	if got := rebind(Postgres, want); got != "INSERT INTO t (a, b, at) VALUES ($2,$3,$1),($4,$5,$1) ON CONFLICT DO NOTHING" {
		t.Errorf("rebind(postgres) = %q", got)
	}
	if n := rowsPerInsert(14, 0); n != 1024 {
		t.Errorf("rowsPerInsert(14, 0) = %d, want 1024", n)
	}
	if n := rowsPerInsert(40, 4); n*40+4 > maxVariables || n*2*40+4 <= maxVariables {
		t.Errorf("rowsPerInsert(40, 4) = %d: not the largest power of two under %d variables", n, maxVariables)
	}
}

// TestBulkArgs: on PostgreSQL a bulk insert takes the shared values and
// then one array per column, which unnest turns back into the rows
// insertSQL would have bound one variable at a time; SQLite keeps those.
func TestBulkArgs(t *testing.T) {
	tbl := bulkTable{"t", []bulkCol{{"a", "text"}, {"b", "bigint"}}, []bulkCol{{"at", "timestamptz"}}}
	args := []any{"now", "x", int64(1), "y", int64(2), "z", int64(3)}
	pg, lite := &DB{dialect: Postgres}, &DB{dialect: SQLite}
	if got := lite.bulkArgs(tbl, args); !reflect.DeepEqual(got, args) {
		t.Errorf("sqlite bulkArgs = %v, want them unchanged", got)
	}
	want := []any{"now", []string{"x", "y", "z"}, []int64{1, 2, 3}}
	if got := pg.bulkArgs(tbl, args); !reflect.DeepEqual(got, want) {
		t.Errorf("postgres bulkArgs = %#v, want %#v", got, want)
	}
	at := time.Date(2026, 2, 28, 16, 0, 0, 0, time.UTC)
	mixed := []any{"now", at, nil, at.Add(time.Hour), int64(4)}
	want = []any{"now", []time.Time{at, at.Add(time.Hour)}, []any{nil, int64(4)}}
	if got := pg.bulkArgs(tbl, mixed); !reflect.DeepEqual(got, want) {
		t.Errorf("postgres bulkArgs of a column with a NULL = %#v, want %#v", got, want)
	}
	if got := pg.listArgs([]any{"a", "b"}); !reflect.DeepEqual(got, []any{[]string{"a", "b"}}) {
		t.Errorf("postgres listArgs = %#v", got)
	}
	if got, want := rebind(Postgres, pg.bulkInsertSQL(tbl, 3, "ON CONFLICT DO NOTHING")),
		"INSERT INTO t (a, b, at) SELECT u.*, $1::timestamptz FROM unnest($2::text[], $3::bigint[]) AS u ON CONFLICT DO NOTHING"; got != want {
		t.Errorf("postgres bulkInsertSQL = %q, want %q", got, want)
	}
	if got := lite.bulkInsertSQL(tbl, 2, ""); got != insertSQL("t", []string{"a", "b"}, []string{"at"}, 2, "") {
		t.Errorf("sqlite bulkInsertSQL = %q, want insertSQL's", got)
	}
	if pg.bulkKey("k", 3) != pg.bulkKey("k", 7) || lite.bulkKey("k", 3) == lite.bulkKey("k", 7) {
		t.Errorf("bulkKey: one statement for every size on PostgreSQL, one per size on SQLite")
	}
	if got := rebind(Postgres, pg.inList("vin", 5)); got != "vin = ANY($1::text[])" {
		t.Errorf("postgres inList = %q", got)
	}
	if got := lite.inList("vin", 3); got != "vin IN (?,?,?)" {
		t.Errorf("sqlite inList = %q", got)
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, sqlite, postgres string }{
		{"SELECT a FROM t WHERE a = ? AND b IN (?,?)", "SELECT a FROM t WHERE a = ? AND b IN (?,?)", "SELECT a FROM t WHERE a = $1 AND b IN ($2,$3)"},
		{"WHERE c = ?2 AND v = ?1", "WHERE c = ?2 AND v = ?1", "WHERE c = $2 AND v = $1"},
		{"WHERE s = '?' AND t = ?", "WHERE s = '?' AND t = ?", "WHERE s = '?' AND t = $1"},
		{"SELECT 1", "SELECT 1", "SELECT 1"},
	} {
		if got := rebind(SQLite, tc.in); got != tc.sqlite {
			t.Errorf("rebind(sqlite, %q) = %q, want %q", tc.in, got, tc.sqlite)
		}
		if got := rebind(Postgres, tc.in); got != tc.postgres {
			t.Errorf("rebind(postgres, %q) = %q, want %q", tc.in, got, tc.postgres)
		}
	}
}

func TestParseSQLiteTimeReadsWhatIsWritten(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		want := time.Unix(r.Int64N(5e9), 0).UTC()
		switch i % 4 {
		case 1:
			want = want.Add(time.Duration(r.Int64N(1e9))) // nanoseconds
		case 2:
			want = want.Add(time.Duration(r.Int64N(1e6)) * time.Microsecond)
		case 3:
			want = want.Add(time.Duration(r.Int64N(1e3)) * time.Millisecond)
		}
		s := sqliteTime(want)
		if s != want.Format("2006-01-02 15:04:05.999999999-07:00") {
			t.Fatalf("sqliteTime(%v) = %q", want, s)
		}
		got, err := parseSQLiteTime(s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("parseSQLiteTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for in, want := range map[string]time.Time{
		"2024-02-29 23:59:59.5+08:00":         time.Date(2024, 2, 29, 15, 59, 59, 5e8, time.UTC), // not UTC: the slow path
		"2024-02-29T23:59:59Z":                time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
		"2024-02-29 23:59:59":                 time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
		"2026-01-31 00:00:00.1+00:00":         time.Date(2026, 1, 31, 0, 0, 0, 1e8, time.UTC),
		"2026-12-31 23:59:59.000000001+00:00": time.Date(2026, 12, 31, 23, 59, 59, 1, time.UTC),
	} {
		got, err := parseSQLiteTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSQLiteTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2026-02-30 00:00:00+00:00", "2026-13-01 00:00:00+00:00", "2026-01-01 24:00:00+00:00",
		"2026-01-01 00:00:00.+00:00", "2026-01-01 0a:00:00+00:00", "yesterday"} {
		if got, err := parseSQLiteTime(in); err == nil {
			t.Errorf("parseSQLiteTime(%q) = %v, want an error", in, got)
		}
	}
}
