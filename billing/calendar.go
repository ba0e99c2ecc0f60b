package billing

import "time"

// LocalMidnight returns the start of t's calendar day in loc.
func LocalMidnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// AddMonthsClamped returns local midnight of the same calendar date months
// later in loc, clamped to the last day of the target month when that date
// does not exist (2024-02-29 + 12 months = 2025-02-28). Unlike
// time.AddDate it never spills into the following month.
func AddMonthsClamped(t time.Time, months int, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	first := time.Date(y, m+time.Month(months), 1, 0, 0, 0, 0, loc)
	if last := daysIn(first.Year(), first.Month()); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, 0, 0, 0, 0, loc)
}

// AddDaysLocal returns local midnight n calendar days after t's day in loc.
func AddDaysLocal(t time.Time, n int, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+n, 0, 0, 0, 0, loc)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Cycle is a local calendar month, the unit of the data allowance.
type Cycle struct {
	Start time.Time // local midnight of the month's first day, inclusive
	End   time.Time // local midnight of the next month's first day, exclusive
}

// CycleAt returns the calendar month of loc that contains t.
func CycleAt(t time.Time, loc *time.Location) Cycle {
	y, m, _ := t.In(loc).Date()
	start := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	return Cycle{Start: start, End: time.Date(y, m+1, 1, 0, 0, 0, 0, loc)}
}

// Key returns the cycle as "YYYY-MM", the form stored with aggregates.
func (c Cycle) Key() string { return c.Start.Format("2006-01") }

// Stamp renders the instant t as every API response, notice and webhook
// body shows it: RFC 3339, whole seconds, with the offset of loc (the
// configured timezone, SPEC section 2).
func Stamp(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.RFC3339) }
