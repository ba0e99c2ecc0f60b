package billing

import (
	"testing"
	"time"
	_ "time/tzdata" // the zone rules these tests rely on, whatever the host has
)

// mustZone loads a zone or stops the test.
func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// mustTime parses an RFC 3339 instant or stops the test.
func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time.Parse(%q): %v", s, err)
	}
	return v
}

// wantLocalMidnight fails unless got is 00:00:00 local in loc.
func wantLocalMidnight(t *testing.T, what string, got time.Time, loc *time.Location) {
	t.Helper()
	if h, m, s := got.In(loc).Clock(); h != 0 || m != 0 || s != 0 || got.Nanosecond() != 0 {
		t.Errorf("%s = %s, want local midnight in %s", what, got.In(loc).Format(time.RFC3339Nano), loc)
	}
}

func TestAddMonthsClamped(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	tests := []struct {
		name   string
		at     string
		months int
		want   string
	}{
		{"same date a year later", "2025-04-03T15:20:00+08:00", 12, "2026-04-03T00:00:00+08:00"},
		{"zero months is local midnight", "2025-04-03T15:20:00+08:00", 0, "2025-04-03T00:00:00+08:00"},
		{"Jan 31 plus 1 clamps to Feb 28", "2025-01-31T10:00:00+08:00", 1, "2025-02-28T00:00:00+08:00"},
		{"Jan 31 plus 1 in a leap year is Feb 29", "2024-01-31T10:00:00+08:00", 1, "2024-02-29T00:00:00+08:00"},
		{"Mar 31 plus 1 clamps to Apr 30", "2025-03-31T10:00:00+08:00", 1, "2025-04-30T00:00:00+08:00"},
		{"Aug 31 plus 1 clamps to Sep 30", "2025-08-31T10:00:00+08:00", 1, "2025-09-30T00:00:00+08:00"},
		{"Dec 31 plus 2 crosses the year and clamps", "2025-12-31T10:00:00+08:00", 2, "2026-02-28T00:00:00+08:00"},
		{"Nov 30 plus 3 into a leap February", "2027-11-30T10:00:00+08:00", 3, "2028-02-29T00:00:00+08:00"},
		{"Feb 29 plus 12", "2024-02-29T10:00:00+08:00", 12, "2025-02-28T00:00:00+08:00"},
		{"Feb 29 plus 48 is Feb 29 again", "2024-02-29T10:00:00+08:00", 48, "2028-02-29T00:00:00+08:00"},
		{"Feb 28 plus 1 is Mar 28, not month end", "2025-02-28T10:00:00+08:00", 1, "2025-03-28T00:00:00+08:00"},
		{"2100 is not a leap year", "2096-02-29T10:00:00+08:00", 48, "2100-02-28T00:00:00+08:00"},
		{"2000 is a leap year", "1999-02-28T10:00:00+08:00", 12, "2000-02-28T00:00:00+08:00"},
		{"UTC instant on the next local day", "2025-01-31T20:00:00Z", 1, "2025-03-01T00:00:00+08:00"},
		{"UTC instant still on the local day", "2025-01-31T15:59:59Z", 1, "2025-02-28T00:00:00+08:00"},
		{"120 months", "2025-05-31T08:00:00+08:00", 120, "2035-05-31T00:00:00+08:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AddMonthsClamped(mustTime(t, tt.at), tt.months, sh)
			if want := mustTime(t, tt.want); !got.Equal(want) {
				t.Errorf("AddMonthsClamped(%s, %d) = %s, want %s", tt.at, tt.months, got.In(sh).Format(time.RFC3339), tt.want)
			}
			wantLocalMidnight(t, "AddMonthsClamped", got, sh)
		})
	}
}

