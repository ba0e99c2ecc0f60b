package store

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Helpers for bulk statements sent past gorm's SQL builder: statement
// sizes, placeholders in the driver's own syntax, argument encoding and
// row iteration.

// eachRow calls fn for every row and closes rows.
func eachRow(rows *sql.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// chunkSizes splits n rows into statement sizes: as many of max as fit,
// then the rest by powers of two. The sizes come from a fixed set of
// log2(max)+1 values, so that the statement cache holds a bounded number
// of statement shapes however batch sizes vary.
func chunkSizes(n, max int) []int {
	var out []int
	for ; n >= max; n -= max {
		out = append(out, max)
	}
	for p := max / 2; p > 0; p /= 2 {
		if n >= p {
			out = append(out, p)
			n -= p
		}
	}
	return out
}

// Statements are written in SQLite's placeholder syntax: ? for the next
// variable, ?N for the N-th. rebind, applied once where a statement is
// prepared (stmtCache), turns them into PostgreSQL's $N.

// placeholders is n comma-separated ? placeholders.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// rebind returns q with its placeholders in the dialect's syntax:
// unchanged on SQLite; on PostgreSQL ? becomes $N (numbered from 1, in
// order) and ?N becomes $N. Quoted strings are left alone.
func rebind(dialect, q string) string {
	if dialect != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(q)/8)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
				i = j - 1
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// insertSQL is a multi-row INSERT of rows rows into table, followed by
// tail (an ON CONFLICT clause, RETURNING): the store's one bulk-insert
// builder. Each row has len(cols) variables of its own, after variables
// 1..len(shared) that every row repeats at its end (a timestamp common to
// the batch, say). Statement sizes come from chunkSizes, so that the
// statement cache holds a bounded number of shapes.
func insertSQL(table string, cols, shared []string, rows int, tail string) string {
	var b strings.Builder
	b.Grow(64 + rows*(len(cols)+len(shared))*7)
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(append(append([]string(nil), cols...), shared...), ", ") + ") VALUES ")
	n := len(shared)
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			n++
			b.WriteString("?" + strconv.Itoa(n))
		}
		for i := 1; i <= len(shared); i++ {
			b.WriteString(",?" + strconv.Itoa(i))
		}
		b.WriteByte(')')
	}
	if tail != "" {
		b.WriteString(" " + tail)
	}
	return b.String()
}

// bulkTable is a table that multi-row statements insert into: the
// columns each row has of its own, and those every row shares (the
// statement's first variables).
type bulkTable struct {
	name   string
	cols   []bulkCol
	shared []bulkCol
}

// bulkCol is a column of a bulkTable and its PostgreSQL type, for
// bulkInsertSQL's casts and arrays.
type bulkCol struct{ name, pgType string }

// colNames returns the columns' names.
func colNames(cols ...[]bulkCol) []string {
	var out []string
	for _, cs := range cols {
		for _, c := range cs {
			out = append(out, c.name)
		}
	}
	return out
}

// bulkInsertSQL is the multi-row INSERT of rows rows into t, followed by
// tail. On SQLite it is insertSQL's. On PostgreSQL the rows come as one
// array per column (bulkArgs) that unnest turns back into rows: one
// statement of len(cols)+len(shared) variables whatever the rows, which
// PostgreSQL binds as len(cols) values, where insertSQL's binds a
// variable per row and column (7 168 for a chunk of usage records).
func (db *DB) bulkInsertSQL(t bulkTable, rows int, tail string) string {
	if db.dialect != Postgres {
		return insertSQL(t.name, colNames(t.cols), colNames(t.shared), rows, tail)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.name + " (" + strings.Join(colNames(t.cols, t.shared), ", ") + ") SELECT u.*")
	for i, c := range t.shared {
		fmt.Fprintf(&b, ", ?%d::%s", i+1, c.pgType)
	}
	b.WriteString(" FROM unnest(")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "?%d::%s[]", len(t.shared)+i+1, c.pgType)
	}
	b.WriteString(") AS u")
	if tail != "" {
		b.WriteString(" " + tail)
	}
	return b.String()
}

// bulkArgs turns args, in insertSQL's order (t's shared values, then
// each row's own), into bulkInsertSQL's variables: unchanged on SQLite;
// on PostgreSQL the shared values, then an array per column, typed
// (column) so that pgx encodes it without reflection.
func (db *DB) bulkArgs(t bulkTable, args []any) []any {
	if db.dialect != Postgres {
		return args
	}
	s, w := len(t.shared), len(t.cols)
	out := append(make([]any, 0, s+w), args[:s]...)
	rows := (len(args) - s) / w
	for c := range w {
		out = append(out, column(args[s+c:], rows, w))
	}
	return out
}

// column gathers rows values from flat, one every stride, into a slice
// of their type when they all are strings, int64s or instants (the
// columns of the bulk statements), and into []any otherwise.
func column(flat []any, rows, stride int) any {
	if rows == 0 {
		return []any{}
	}
	at := func(r int) any { return flat[r*stride] }
	switch at(0).(type) {
	case string:
		if col, ok := typedColumn[string](at, rows); ok {
			return col
		}
	case int64:
		if col, ok := typedColumn[int64](at, rows); ok {
			return col
		}
	case time.Time:
		if col, ok := typedColumn[time.Time](at, rows); ok {
			return col
		}
	}
	col := make([]any, rows)
	for r := range col {
		col[r] = at(r)
	}
	return col
}

