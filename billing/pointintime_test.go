package billing

import (
	"slices"
	"testing"
	"time"
)

func pitCatalog() Catalog {
	return Catalog{Features: Features{Basic: []string{"navigation"}, Premium: []string{"karaoke"}}}
}

// TestEvaluatePointCalendarEdges evaluates a car activated on a leap day
// (trial to 2029-02-28, clamped) that bought 31 days paid on 2029-01-20
// (so starting at the trial's end), at instants around local midnights,
// month ends and the UTC day boundary, which in Asia/Shanghai falls at
// 08:00.
func TestEvaluatePointCalendarEdges(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	vin := VIN("LSVPT4E10P2000001")
	activated := mustTime(t, "2028-02-29T10:00:00+08:00")
	v := Vehicle{VIN: vin, ActivatedAt: activated}
	trial := TrialTerms{Months: 12, DataBytesPerMonth: 100}.TrialPeriod(vin, activated, sh)
	paid := Period{ID: "p1", VIN: vin, Source: SourceOrder, OrderID: "o1", Product: "monthly", Days: 31, DataBytesPerMonth: 0,
		PaidAt: mustTime(t, "2029-01-20T12:00:00+08:00"), Seq: 1}
	tl := NewTimeline([]Period{trial, paid})
	tl.Layout(sh)
	if got := Stamp(tl.Periods[1].EndsAt, sh); got != "2029-03-31T00:00:00+08:00" {
		t.Fatalf("paid period ends %s, want 2029-03-31T00:00:00+08:00 (Feb 28 + 31 days)", got)
	}
	known := mustTime(t, "2029-06-01T00:00:00+08:00")
	tests := []struct {
		name    string
		at      string
		err     string
		state   State
		until   string
		cycle   string
		allowed bool
	}{
		{"local midnight of the activation day, before activation", "2028-02-29T00:00:00+08:00", ENotActivated, "", "", "", false},
		{"a microsecond before activation", "2028-02-29T09:59:59.999999+08:00", ENotActivated, "", "", "", false},
		{"at activation", "2028-02-29T10:00:00+08:00", "", StateTrial, "2029-02-28T00:00:00+08:00", "2028-02", true},
		{"leap day's last microsecond", "2028-02-29T23:59:59.999999+08:00", "", StateTrial, "2029-02-28T00:00:00+08:00", "2028-02", true},
		{"UTC midnight of Mar 1 is 08:00 local: March", "2028-03-01T00:00:00Z", "", StateTrial, "2029-02-28T00:00:00+08:00", "2028-03", true},
		{"still Feb 29 in UTC, already Mar 1 locally", "2028-02-29T16:00:00Z", "", StateTrial, "2029-02-28T00:00:00+08:00", "2028-03", true},
		{"a month end, before the package was paid", "2029-01-19T23:59:59+08:00", "", StateTrial, "2029-02-28T00:00:00+08:00", "2029-01", true},
		{"when the package was paid", "2029-01-20T12:00:00+08:00", "", StateTrial, "2029-03-31T00:00:00+08:00", "2029-01", true},
		{"the trial's last microsecond", "2029-02-27T23:59:59.999999+08:00", "", StateTrial, "2029-03-31T00:00:00+08:00", "2029-02", true},
		{"the clamped end of the trial, local midnight", "2029-02-28T00:00:00+08:00", "", StatePaid, "2029-03-31T00:00:00+08:00", "2029-02", true},
		{"the same instant in UTC", "2029-02-27T16:00:00Z", "", StatePaid, "2029-03-31T00:00:00+08:00", "2029-02", true},
		{"the package's end", "2029-03-31T00:00:00+08:00", "", StateExpired, "", "2029-03", false},
		{"its last microsecond", "2029-03-30T23:59:59.999999+08:00", "", StatePaid, "2029-03-31T00:00:00+08:00", "2029-03", true},
	}
	for _, tc := range tests {
		p := Point{At: mustTime(t, tc.at), KnownAt: known}
		e, err := EvaluatePoint(v, tl, Usage{}, pitCatalog(), p, sh)
		if tc.err != "" {
			if !IsCode(err, tc.err) {
				t.Errorf("%s: EvaluatePoint() error = %v, want %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: EvaluatePoint() = %v", tc.name, err)
			continue
		}
		until := ""
		if e.Coverage.Covered {
			until = Stamp(e.Coverage.CoveredUntil, sh)
		}
		karaoke := e.Feature("karaoke", TierPremium, ConnCellular)
		if e.Coverage.State() != tc.state || until != tc.until || e.Data.Cycle.Key() != tc.cycle || karaoke.Allowed != tc.allowed {
			t.Errorf("%s: state %s until %q cycle %s karaoke %v; want %s %q %s %v", tc.name, e.Coverage.State(), until,
				e.Data.Cycle.Key(), karaoke.Allowed, tc.state, tc.until, tc.cycle, tc.allowed)
		}
	}
}

// TestTimelineAsOf: periods paid later are dropped, a period refunded
// later counts as it ran, a period removed later (it never started) stays
// refunded, and a replay (no valid time) is Evaluate itself.
func TestTimelineAsOf(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	at := func(s string) time.Time { return mustTime(t, s) }
	cut := at("2026-01-25T11:00:00+08:00")
	removed := at("2026-01-26T09:00:00+08:00")
	tl := NewTimeline([]Period{
		{ID: "trial", Source: SourceTrial, StartsAt: at("2025-01-10T00:00:00+08:00"), EndsAt: at("2026-01-10T00:00:00+08:00")},
		{ID: "p1", Source: SourceOrder, Seq: 1, Days: 31, PaidAt: at("2025-12-20T09:00:00+08:00"),
			StartsAt: at("2026-01-10T00:00:00+08:00"), EndsAt: cut, RefundedAt: &cut},
		{ID: "p2", Source: SourceOrder, Seq: 2, Days: 31, PaidAt: at("2026-01-20T15:00:00+08:00"),
			StartsAt: at("2026-03-20T00:00:00+08:00"), EndsAt: at("2026-04-20T00:00:00+08:00"), RefundedAt: &removed},
		{ID: "p3", Source: SourceOrder, Seq: 3, Days: 31, PaidAt: at("2026-01-21T15:00:00+08:00"),
			StartsAt: cut, EndsAt: at("2026-02-25T11:00:00+08:00")},
	})
	tests := []struct {
		at       string
		ids      []string // periods bought by the instant
		live     []string // of those, not refunded at the instant
		coverage string
	}{
		{"2025-12-20T08:59:59.999999+08:00", []string{"trial"}, []string{"trial"}, "2026-01-10T00:00:00+08:00"},
		{"2025-12-20T09:00:00+08:00", []string{"trial", "p1"}, []string{"trial", "p1"}, "2026-01-25T11:00:00+08:00"},
		{"2026-01-21T15:00:00+08:00", []string{"trial", "p1", "p2", "p3"}, []string{"trial", "p1", "p3"}, "2026-02-25T11:00:00+08:00"},
		{"2026-01-25T10:59:59.999999+08:00", []string{"trial", "p1", "p2", "p3"}, []string{"trial", "p1", "p3"}, "2026-02-25T11:00:00+08:00"},
		{"2026-01-25T11:00:00+08:00", []string{"trial", "p1", "p2", "p3"}, []string{"trial", "p3"}, "2026-02-25T11:00:00+08:00"},
	}
	for _, tc := range tests {
		got := tl.AsOf(at(tc.at))
		var ids, live []string
		for _, p := range got.Periods {
			ids = append(ids, p.ID)
			if !p.Refunded() {
				live = append(live, p.ID)
			}
		}
		if !slices.Equal(ids, tc.ids) || !slices.Equal(live, tc.live) {
			t.Errorf("AsOf(%s) periods %v live %v, want %v live %v", tc.at, ids, live, tc.ids, tc.live)
		}
		if cov := got.At(at(tc.at)); Stamp(cov.CoveredUntil, sh) != tc.coverage {
			t.Errorf("AsOf(%s) covered until %s, want %s", tc.at, Stamp(cov.CoveredUntil, sh), tc.coverage)
		}
	}
	v := Vehicle{VIN: "V", ActivatedAt: at("2025-01-10T10:00:00+08:00")}
	k := at("2026-01-22T00:00:00+08:00")
	replay, err := EvaluatePoint(v, tl, Usage{EntertainmentBytes: 7}, pitCatalog(), Point{KnownAt: k}, sh)
	plain := Evaluate(v, tl, Usage{EntertainmentBytes: 7}, pitCatalog(), k, sh)
	if err != nil || replay.Coverage.Covered != plain.Coverage.Covered || !replay.Coverage.CoveredUntil.Equal(plain.Coverage.CoveredUntil) ||
		replay.Data.UsedBytes != plain.Data.UsedBytes || !replay.Now.Equal(k) {
		t.Errorf("a replay = %+v, %v; want Evaluate at %s: %+v", replay.Coverage, err, k, plain.Coverage)
	}
}

// TestUsageAt: totals answer a cycle when every record of it was received
// by KnownAt and ended before At; otherwise the raw records are counted
// one by one; cycles that cannot hold a counted record are not read; and a
// cycle that must be read but started before the retention horizon is
// usage_history_pruned.
func TestUsageAt(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	at := func(s string) time.Time { return mustTime(t, s) }
	cycles := []CycleTotals{
		{Key: "2026-01", EntertainmentBytes: 70, LastEndedAt: at("2026-01-31T23:00:00+08:00"), UpdatedAt: at("2026-02-03T00:00:00+08:00")},
		{Key: "2026-02", EntertainmentBytes: 5, BasicBytes: 3, LastEndedAt: at("2026-02-01T02:00:00+08:00"), UpdatedAt: at("2026-02-03T00:00:00+08:00")},
	}
	recs := []ReceivedRecord{
		{Cycle: "2026-01", Category: CategoryEntertainment, Bytes: 10, EndedAt: at("2026-01-10T09:00:00+08:00"), ReceivedAt: at("2026-01-11T00:00:00+08:00")},
		{Cycle: "2026-01", Category: CategoryEntertainment, Bytes: 20, EndedAt: at("2026-01-15T09:00:00+08:00"), ReceivedAt: at("2026-01-20T00:00:00+08:00")},
		{Cycle: "2026-01", Category: CategoryEntertainment, Bytes: 40, EndedAt: at("2026-01-31T23:00:00+08:00"), ReceivedAt: at("2026-02-03T00:00:00+08:00")},
		{Cycle: "2026-02", Category: CategoryEntertainment, Bytes: 5, EndedAt: at("2026-02-01T02:00:00+08:00"), ReceivedAt: at("2026-02-03T00:00:00+08:00")},
		{Cycle: "2026-02", Category: CategoryBasic, Bytes: 3, EndedAt: at("2026-02-01T01:00:00+08:00"), ReceivedAt: at("2026-02-03T00:00:00+08:00")},
	}
	tests := []struct {
		name       string
		p          Point
		raw        []string
		ent, basic int64
		asOf       string
	}{
		{"replay after everything: totals", Point{KnownAt: at("2026-02-10T00:00:00+08:00")}, nil, 5, 3, "2026-02-01T02:00:00+08:00"},
		{"replay before the late records", Point{KnownAt: at("2026-02-02T00:00:00+08:00")}, []string{"2026-01", "2026-02"}, 0, 0, "2026-01-15T09:00:00+08:00"},
		{"replay in January: February cannot hold one", Point{KnownAt: at("2026-01-19T00:00:00+08:00")}, []string{"2026-01"}, 10, 0, "2026-01-10T09:00:00+08:00"},
		{"replay 5 minutes before February: it may", Point{KnownAt: at("2026-01-31T23:56:00+08:00")}, []string{"2026-01", "2026-02"}, 30, 0, "2026-01-15T09:00:00+08:00"},
		{"January's end, known now: totals", Point{At: at("2026-01-31T23:00:00.000001+08:00"), KnownAt: at("2026-02-10T00:00:00+08:00")}, nil, 70, 0, "2026-01-31T23:00:00+08:00"},
		{"when January's last record ended", Point{At: at("2026-01-31T23:00:00+08:00"), KnownAt: at("2026-02-10T00:00:00+08:00")}, []string{"2026-01"}, 30, 0, "2026-01-15T09:00:00+08:00"},
		{"February's first local midnight", Point{At: at("2026-02-01T00:00:00+08:00"), KnownAt: at("2026-02-10T00:00:00+08:00")}, []string{"2026-02"}, 0, 0, "2026-01-31T23:00:00+08:00"},
		{"the future, known now", Point{At: at("2026-05-01T00:00:00+08:00"), KnownAt: at("2026-02-10T00:00:00+08:00")}, nil, 0, 0, "2026-02-01T02:00:00+08:00"},
	}
	for _, tc := range tests {
		raw := RawCycles(tc.p, cycles, sh)
		var given []ReceivedRecord
		for _, r := range recs {
			if slices.Contains(raw, r.Cycle) {
				given = append(given, r)
			}
		}
		u := UsageAt(tc.p, cycles, given, sh)
		if !slices.Equal(raw, tc.raw) || u.EntertainmentBytes != tc.ent || u.BasicBytes != tc.basic || Stamp(u.AsOf, sh) != tc.asOf {
			t.Errorf("%s: raw %v, usage %d/%d as of %s; want raw %v, %d/%d as of %s", tc.name, raw, u.EntertainmentBytes, u.BasicBytes,
				Stamp(u.AsOf, sh), tc.raw, tc.ent, tc.basic, tc.asOf)
		}
	}
	horizon := at("2026-01-16T00:00:00+08:00")
	if err := CheckRetained([]string{"2026-02"}, horizon, sh); err != nil {
		t.Errorf("CheckRetained(February) = %v, want nil", err)
	}
	if err := CheckRetained([]string{"2026-01"}, horizon, sh); !IsCode(err, EUsageHistoryPruned) {
		t.Errorf("CheckRetained(January) = %v, want %s", err, EUsageHistoryPruned)
	}
	if err := CheckRetained([]string{"2026-01"}, time.Time{}, sh); err != nil {
		t.Errorf("CheckRetained(no retention) = %v, want nil", err)
	}
}