// In a zone with daylight saving time a month is not a multiple of 24
// hours: the answer must still be local midnight, never 23:00 or 01:00.
func TestAddMonthsClampedAcrossDST(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	tests := []struct {
		name   string
		at     string
		months int
		want   string
		hours  float64 // length of the span from local midnight of at to want
	}{
		{"spring forward", "2026-02-15T12:00:00-05:00", 1, "2026-03-15T00:00:00-04:00", 28*24 - 1},
		{"fall back", "2026-10-15T12:00:00-04:00", 1, "2026-11-15T00:00:00-05:00", 31*24 + 1},
		{"Jan 31 into the DST month", "2026-01-31T23:30:00-05:00", 2, "2026-03-31T00:00:00-04:00", 59*24 - 1},
		{"from the short day itself", "2026-03-08T12:00:00-04:00", 1, "2026-04-08T00:00:00-04:00", 31*24 - 1},
		{"a whole year has both changes", "2026-01-10T09:00:00-05:00", 12, "2027-01-10T00:00:00-05:00", 365 * 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := mustTime(t, tt.at)
			got := AddMonthsClamped(at, tt.months, ny)
			if want := mustTime(t, tt.want); !got.Equal(want) {
				t.Errorf("AddMonthsClamped(%s, %d) = %s, want %s", tt.at, tt.months, got.In(ny).Format(time.RFC3339), tt.want)
			}
			wantLocalMidnight(t, "AddMonthsClamped", got, ny)
			if h := got.Sub(LocalMidnight(at, ny)).Hours(); h != tt.hours {
				t.Errorf("AddMonthsClamped(%s, %d) - LocalMidnight = %vh, want %vh", tt.at, tt.months, h, tt.hours)
			}
		})
	}
}

func TestLocalMidnight(t *testing.T) {
	tests := []struct {
		name string
		zone string
		at   string
		want string
	}{
		{"afternoon", "Asia/Shanghai", "2025-04-03T15:20:00+08:00", "2025-04-03T00:00:00+08:00"},
		{"midnight is its own day", "Asia/Shanghai", "2025-04-03T00:00:00+08:00", "2025-04-03T00:00:00+08:00"},
		{"last second of the day", "Asia/Shanghai", "2025-04-03T23:59:59+08:00", "2025-04-03T00:00:00+08:00"},
		{"last nanosecond of the day", "Asia/Shanghai", "2025-04-03T23:59:59.999999999+08:00", "2025-04-03T00:00:00+08:00"},
		{"UTC evening is the next local day", "Asia/Shanghai", "2024-01-31T23:30:00Z", "2024-02-01T00:00:00+08:00"},
		{"UTC 15:59:59 is still the local day", "Asia/Shanghai", "2024-01-31T15:59:59Z", "2024-01-31T00:00:00+08:00"},
		{"New Year in UTC+14 offset input", "Asia/Shanghai", "2026-01-01T05:00:00+14:00", "2025-12-31T00:00:00+08:00"},
		// China observed daylight saving time from 1986 to 1991.
		{"China 1988 DST day", "Asia/Shanghai", "1988-07-01T12:00:00+09:00", "1988-07-01T00:00:00+09:00"},
		{"China 1988 DST start day", "Asia/Shanghai", "1988-04-17T12:00:00+09:00", "1988-04-17T00:00:00+08:00"},
		{"China 1988 DST end day", "Asia/Shanghai", "1988-09-11T12:00:00+08:00", "1988-09-11T00:00:00+09:00"},
		{"New York spring forward day", "America/New_York", "2026-03-08T12:00:00-04:00", "2026-03-08T00:00:00-05:00"},
		{"New York fall back day", "America/New_York", "2026-11-01T23:00:00-05:00", "2026-11-01T00:00:00-04:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			got := LocalMidnight(mustTime(t, tt.at), loc)
			if want := mustTime(t, tt.want); !got.Equal(want) {
				t.Errorf("LocalMidnight(%s) = %s, want %s", tt.at, got.In(loc).Format(time.RFC3339), tt.want)
			}
			wantLocalMidnight(t, "LocalMidnight", got, loc)
		})
	}
}

