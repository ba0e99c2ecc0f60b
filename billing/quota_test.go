package billing

import (
	"testing"
)

func TestQuota(t *testing.T) {
	const gib = int64(1) << 30
	sh := mustZone(t, "Asia/Shanghai")
	now := mustTime(t, "2026-02-10T12:00:00+08:00")
	cycle := CycleAt(now, sh)
	asOf := mustTime(t, "2026-02-09T08:00:00+08:00")
	covered := func(allowance int64) Coverage {
		return Coverage{Covered: true, Current: &Period{Source: SourceOrder, DataBytesPerMonth: allowance}, CoveredUntil: now.Add(10 * day)}
	}
	tests := []struct {
		name      string
		cov       Coverage
		usage     Usage
		allowance int64
		unlimited bool
		used      int64
		remaining int64
		throttled bool
	}{
		{"nothing used", covered(15 * gib), Usage{}, 15 * gib, false, 0, 15 * gib, false},
		{"part used", covered(15 * gib), Usage{EntertainmentBytes: 4 * gib}, 15 * gib, false, 4 * gib, 11 * gib, false},
		{"one byte left", covered(15 * gib), Usage{EntertainmentBytes: 15*gib - 1}, 15 * gib, false, 15*gib - 1, 1, false},
		{"exactly used up", covered(15 * gib), Usage{EntertainmentBytes: 15 * gib}, 15 * gib, false, 15 * gib, 0, true},
		{"over the allowance", covered(15 * gib), Usage{EntertainmentBytes: 20 * gib}, 15 * gib, false, 20 * gib, 0, true},
		{"basic traffic does not count", covered(15 * gib), Usage{EntertainmentBytes: gib, BasicBytes: 100 * gib}, 15 * gib, false, gib, 14 * gib, false},
		{"unlimited", covered(0), Usage{EntertainmentBytes: 500 * gib}, 0, true, 500 * gib, 0, false},
		{"not covered", Coverage{}, Usage{EntertainmentBytes: 20 * gib}, 0, false, 20 * gib, 0, false},
		{"not covered, nothing used", Coverage{}, Usage{}, 0, false, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.usage.AsOf = asOf
			got := Quota(tt.cov, cycle, tt.usage)
			if got.AllowanceBytes != tt.allowance || got.Unlimited != tt.unlimited {
				t.Errorf("Quota().AllowanceBytes, Unlimited = %d, %v, want %d, %v", got.AllowanceBytes, got.Unlimited, tt.allowance, tt.unlimited)
			}
			if got.UsedBytes != tt.used {
				t.Errorf("Quota().UsedBytes = %d, want %d", got.UsedBytes, tt.used)
			}
			if got.RemainingBytes != tt.remaining {
				t.Errorf("Quota().RemainingBytes = %d, want %d", got.RemainingBytes, tt.remaining)
			}
			if got.Throttled != tt.throttled {
				t.Errorf("Quota().Throttled = %v, want %v", got.Throttled, tt.throttled)
			}
			if got.Cycle != cycle || !got.AsOf.Equal(asOf) {
				t.Errorf("Quota() cycle %v as of %s, want %v as of %s", got.Cycle, got.AsOf, cycle, asOf)
			}
		})
	}
}

// Evaluate ties the rules together: the quota of the period covering now
// decides whether premium features are throttled.
func TestEvaluate(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	const gib = int64(1) << 30
	catalog := Catalog{
		Trial:    TrialTerms{Months: 12, DataBytesPerMonth: 15 * gib},
		Features: Features{Basic: []string{"navigation"}, Premium: []string{"music_streaming"}},
	}
	activated := mustTime(t, "2025-04-03T15:20:00+08:00")
	v := Vehicle{VIN: "1HGCM82633A004352", OwnerID: "owner-1", ActivatedAt: activated}
	tl := NewTimeline([]Period{catalog.Trial.TrialPeriod(v.VIN, activated, sh)})
	tests := []struct {
		name      string
		now       string
		used      int64
		state     State
		throttled bool
		premium   Reason
	}{
		{"trial within quota", "2025-05-01T00:00:00+08:00", gib, StateTrial, false, ReasonCovered},
		{"trial over quota", "2025-05-01T00:00:00+08:00", 16 * gib, StateTrial, true, ReasonQuotaExhausted},
		{"expired", "2026-04-03T00:00:00+08:00", 16 * gib, StateExpired, false, ReasonNotCovered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := mustTime(t, tt.now)
			e := Evaluate(v, tl, Usage{EntertainmentBytes: tt.used}, catalog, now, sh)
			if s := e.Coverage.State(); s != tt.state {
				t.Errorf("Evaluate().Coverage.State() = %q, want %q", s, tt.state)
			}
			if e.Data.Throttled != tt.throttled {
				t.Errorf("Evaluate().Data.Throttled = %v, want %v", e.Data.Throttled, tt.throttled)
			}
			if want := CycleAt(now, sh); e.Data.Cycle != want {
				t.Errorf("Evaluate().Data.Cycle = %v, want %v", e.Data.Cycle, want)
			}
			if len(e.Features) != 2 || e.Features[0].Reason != ReasonBasic || e.Features[1].Reason != tt.premium {
				t.Fatalf("Evaluate().Features = %+v, want navigation basic_feature, music_streaming %s", e.Features, tt.premium)
			}
			if d := e.Feature("music_streaming", TierPremium, ConnHotspot); !d.Allowed || d.Throttled || d.Reason != ReasonExternal {
				t.Errorf("Feature(music_streaming, hotspot) = %+v, want allowed external_network", d)
			}
			if d := e.Feature("music_streaming", TierPremium, ConnCellular); d.Reason != tt.premium || d.Throttled != tt.throttled {
				t.Errorf("Feature(music_streaming, cellular) = %+v, want reason %s throttled %v", d, tt.premium, tt.throttled)
			}
		})
	}
}
