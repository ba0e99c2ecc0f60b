package billing

import (
	"strings"
	"testing"
	"time"
)

func TestCrossed(t *testing.T) {
	const gib = int64(1) << 30
	th := []int{80, 100}
	tests := []struct {
		name          string
		allowance     int64
		unlimited     bool
		before, after int64
		want          []int
	}{
		{"below both", 100, false, 0, 79, nil},
		{"exactly 80 percent", 100, false, 79, 80, []int{80}},
		{"both in one step", 15 * gib, false, 0, 15 * gib, []int{80, 100}},
		{"already past 80", 100, false, 85, 120, []int{100}},
		{"already past both", 100, false, 100, 150, nil},
		{"80 percent rounds up", 101, false, 80, 81, []int{80}}, // 80.8 bytes: 81 reaches it
		{"just under rounded 80", 101, false, 0, 80, nil},
		{"unlimited", 0, true, 0, 1 << 50, nil},
		{"not covered", 0, false, 0, 1 << 50, nil},
	}
	for _, tc := range tests {
		d := DataStatus{AllowanceBytes: tc.allowance, Unlimited: tc.unlimited, UsedBytes: tc.after}
		got := d.Crossed(tc.before, th)
		if len(got) != len(tc.want) || (len(got) > 0 && (got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1])) {
			t.Errorf("%s: Crossed(%d→%d of %d) = %v, want %v", tc.name, tc.before, tc.after, tc.allowance, got, tc.want)
		}
	}
}

func TestPercentOfDoesNotOverflow(t *testing.T) {
	n := int64(1) << 62
	if got, want := percentOf(n, 100), n; got != want {
		t.Errorf("percentOf(2^62, 100) = %d, want %d", got, want)
	}
	if got, want := percentOf(n, 80), n/100*80+(n%100*80+99)/100; got != want || got <= 0 {
		t.Errorf("percentOf(2^62, 80) = %d, want %d", got, want)
	}
}

func TestAllowanceInstant(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	may := CycleAt(time.Date(2026, 5, 10, 0, 0, 0, 0, loc), loc)
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, loc)
	if got, want := may.AllowanceInstant(now), time.Date(2026, 6, 1, 0, 0, 0, 0, loc).Add(-time.Microsecond); !got.Equal(want) {
		t.Errorf("past cycle: AllowanceInstant = %s, want %s", got, want)
	}
	june := CycleAt(now, loc)
	if got := june.AllowanceInstant(now); !got.Equal(now) {
		t.Errorf("current cycle: AllowanceInstant = %s, want now %s", got, now)
	}
}

func TestUsageRecordValidate(t *testing.T) {
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	good := UsageRecord{ID: "r1", VIN: "LSVAX4E10P2100001", Category: CategoryBasic, Bytes: 0,
		StartedAt: now.Add(-time.Hour), EndedAt: now.Add(-time.Hour)}
	terms := UsageTerms{Retention: 9600 * time.Hour}
	tests := []struct {
		name string
		edit func(*UsageRecord)
		code string
	}{
		{"valid, zero bytes and zero length", func(*UsageRecord) {}, ""},
		{"clock skew is tolerated", func(r *UsageRecord) { r.StartedAt, r.EndedAt = now.Add(4*time.Minute), now.Add(5*time.Minute) }, ""},
		{"id of 128 bytes", func(r *UsageRecord) { r.ID = strings.Repeat("x", 128) }, ""},
		{"id of 129 bytes", func(r *UsageRecord) { r.ID = strings.Repeat("x", 129) }, RejectIDTooLong},
		{"id with a control character", func(r *UsageRecord) { r.ID = "a\x00b" }, RejectIDInvalid},
		{"no category", func(r *UsageRecord) { r.Category = "" }, RejectBadCategory},
		{"1 TiB is allowed", func(r *UsageRecord) { r.Bytes = MaxUsageRecordBytes }, ""},
		{"over 1 TiB", func(r *UsageRecord) { r.Bytes = MaxUsageRecordBytes + 1 }, RejectBytesTooLarge},
		{"just inside retention", func(r *UsageRecord) { r.StartedAt = now.Add(-9600 * time.Hour) }, ""},
		{"just outside retention", func(r *UsageRecord) { r.StartedAt = now.Add(-9600*time.Hour - time.Second) }, RejectTooOld},
	}
	for _, tc := range tests {
		r := good
		tc.edit(&r)
		if code, detail := r.Validate(terms, now); code != tc.code || (code != "" && detail == "") {
			t.Errorf("%s: Validate() = %q (%s), want %q", tc.name, code, detail, tc.code)
		}
	}
}

func TestCycleKeys(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	r := UsageRecord{StartedAt: time.Date(2026, 5, 31, 16, 30, 0, 0, time.UTC)} // June 1, 00:30 in Shanghai
	if got := r.CycleKey(loc); got != "2026-06" {
		t.Errorf("CycleKey() = %s, want 2026-06", got)
	}
	c, err := ParseCycleKey("2026-06", loc)
	if err != nil || !c.Start.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, loc)) || !c.End.Equal(time.Date(2026, 7, 1, 0, 0, 0, 0, loc)) {
		t.Errorf("ParseCycleKey(2026-06) = %+v, %v", c, err)
	}
}

func TestMayCross(t *testing.T) {
	const floor = 1000
	for _, c := range []struct {
		total, floor int64
		thresholds   []int
		want         bool
	}{
		{799, floor, []int{80, 100}, false},
		{800, floor, []int{80, 100}, true}, // exactly the lowest threshold
		{800, floor, []int{100, 80}, true}, // in any order
		{999, floor, []int{100}, false},
		{1, 1, []int{1}, true}, // ceil: 1 % of 1 byte is 1 byte
		{0, 1, []int{1}, false},
		{1 << 62, 0, []int{80}, false},                 // no allowance stored
		{1 << 62, floor, nil, false},                   // no thresholds
		{1<<63 - 1, 1<<63 - 1, []int{100}, true},       // no overflow
		{1<<63 - 2, 1<<63 - 1, []int{100}, false},      // no overflow
		{(1<<63 - 1) / 2, 1<<63 - 1, []int{50}, false}, // ceil of half of an odd number
	} {
		if got := MayCross(c.total, c.floor, c.thresholds); got != c.want {
			t.Errorf("MayCross(%d, %d, %v) = %v, want %v", c.total, c.floor, c.thresholds, got, c.want)
		}
	}
}
