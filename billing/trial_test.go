package billing

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostZoneEnv marks a child test process started by TestTrialHostZone; its
// value is the offset in seconds the child's time.Local must have on
// 2026-01-01, proving the TZ it was started with took effect.
const hostZoneEnv = "BILLING_TEST_HOST_ZONE_OFFSET"

func TestTrialTable(t *testing.T) {
	if want, ok := os.LookupEnv(hostZoneEnv); ok {
		_, off := time.Date(2026, 1, 1, 0, 0, 0, 0, time.Local).Zone()
		if got := strconv.Itoa(off); got != want {
			t.Fatalf("child process: time.Local offset = %s, want %s (TZ=%q)", got, want, os.Getenv("TZ"))
		}
	}
	sh := mustZone(t, "Asia/Shanghai")
	tests := []struct {
		name        string
		activatedAt string
		months      int
		start, end  string // want, in Shanghai time
	}{
		{"afternoon", "2025-04-03T15:20:00+08:00", 12, "2025-04-03T00:00:00+08:00", "2026-04-03T00:00:00+08:00"},
		{"leap day clamps to Feb 28", "2024-02-29T10:00:00+08:00", 12, "2024-02-29T00:00:00+08:00", "2025-02-28T00:00:00+08:00"},
		{"morning that is still Jan 31 in UTC", "2024-02-01T07:30:00+08:00", 12, "2024-02-01T00:00:00+08:00", "2025-02-01T00:00:00+08:00"},
		{"same instant written in UTC", "2024-01-31T23:30:00Z", 12, "2024-02-01T00:00:00+08:00", "2025-02-01T00:00:00+08:00"},
		{"Jan 31", "2025-01-31T12:00:00+08:00", 12, "2025-01-31T00:00:00+08:00", "2026-01-31T00:00:00+08:00"},
		{"Mar 31", "2025-03-31T12:00:00+08:00", 12, "2025-03-31T00:00:00+08:00", "2026-03-31T00:00:00+08:00"},
		{"May 31", "2025-05-31T12:00:00+08:00", 12, "2025-05-31T00:00:00+08:00", "2026-05-31T00:00:00+08:00"},
		{"Aug 31", "2025-08-31T12:00:00+08:00", 12, "2025-08-31T00:00:00+08:00", "2026-08-31T00:00:00+08:00"},
		{"Dec 31", "2025-12-31T20:00:00+08:00", 12, "2025-12-31T00:00:00+08:00", "2026-12-31T00:00:00+08:00"},
		{"Apr 30", "2025-04-30T12:00:00+08:00", 12, "2025-04-30T00:00:00+08:00", "2026-04-30T00:00:00+08:00"},
		{"leap day 2028", "2028-02-29T09:00:00+08:00", 12, "2028-02-29T00:00:00+08:00", "2029-02-28T00:00:00+08:00"},
		{"Feb 28 into a leap year stays Feb 28", "2027-02-28T09:00:00+08:00", 12, "2027-02-28T00:00:00+08:00", "2028-02-28T00:00:00+08:00"},
		{"2100 is not a leap year", "2099-02-28T09:00:00+08:00", 12, "2099-02-28T00:00:00+08:00", "2100-02-28T00:00:00+08:00"},
		{"local midnight exactly", "2025-06-15T00:00:00+08:00", 12, "2025-06-15T00:00:00+08:00", "2026-06-15T00:00:00+08:00"},
		{"23:59:59 local", "2025-06-15T23:59:59+08:00", 12, "2025-06-15T00:00:00+08:00", "2026-06-15T00:00:00+08:00"},
		{"UTC instant that is next local midnight", "2025-06-15T16:00:00Z", 12, "2025-06-16T00:00:00+08:00", "2026-06-16T00:00:00+08:00"},
		{"UTC instant one second before next local day", "2025-06-15T15:59:59Z", 12, "2025-06-15T00:00:00+08:00", "2026-06-15T00:00:00+08:00"},
		{"UTC New Year's Eve is New Year's Day", "2025-12-31T16:30:00Z", 12, "2026-01-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00"},
		{"UTC Feb 28 evening is leap day", "2024-02-28T16:00:00Z", 12, "2024-02-29T00:00:00+08:00", "2025-02-28T00:00:00+08:00"},
		{"New York offset on the next Shanghai day", "2025-03-31T12:30:00-04:00", 12, "2025-04-01T00:00:00+08:00", "2026-04-01T00:00:00+08:00"},
		{"1 month from Jan 31", "2025-01-31T12:00:00+08:00", 1, "2025-01-31T00:00:00+08:00", "2025-02-28T00:00:00+08:00"},
		{"1 month from Jan 31 of a leap year", "2024-01-31T12:00:00+08:00", 1, "2024-01-31T00:00:00+08:00", "2024-02-29T00:00:00+08:00"},
		{"13 months from Jan 31", "2025-01-31T12:00:00+08:00", 13, "2025-01-31T00:00:00+08:00", "2026-02-28T00:00:00+08:00"},
		{"24 months from Jan 31", "2025-01-31T12:00:00+08:00", 24, "2025-01-31T00:00:00+08:00", "2027-01-31T00:00:00+08:00"},
		{"1 month from Feb 29", "2024-02-29T12:00:00+08:00", 1, "2024-02-29T00:00:00+08:00", "2024-03-29T00:00:00+08:00"},
		{"13 months from Feb 29", "2024-02-29T12:00:00+08:00", 13, "2024-02-29T00:00:00+08:00", "2025-03-29T00:00:00+08:00"},
		{"24 months from Feb 29", "2024-02-29T12:00:00+08:00", 24, "2024-02-29T00:00:00+08:00", "2026-02-28T00:00:00+08:00"},
		{"48 months from Feb 29", "2024-02-29T12:00:00+08:00", 48, "2024-02-29T00:00:00+08:00", "2028-02-29T00:00:00+08:00"},
	}
	vin := VIN("1HGCM82633A004352")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := TrialTerms{Months: tt.months, DataBytesPerMonth: 15 << 30}
			p := terms.TrialPeriod(vin, mustTime(t, tt.activatedAt), sh)
			if want := mustTime(t, tt.start); !p.StartsAt.Equal(want) {
				t.Errorf("TrialPeriod(%s, %d months).StartsAt = %s, want %s", tt.activatedAt, tt.months, p.StartsAt.In(sh).Format(time.RFC3339), tt.start)
			}
			if want := mustTime(t, tt.end); !p.EndsAt.Equal(want) {
				t.Errorf("TrialPeriod(%s, %d months).EndsAt (covered_until) = %s, want %s", tt.activatedAt, tt.months, p.EndsAt.In(sh).Format(time.RFC3339), tt.end)
			}
			if p.StartsAt.Location() != time.UTC || p.EndsAt.Location() != time.UTC {
				t.Errorf("TrialPeriod times in %s and %s, want UTC", p.StartsAt.Location(), p.EndsAt.Location())
			}
			if p.Source != SourceTrial || p.Product != "trial" || p.Seq != 0 || p.VIN != vin || p.DataBytesPerMonth != 15<<30 || p.Refunded() {
				t.Errorf("TrialPeriod = %+v, want a trial of %s with seq 0 and the trial allowance", p, vin)
			}
			cov := Timeline{Periods: []Period{p}}.At(mustTime(t, tt.activatedAt))
			if !cov.Covered || !cov.CoveredUntil.Equal(p.EndsAt) || cov.State() != StateTrial {
				t.Errorf("At(activation) = covered %v until %s state %s, want covered until %s in trial", cov.Covered, cov.CoveredUntil, cov.State(), tt.end)
			}
		})
	}
}

// TestTrialHostZone runs TestTrialTable again in child processes whose
// host zone (TZ) differs, so that no answer depends on time.Local.
func TestTrialHostZone(t *testing.T) {
	if _, ok := os.LookupEnv(hostZoneEnv); ok {
		t.Skip("already in a child process")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, tc := range []struct {
		tz     string
		offset int // of time.Local on 2026-01-01
	}{
		{"UTC", 0},
		{"America/New_York", -5 * 3600},
		{"Pacific/Kiritimati", 14 * 3600},
	} {
		t.Run(tc.tz, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTrialTable$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "TZ="+tc.tz, fmt.Sprintf("%s=%d", hostZoneEnv, tc.offset))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("TestTrialTable with TZ=%s: %v\n%s", tc.tz, err, out)
			}
			if !strings.Contains(string(out), "--- PASS: TestTrialTable ") {
				t.Fatalf("TestTrialTable with TZ=%s did not run and pass:\n%s", tc.tz, out)
			}
		})
	}
}
