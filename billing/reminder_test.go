package billing

import (
	"testing"
	"time"
)

func TestReminderStage(t *testing.T) {
	end := time.Date(2026, 9, 3, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		stages []int
		left   time.Duration
		want   int
		ok     bool
	}{
		{"beyond the largest stage", []int{30, 7, 1}, 31 * Day, 0, false},
		{"30 days left", []int{30, 7, 1}, 30 * Day, 30, true},
		{"8 days left", []int{30, 7, 1}, 8 * Day, 30, true},
		{"5 days left: only the nearest", []int{30, 7, 1}, 5 * Day, 7, true},
		{"an hour left", []int{30, 7, 1}, time.Hour, 1, true},
		{"ended", []int{30, 7, 1}, 0, 0, false},
		{"unsorted, repeated stages", []int{1, 7, 7, 30}, 5 * Day, 7, true},
		{"no stages", nil, time.Hour, 0, false},
	}
	for _, c := range cases {
		got, ok := ReminderStage(c.stages, end, end.Add(-c.left))
		if got != c.want || ok != c.ok {
			t.Errorf("%s: ReminderStage() = %d, %v, want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestExpiringNoticeKey(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	end := time.Date(2026, 9, 3, 0, 0, 0, 0, loc)
	a := ExpiringNotice("LSVAX4E10P2000001", "o", 7, end, loc)
	b := ExpiringNotice("LSVAX4E10P2000001", "o", 7, end.Add(31*Day), loc)
	c := ExpiringNotice("LSVAX4E10P2000001", "o", 1, end, loc)
	if a.DedupeKey == b.DedupeKey || a.DedupeKey == c.DedupeKey {
		t.Errorf("keys %q, %q, %q must differ by coverage end and stage", a.DedupeKey, b.DedupeKey, c.DedupeKey)
	}
	if got := a.Data["covered_until"]; got != "2026-09-03T00:00:00+08:00" {
		t.Errorf("covered_until = %v, want 2026-09-03T00:00:00+08:00", got)
	}
}

func TestNextAttempt(t *testing.T) {
	created := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		now      time.Time
		attempts int
		jitter   float64
		wantNext time.Time
		wantDead bool
	}{
		{"first failure, no jitter", created, 1, 0, created.Add(5 * time.Second), false},
		{"first failure, most jitter", created, 1, 0.999999, created.Add(10*time.Second - 5*time.Microsecond), false},
		{"third failure", created, 3, 0, created.Add(20 * time.Second), false},
		{"capped at an hour", created, 30, 1, created.Add(time.Hour), false},
		{"not past the window", created.Add(23*time.Hour + 50*time.Minute), 30, 0.5, created.Add(24 * time.Hour), false},
		{"window over", created.Add(24 * time.Hour), 31, 0.5, time.Time{}, true},
	}
	for _, c := range cases {
		next, dead := NextAttempt(created, c.now, c.attempts, c.jitter)
		if !next.Equal(c.wantNext) || dead != c.wantDead {
			t.Errorf("%s: NextAttempt() = %s, %v, want %s, %v", c.name, next, dead, c.wantNext, c.wantDead)
		}
	}
}
