package store

import (
	"database/sql"
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

// chunks splits args by chunkSizes.
func chunks(args []any, max int) [][]any {
	var out [][]any
	for _, n := range chunkSizes(len(args), max) {
		out = append(out, args[:n])
		args = args[n:]
	}
	return out
}

// param is the i-th (from 1) placeholder in the driver's syntax.
func (db *DB) param(i int) string {
	if db.dialect == Postgres {
		return "$" + strconv.Itoa(i)
	}
	return "?"
}

// params is n comma-separated placeholders starting at the first-th.
func (db *DB) params(first, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(db.param(first + i))
	}
	return b.String()
}

// valuesList returns "(?2,?3,?1),(?4,?5,?1)..." for rows × cols in the
// driver's placeholder syntax (?N on SQLite, $N on PostgreSQL): each row
// has cols variables of its own, after shared variables 1..shared that
// every row repeats at its end.
func (db *DB) valuesList(rows, cols, shared int) string {
	var b strings.Builder
	b.Grow(rows * (cols + shared) * 7)
	n := shared
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			n++
			b.WriteString(db.numbered(n))
		}
		for i := 1; i <= shared; i++ {
			b.WriteByte(',')
			b.WriteString(db.numbered(i))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// numbered is the i-th (from 1) variable, numbered explicitly.
func (db *DB) numbered(i int) string {
	if db.dialect == Postgres {
		return "$" + strconv.Itoa(i)
	}
	return "?" + strconv.Itoa(i)
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