func TestAddDaysLocal(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	sh := mustZone(t, "Asia/Shanghai")
	tests := []struct {
		name string
		loc  *time.Location
		at   string
		days int
		want string
	}{
		{"next day", sh, "2025-04-03T15:20:00+08:00", 1, "2025-04-04T00:00:00+08:00"},
		{"over month end", sh, "2025-01-31T15:20:00+08:00", 1, "2025-02-01T00:00:00+08:00"},
		{"leap day", sh, "2024-02-28T15:20:00+08:00", 1, "2024-02-29T00:00:00+08:00"},
		{"back a week", sh, "2025-03-03T15:20:00+08:00", -7, "2025-02-24T00:00:00+08:00"},
		{"over spring forward", ny, "2026-03-07T12:00:00-05:00", 2, "2026-03-09T00:00:00-04:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AddDaysLocal(mustTime(t, tt.at), tt.days, tt.loc)
			if want := mustTime(t, tt.want); !got.Equal(want) {
				t.Errorf("AddDaysLocal(%s, %d) = %s, want %s", tt.at, tt.days, got.In(tt.loc).Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestCycleAt(t *testing.T) {
	tests := []struct {
		name       string
		zone       string
		at         string
		start, end string
		key        string
	}{
		{"UTC afternoon of Jan 31 is February in Shanghai", "Asia/Shanghai", "2026-01-31T16:30:00Z",
			"2026-02-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00", "2026-02"},
		{"one second earlier is January", "Asia/Shanghai", "2026-01-31T15:59:59Z",
			"2026-01-01T00:00:00+08:00", "2026-02-01T00:00:00+08:00", "2026-01"},
		{"first instant of a month belongs to it", "Asia/Shanghai", "2026-03-01T00:00:00+08:00",
			"2026-03-01T00:00:00+08:00", "2026-04-01T00:00:00+08:00", "2026-03"},
		{"last instant of a month belongs to it", "Asia/Shanghai", "2026-03-31T23:59:59.999999999+08:00",
			"2026-03-01T00:00:00+08:00", "2026-04-01T00:00:00+08:00", "2026-03"},
		{"December ends in the next year", "Asia/Shanghai", "2025-12-15T08:00:00+08:00",
			"2025-12-01T00:00:00+08:00", "2026-01-01T00:00:00+08:00", "2025-12"},
		{"UTC New Year's Eve is January in Shanghai", "Asia/Shanghai", "2025-12-31T16:00:00Z",
			"2026-01-01T00:00:00+08:00", "2026-02-01T00:00:00+08:00", "2026-01"},
		{"leap February", "Asia/Shanghai", "2028-02-29T12:00:00+08:00",
			"2028-02-01T00:00:00+08:00", "2028-03-01T00:00:00+08:00", "2028-02"},
		{"New York March spans spring forward", "America/New_York", "2026-03-20T12:00:00-04:00",
			"2026-03-01T00:00:00-05:00", "2026-04-01T00:00:00-04:00", "2026-03"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			got := CycleAt(mustTime(t, tt.at), loc)
			if want := mustTime(t, tt.start); !got.Start.Equal(want) {
				t.Errorf("CycleAt(%s).Start = %s, want %s", tt.at, got.Start.In(loc).Format(time.RFC3339), tt.start)
			}
			if want := mustTime(t, tt.end); !got.End.Equal(want) {
				t.Errorf("CycleAt(%s).End = %s, want %s", tt.at, got.End.In(loc).Format(time.RFC3339), tt.end)
			}
			if k := got.Key(); k != tt.key {
				t.Errorf("CycleAt(%s).Key() = %q, want %q", tt.at, k, tt.key)
			}
			if at := mustTime(t, tt.at); at.Before(got.Start) || !at.Before(got.End) {
				t.Errorf("CycleAt(%s) = [%s, %s), does not contain the instant", tt.at, got.Start, got.End)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	shanghai := mustZone(t, "Asia/Shanghai")
	at := time.Date(2026, 6, 15, 4, 0, 0, 999_000_000, time.UTC)
	for _, tc := range []struct {
		loc  *time.Location
		want string
	}{
		{shanghai, "2026-06-15T12:00:00+08:00"},
		{time.UTC, "2026-06-15T04:00:00Z"},
		{time.FixedZone("", -(3*3600 + 1800)), "2026-06-15T00:30:00-03:30"},
	} {
		if got := Stamp(at, tc.loc); got != tc.want {
			t.Errorf("Stamp(%v, %v) = %s, want %s", at, tc.loc, got, tc.want)
		}
	}
}
