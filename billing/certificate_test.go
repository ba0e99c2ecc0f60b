package billing

import (
	"testing"
	"time"
)

func certTerms() CertificateTerms {
	return CertificateTerms{TTL: 7 * day, Grace: day, Skew: 5 * time.Minute}
}

func certCatalog() Catalog {
	return Catalog{Features: Features{Basic: []string{"navigation"}, Premium: []string{"video_streaming"}}}
}

func TestCoverageWindowsMergeBackToBackPeriodsOfOneAllowance(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	trial := trialFrom(t, "2025-07-01T10:00:00+08:00") // ends 2026-07-01T00:00+08:00
	monthly := paid(t, 1, "2026-06-01T10:00:00+08:00", 31)
	monthly.DataBytesPerMonth = 15 << 30
	unlimited := paid(t, 2, "2026-06-02T10:00:00+08:00", 365)
	later := paid(t, 3, "2028-01-01T00:00:00+08:00", 31) // after a gap
	later.DataBytesPerMonth = 15 << 30
	refunded := paid(t, 4, "2026-06-03T10:00:00+08:00", 31)
	tl := laidOut(t, trial, monthly, unlimited, later, refunded)
	at := tl.Periods[4].EndsAt
	tl.Periods[4].RefundedAt = &at // removed before it started: no coverage
	now := mustTime(t, "2026-06-15T12:00:00+08:00")

	got := CoverageWindows(tl, now)
	want := []CoverageWindow{
		{mustTime(t, "2025-07-01T00:00:00+08:00"), mustTime(t, "2026-08-01T00:00:00+08:00"), 15 << 30}, // trial and the monthly package
		{mustTime(t, "2026-08-01T00:00:00+08:00"), mustTime(t, "2027-08-01T00:00:00+08:00"), 0},        // the unlimited year
		{mustTime(t, "2028-01-01T00:00:00+08:00"), mustTime(t, "2028-02-01T00:00:00+08:00"), 15 << 30},
	}
	if len(got) != len(want) {
		t.Fatalf("CoverageWindows() = %d windows %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) || got[i].DataBytesPerMonth != want[i].DataBytesPerMonth {
			t.Errorf("window %d = [%s, %s) %d, want [%s, %s) %d", i, got[i].From.In(sh), got[i].To.In(sh), got[i].DataBytesPerMonth,
				want[i].From.In(sh), want[i].To.In(sh), want[i].DataBytesPerMonth)
		}
	}
	if after := CoverageWindows(tl, mustTime(t, "2028-02-01T00:00:00+08:00")); len(after) != 0 {
		t.Errorf("CoverageWindows() after every period = %v, want none", after)
	}
}

func TestCertificateExpiry(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	now := mustTime(t, "2026-06-15T12:00:00+08:00")
	tests := []struct {
		name      string
		activated string
		want      string
	}{
		{"coverage longer than the TTL: now + TTL", "2026-01-10T09:00:00+08:00", "2026-06-22T12:00:00+08:00"},
		{"coverage ending within the TTL: its end + grace", "2025-06-17T09:00:00+08:00", "2026-06-18T00:00:00+08:00"},
		{"lapsed: now + grace", "2025-01-10T09:00:00+08:00", "2026-06-16T12:00:00+08:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Snapshot{Vehicle: Vehicle{VIN: "1HGCM82633A004352", Epoch: 3}, Timeline: NewTimeline([]Period{trialFrom(t, tc.activated)})}
			c := IssueCertificate(s, certCatalog(), certTerms(), now, sh)
			if !c.Expires.Equal(mustTime(t, tc.want)) {
				t.Errorf("Expires = %s, want %s", c.Expires.In(sh), tc.want)
			}
			if !c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now.Add(-5*time.Minute)) || c.Epoch != 3 || c.VIN != s.Vehicle.VIN {
				t.Errorf("certificate = %+v, want iat now, nbf now-5m, epoch 3", c)
			}
		})
	}
}

// TestCertificateDecidesAsEvaluateAtEveryInstant: for instants across the
// certificate's validity (within its cycle, where the usage it states is
// the cycle's), the certificate decides every feature over every
// connection as Evaluate does at that instant.
func TestCertificateDecidesAsEvaluateAtEveryInstant(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	now := mustTime(t, "2026-06-15T12:00:00+08:00")
	trial := trialFrom(t, "2025-06-17T09:00:00+08:00") // ends 2026-06-17T00:00+08:00
	small := paid(t, 1, "2026-06-10T10:00:00+08:00", 2)
	small.DataBytesPerMonth = 1 << 30
	big := paid(t, 2, "2026-06-11T10:00:00+08:00", 31)
	big.DataBytesPerMonth = 15 << 30
	tl := laidOut(t, trial, small, big) // trial to 06-17, small to 06-19, big to 07-20
	for _, used := range []int64{0, 2 << 30, 20 << 30} {
		u := Usage{EntertainmentBytes: used}
		s := Snapshot{Vehicle: Vehicle{VIN: "1HGCM82633A004352"}, Timeline: tl, Usage: u}
		c := IssueCertificate(s, certCatalog(), certTerms(), now, sh)
		for at := now; at.Before(c.Expires); at = at.Add(7 * time.Hour) {
			u := u
			if !CycleAt(at, sh).Start.Equal(CycleAt(now, sh).Start) {
				u = Usage{} // a new cycle: nothing reported yet
			}
			e := Evaluate(s.Vehicle, tl, u, certCatalog(), at, sh)
			for _, conn := range []Connection{ConnCellular, ConnHotspot} {
				for _, f := range []string{"navigation", "video_streaming"} {
					tier, _ := certCatalog().Features.Tier(f)
					want := e.Feature(f, tier, conn)
					got, ok := c.DecideAt(f, conn, at)
					if !ok || got != want {
						t.Errorf("used %d at %s %s %s: DecideAt() = %+v, want %+v", used, at.In(sh), f, conn, got, want)
					}
				}
			}
		}
	}
	c := IssueCertificate(Snapshot{Timeline: tl}, certCatalog(), certTerms(), now, sh)
	if _, ok := c.DecideAt("teleport", ConnCellular, now); ok {
		t.Error("DecideAt(unknown feature) = ok, want false")
	}
}