func typedColumn[T any](at func(r int) any, rows int) ([]T, bool) {
	col := make([]T, rows)
	for r := range col {
		v, ok := at(r).(T)
		if !ok {
			return nil, false
		}
		col[r] = v
	}
	return col, true
}

// bulkKey is the statement cache's key of a bulk statement of rows rows
// or VINs: on PostgreSQL one statement serves every size.
func (db *DB) bulkKey(key string, rows int) string {
	if db.dialect == Postgres {
		return key
	}
	return key + "/" + strconv.Itoa(rows)
}

// inList is the condition that col is one of n values: col IN (?, ...)
// on SQLite; on PostgreSQL col = ANY of one text array (listArgs), one
// statement whatever n.
func (db *DB) inList(col string, n int) string {
	if db.dialect == Postgres {
		return col + " = ANY(?::text[])"
	}
	return col + " IN (" + placeholders(n) + ")"
}

// listArgs is inList's variables for values: unchanged on SQLite, one
// array on PostgreSQL.
func (db *DB) listArgs(values []any) []any {
	if db.dialect == Postgres {
		return []any{column(values, len(values), 1)}
	}
	return values
}

// maxVariables bounds the variables of one statement: under SQLite's
// 32766 and PostgreSQL's 65535.
const maxVariables = 30000

// rowsPerInsert is the largest power of two of rows of cols variables
// (and shared ones) that fits maxVariables, at most 1024.
func rowsPerInsert(cols, shared int) int {
	n := 1024
	for n > 1 && shared+n*cols > maxVariables {
		n /= 2
	}
	return n
}

// timeArg is an instant as a statement argument, stored as utc() does. On
// SQLite it is the text mattn/go-sqlite3 would write for the time.Time
// ("2006-01-02 15:04:05.999999999-07:00" in UTC), formatted without
// time.Format's general machinery: a 10 000-record batch has 20 000.
func (db *DB) timeArg(t time.Time) any {
	t = utc(t)
	if db.dialect == Postgres {
		return t
	}
	return sqliteTime(t)
}

// timeOrNull is timeArg of t, or NULL for the zero instant.
func (db *DB) timeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.timeArg(t)
}

// timePtr is timeArg of *t, or NULL.
func (db *DB) timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.timeArg(*t)
}

// sqliteTime formats a UTC instant like
// t.Format("2006-01-02 15:04:05.999999999-07:00").
func sqliteTime(t time.Time) string {
	var buf [35]byte
	b := buf[:0]
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, ' ')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	if ns := t.Nanosecond(); ns != 0 {
		b = append(b, '.')
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		b = appendDigits(b, ns, digits)
	}
	b = append(b, "+00:00"...)
	return string(b)
}

// appendDigits appends v zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}

// parseSQLiteTime reads the text sqliteTime writes (and mattn/go-sqlite3
// writes for a UTC time.Time), "2006-01-02 15:04:05[.fffffffff]+00:00",
// without time.Parse's general machinery; anything else goes to
// time.Parse with the layouts mattn/go-sqlite3 accepts.
func parseSQLiteTime(s string) (time.Time, error) {
	if t, ok := parseUTCStamp(s); ok {
		return t, nil
	}
	s = strings.TrimSuffix(s, "Z")
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02T15:04:05.999999999-07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %q", s)
}

func parseUTCStamp(s string) (time.Time, bool) {
	if len(s) < 25 || !strings.HasSuffix(s, "+00:00") || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	switch frac := s[19 : len(s)-6]; {
	case frac == "":
	case len(frac) >= 2 && len(frac) <= 10 && frac[0] == '.':
		n, ok := num(20, 19+len(frac))
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		ns = n
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Day() != d { // 31 April and the like
		return time.Time{}, false
	}
	return t, true
}

// dbTime scans an instant as either driver returns it: a time.Time
// (PostgreSQL, and SQLite for a DATETIME column) or text (SQLite for an
// expression over such a column, see timeCol), or NULL.
type dbTime struct {
	T     time.Time
	Valid bool
}

func (t *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = dbTime{}
	case time.Time:
		*t = dbTime{T: v.UTC(), Valid: true}
	case string:
		p, err := parseSQLiteTime(v)
		if err != nil {
			return err
		}
		*t = dbTime{T: p, Valid: true}
	case []byte:
		return t.Scan(string(v))
	default:
		return fmt.Errorf("cannot scan %T into a time", v)
	}
	return nil
}

func (t dbTime) ptr() *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.T
	return &u
}

// timeCol selects an instant column for dbTime. On SQLite it is the
// expression +col (unary plus changes nothing but hides the column's
// declared type), so that mattn/go-sqlite3 hands over the text instead of
// trying time layouts one after another with time.Parse.
func (db *DB) timeCol(col string) string {
	if db.dialect == SQLite {
		return "+" + col + " AS " + col[strings.LastIndexByte(col, '.')+1:]
	}
	return col
}
