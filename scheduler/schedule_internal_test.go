package scheduler

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// "@every d" fires at the multiples of d, whenever the process started,
// so that replicas share their ticks; other specs are cron's.
func TestEveryIsAlignedToItsInterval(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05.000", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		spec, from, want string
	}{
		{"@every 1s", "2026-03-01 12:00:03.450", "2026-03-01 12:00:04.000"},
		{"@every 5s", "2026-03-01 12:00:03.450", "2026-03-01 12:00:05.000"},
		{"@every 5s", "2026-03-01 12:00:05.000", "2026-03-01 12:00:10.000"},
		{"@every 1m", "2026-03-01 12:00:41.000", "2026-03-01 12:01:00.000"},
		{"@every 10m", "2026-03-01 12:03:00.000", "2026-03-01 12:10:00.000"},
		{"@every 1h", "2026-03-01 23:59:59.999", "2026-03-02 00:00:00.000"},
		{"*/5 * * * *", "2026-03-01 12:03:00.000", "2026-03-01 12:05:00.000"},
	} {
		sched, err := parseSchedule(c.spec)
		if err != nil {
			t.Fatalf("parseSchedule(%q): %v", c.spec, err)
		}
		if got := sched.Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%s: Next(%s) = %s, want %s", c.spec, c.from, got.In(shanghai).Format("15:04:05.000"), c.want)
		}
	}
	if _, ok := mustParse(t, "*/5 * * * *").(*cron.SpecSchedule); !ok {
		t.Errorf("a cron expression is not cron's own schedule")
	}
	if _, err := parseSchedule("every ten minutes"); err == nil {
		t.Errorf("parseSchedule accepted a bad spec")
	}
}

func mustParse(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := parseSchedule(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
