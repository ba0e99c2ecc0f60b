package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store/storetest"
)

const gib = int64(1) << 30

// withUsage configures quota notices and the retention window as
// config.yaml does.
func withUsage(o *api.Options) {
	o.QuotaThresholds = []int{80, 100}
	o.UsageRetention = 9600 * time.Hour
}

// eachUsageBackend runs fn once per backend with withUsage.
func eachUsageBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		fn(t, newHarness(t, dialect, withUsage))
	})
}

type usageResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Index  int    `json:"index"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"rejected"`
}

// rec is one usage record of the carrier feed, ten minutes long.
func rec(id, vin, category string, bytes int64, start time.Time) map[string]any {
	return map[string]any{"id": id, "vin": vin, "category": category, "bytes": bytes,
		"started_at": start.Format(time.RFC3339), "ended_at": start.Add(10 * time.Minute).Format(time.RFC3339)}
}

// postUsage posts records as the carrier and decodes the 200 answer.
func (h *harness) postUsage(records []map[string]any) usageResult {
	h.t.Helper()
	res := h.do(request{Method: http.MethodPost, Path: "/v1/usage", Token: h.token(api.RoleCarrier, "carrier-1"),
		Body: map[string]any{"records": records}})
	if res.Code != http.StatusOK {
		h.t.Fatalf("POST /v1/usage = %d %s, want 200", res.Code, res.Body)
	}
	var out usageResult
	res.decode(h.t, &out)
	return out
}

type dataBody struct {
	CycleStart     string  `json:"cycle_start"`
	CycleEnd       string  `json:"cycle_end"`
	AllowanceBytes int64   `json:"allowance_bytes"`
	UsedBytes      int64   `json:"used_bytes"`
	RemainingBytes int64   `json:"remaining_bytes"`
	Throttled      bool    `json:"throttled"`
	AsOf           *string `json:"as_of"`
}

// data reads the entitlement's data block as ops.
func (h *harness) data(v string) dataBody {
	h.t.Helper()
	res := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOps, "ops"))
	if res.Code != http.StatusOK {
		h.t.Fatalf("entitlement %s = %d %s", v, res.Code, res.Body)
	}
	var e struct {
		Data dataBody `json:"data"`
	}
	res.decode(h.t, &e)
	return e.Data
}

func (h *harness) quotaNotices(v string) []billing.Notice {
	h.t.Helper()
	ns, err := h.db.Notices(context.Background(), billing.VIN(v), 100)
	if err != nil {
		h.t.Fatalf("Notices: %v", err)
	}
	var out []billing.Notice
	for _, n := range ns {
		if n.Kind == billing.NoticeQuotaThreshold {
			out = append(out, n)
		}
	}
	return out
}

var june14 = time.Date(2026, 6, 14, 20, 0, 0, 0, shanghai) // the day before the harness clock

func TestUsageDuplicatesCountOnce(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100001")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		first := h.postUsage([]map[string]any{
			rec("r1", v, "entertainment", 100, june14),
			rec("r2", v, "entertainment", 200, june14.Add(time.Hour)),
			rec("r1", v, "entertainment", 100, june14), // repeated in the batch
		})
		if first.Accepted != 2 || first.Duplicates != 1 || len(first.Rejected) != 0 {
			t.Errorf("first batch = %+v, want 2 accepted, 1 duplicate", first)
		}
		again := h.postUsage([]map[string]any{
			rec("r2", v, "entertainment", 200, june14.Add(time.Hour)),
			rec("r1", v, "entertainment", 999_999, june14), // same id, other content: the first write wins
			rec("r3", v, "entertainment", 300, june14.Add(2*time.Hour)),
		})
		if again.Accepted != 1 || again.Duplicates != 2 {
			t.Errorf("second batch = %+v, want 1 accepted, 2 duplicates", again)
		}
		if d := h.data(v); d.UsedBytes != 600 {
			t.Errorf("used_bytes = %d, want 600 (100+200+300, each once)", d.UsedBytes)
		}
	})
}

func TestUsageCountsInTheMonthItStarted(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100002")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		lastMonth := time.Date(2026, 5, 31, 23, 55, 0, 0, shanghai) // ends in June, counts in May
		thisMonth := time.Date(2026, 6, 1, 0, 5, 0, 0, shanghai)    // still May 31 in UTC
		res := h.postUsage([]map[string]any{
			rec("may", v, "entertainment", 5*gib, lastMonth),
			rec("june", v, "entertainment", 7, thisMonth),
		})
		if res.Accepted != 2 {
			t.Fatalf("batch = %+v, want 2 accepted", res)
		}
		d := h.data(v)
		if d.UsedBytes != 7 {
			t.Errorf("June used_bytes = %d, want 7 (May's record must not count)", d.UsedBytes)
		}
		if d.CycleStart != "2026-06-01T00:00:00+08:00" || d.CycleEnd != "2026-07-01T00:00:00+08:00" {
			t.Errorf("cycle = %s..%s, want the Shanghai calendar month of June", d.CycleStart, d.CycleEnd)
		}
		if want := "2026-06-01T00:15:00+08:00"; d.AsOf == nil || *d.AsOf != want {
			t.Errorf("as_of = %v, want %s (the latest ended_at)", d.AsOf, want)
		}
		// A late record of May arriving now moves nothing in June, and
		// as_of only moves forward.
		h.postUsage([]map[string]any{rec("may-late", v, "entertainment", gib, time.Date(2026, 5, 20, 9, 0, 0, 0, shanghai))})
		if got := h.data(v); got.UsedBytes != 7 || *got.AsOf != *d.AsOf {
			t.Errorf("after a late May record: used %d as_of %v, want 7 and %s", got.UsedBytes, *got.AsOf, *d.AsOf)
		}
		snap, err := h.db.Snapshot(context.Background(), billing.VIN(v), billing.CycleAt(lastMonth, shanghai))
		u := snap.Usage
		if err != nil || u.EntertainmentBytes != 6*gib {
			t.Errorf("Usage(May) = %d, %v, want %d", u.EntertainmentBytes, err, 6*gib)
		}
	})
}

// TestUsageAsOfIsTheLatestEndSeen pins what as_of means now that it is
// read from the monthly aggregates: the latest ended_at of any accepted
// record, whichever month it counts in and whichever batch brought it;
// never moved back, and never moved by a duplicate.
func TestUsageAsOfIsTheLatestEndSeen(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100003")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		span := func(id string, start, end time.Time) map[string]any {
			return map[string]any{"id": id, "vin": v, "category": "basic", "bytes": 1,
				"started_at": start.Format(time.RFC3339), "ended_at": end.Format(time.RFC3339)}
		}
		asOf := func() string {
			t.Helper()
			d := h.data(v)
			if d.AsOf == nil {
				t.Fatal("as_of is null after accepted records")
			}
			return *d.AsOf
		}
		june10 := time.Date(2026, 6, 10, 9, 0, 0, 0, shanghai)
		h.postUsage([]map[string]any{span("june", june10, june10.Add(10*time.Minute))})
		if got, want := asOf(), "2026-06-10T09:10:00+08:00"; got != want {
			t.Fatalf("as_of = %s, want %s", got, want)
		}
		// A later batch brings a record of May (it started on May 31)
		// that ended after everything of June: it is the latest end seen,
		// though it counts in May.
		may31 := time.Date(2026, 5, 31, 23, 0, 0, 0, shanghai)
		h.postUsage([]map[string]any{span("may-long", may31, june10.Add(time.Hour))})
		if got, want := asOf(), "2026-06-10T10:00:00+08:00"; got != want {
			t.Errorf("after a May record ending later: as_of = %s, want %s", got, want)
		}
		// Neither an earlier end in June nor a replayed id with a later
		// end moves it.
		res := h.postUsage([]map[string]any{
			span("june-2", june10, june10.Add(30*time.Minute)),
			span("june", june10, june10.Add(3*time.Hour)),
		})
		if res.Accepted != 1 || res.Duplicates != 1 {
			t.Fatalf("batch = %+v, want 1 accepted and 1 duplicate", res)
		}
		if got, want := asOf(), "2026-06-10T10:00:00+08:00"; got != want {
			t.Errorf("after an earlier end and a duplicate: as_of = %s, want %s", got, want)
		}
	})
}

func TestUsageThresholdNotices(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100003")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		allowance := 15 * gib
		// 70% first: no notice yet.
		h.postUsage([]map[string]any{rec("a", v, "entertainment", allowance*7/10, june14)})
		if ns := h.quotaNotices(v); len(ns) != 0 {
			t.Fatalf("notices at 70%% = %d, want 0", len(ns))
		}
		// One batch crossing both 80% and 100%; basic traffic does not count.
		res := h.postUsage([]map[string]any{
			rec("b", v, "entertainment", allowance*2/10, june14.Add(time.Hour)),
			rec("c", v, "entertainment", allowance*2/10, june14.Add(2*time.Hour)),
			rec("d", v, "basic", 100*gib, june14.Add(3*time.Hour)),
		})
		if res.Accepted != 3 {
			t.Fatalf("batch = %+v", res)
		}
		// The same batch again and more usage: no further notices.
		h.postUsage([]map[string]any{
			rec("b", v, "entertainment", allowance*2/10, june14.Add(time.Hour)),
			rec("e", v, "entertainment", gib, june14.Add(4*time.Hour)),
		})
		ns := h.quotaNotices(v)
		got := map[float64]billing.Notice{}
		for _, n := range ns {
			got[n.Data["threshold"].(float64)] = n
		}
		if len(ns) != 2 || got[80].ID == "" || got[100].ID == "" {
			t.Fatalf("quota notices = %+v, want one at 80 and one at 100", ns)
		}
		n := got[100]
		if n.Data["cycle"] != "2026-06" || n.Data["allowance_bytes"] != float64(allowance) ||
			n.Data["used_bytes"] != float64(allowance*11/10) || n.OwnerID != "o1" {
			t.Errorf("100%% notice = %+v, want cycle 2026-06, allowance %d, used %d, owner o1", n, allowance, allowance*11/10)
		}
		// Late records pushing May over 80% notify for May, once.
		may := time.Date(2026, 5, 30, 10, 0, 0, 0, shanghai)
		h.postUsage([]map[string]any{rec("may-1", v, "entertainment", allowance*9/10, may)})
		h.postUsage([]map[string]any{rec("may-2", v, "entertainment", 1, may.Add(time.Hour))})
		var mays []map[string]any
		ns = h.quotaNotices(v)
		for _, n := range ns {
			if n.Data["cycle"] == "2026-05" {
				mays = append(mays, n.Data)
			}
		}
		if len(ns) != 3 || len(mays) != 1 || mays[0]["threshold"] != float64(80) {
			t.Errorf("after late May usage: %d quota notices, May's %+v, want 3, one for 2026-05 at 80", len(ns), mays)
		}
	})
}

func TestUsageRejectsBadRecordsAlone(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100004")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		recs := make([]map[string]any, 1000)
		for i := range recs {
			recs[i] = rec(fmt.Sprintf("rec-%04d", i), v, "entertainment", 10, june14.Add(time.Duration(i)*time.Second))
		}
		recs[17]["vin"] = vin("LSVAX4E10P2199999") // never activated
		recs[500]["bytes"] = -1
		recs[999]["ended_at"] = june14.Add(-time.Hour).Format(time.RFC3339)
		res := h.postUsage(recs)
		if res.Accepted != 997 || res.Duplicates != 0 || len(res.Rejected) != 3 {
			t.Fatalf("batch = accepted %d duplicates %d rejected %+v, want 997, 0 and 3 rejected", res.Accepted, res.Duplicates, res.Rejected)
		}
		want := []struct {
			index int
			code  string
		}{{17, "unknown_vin"}, {500, "negative_bytes"}, {999, "end_before_start"}}
		for i, w := range want {
			if r := res.Rejected[i]; r.Index != w.index || r.Code != w.code || r.Detail == "" {
				t.Errorf("rejected[%d] = %+v, want index %d code %s with a detail", i, r, w.index, w.code)
			}
		}
		if d := h.data(v); d.UsedBytes != 9970 {
			t.Errorf("used_bytes = %d, want 9970", d.UsedBytes)
		}
	})
}

func TestUsageRejectionCodes(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100005")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		now := h.clock.Now()
		tests := []struct {
			name string
			edit func(r map[string]any)
			code string
		}{
			{"missing id", func(r map[string]any) { delete(r, "id") }, "id_required"},
			{"id too long", func(r map[string]any) { r["id"] = strings.Repeat("x", 129) }, "id_too_long"},
			{"id with a space", func(r map[string]any) { r["id"] = "a b" }, "id_invalid"},
			{"invalid VIN", func(r map[string]any) { r["vin"] = "LSVAX4E10P210000" }, "invalid_vin"},
			{"bad check digit", func(r map[string]any) { r["vin"] = "LSVAX4E1XP2100005" }, "invalid_vin"},
			{"unknown VIN", func(r map[string]any) { r["vin"] = vin("LSVAX4E10P2100099") }, "unknown_vin"},
			{"bad category", func(r map[string]any) { r["category"] = "video" }, "invalid_category"},
			{"missing bytes", func(r map[string]any) { delete(r, "bytes") }, "bytes_required"},
			{"negative bytes", func(r map[string]any) { r["bytes"] = -5 }, "negative_bytes"},
			{"absurd bytes", func(r map[string]any) { r["bytes"] = int64(1) << 50 }, "bytes_too_large"},
			{"bytes as a string", func(r map[string]any) { r["bytes"] = "5" }, "malformed_record"},
			{"unknown field", func(r map[string]any) { r["apn"] = "cmnet" }, "malformed_record"},
			{"bad time", func(r map[string]any) { r["started_at"] = "yesterday" }, "invalid_time"},
			{"end before start", func(r map[string]any) { r["ended_at"] = june14.Add(-time.Second).Format(time.RFC3339) }, "end_before_start"},
			{"start in the future", func(r map[string]any) {
				r["started_at"], r["ended_at"] = now.Add(time.Hour).Format(time.RFC3339), now.Add(2*time.Hour).Format(time.RFC3339)
			}, "start_in_future"},
			{"end in the future", func(r map[string]any) { r["ended_at"] = now.Add(time.Hour).Format(time.RFC3339) }, "end_in_future"},
			{"older than retention", func(r map[string]any) {
				r["started_at"] = now.Add(-9601 * time.Hour).Format(time.RFC3339)
			}, "too_old"},
		}
		recs := []map[string]any{rec("good-first", v, "basic", 1, june14)}
		for i, tc := range tests {
			r := rec(fmt.Sprintf("bad-%d", i), v, "entertainment", 1, june14)
			tc.edit(r)
			recs = append(recs, r)
		}
		recs = append(recs, rec("good-last", v, "entertainment", 1, june14))
		res := h.postUsage(recs)
		if res.Accepted != 2 || len(res.Rejected) != len(tests) {
			t.Fatalf("batch = %+v, want 2 accepted and %d rejected", res, len(tests))
		}
		for i, tc := range tests {
			if r := res.Rejected[i]; r.Index != i+1 || r.Code != tc.code {
				t.Errorf("%s: rejected %+v, want index %d code %s", tc.name, r, i+1, tc.code)
			}
		}
	})
}

func TestUsageRequestProblems(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		carrier := h.token(api.RoleCarrier, "carrier-1")
		tooMany := make([]map[string]any, billing.MaxUsageBatch+1)
		for i := range tooMany {
			tooMany[i] = map[string]any{"id": "x"}
		}
		tests := []struct {
			name   string
			token  string
			body   any
			status int
			code   string
		}{
			{"not JSON", carrier, "{", 400, "malformed_body"},
			{"no records", carrier, map[string]any{}, 400, "validation_failed"},
			{"records not an array", carrier, map[string]any{"records": 5}, 400, "malformed_body"},
			{"unknown top-level field", carrier, map[string]any{"records": []any{}, "x": 1}, 400, "malformed_body"},
			{"too many records", carrier, map[string]any{"records": tooMany}, 413, "too_many_records"},
			{"body too large", carrier, `{"records":["` + strings.Repeat("x", api.MaxUsageBodyBytes) + `"]}`, 413, "body_too_large"},
			{"owner may not post usage", h.token(api.RoleOwner, "o1"), map[string]any{"records": []any{}}, 403, "forbidden"},
			{"no token", "", map[string]any{"records": []any{}}, 401, "unauthorized"},
		}
		for _, tc := range tests {
			res := h.do(request{Method: http.MethodPost, Path: "/v1/usage", Token: tc.token, Body: tc.body})
			if res.Code != tc.status || res.problem(t).Code != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.Code, res.Body, tc.status, tc.code)
			}
		}
		if res := h.postUsage([]map[string]any{}); res.Accepted != 0 || res.Rejected == nil {
			t.Errorf("empty batch = %+v, want nothing accepted and an empty rejected list", res)
		}
	})
}

func TestUsageThrottlesPremiumFeatures(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100006")
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		allowance := 15 * gib

		h.postUsage([]map[string]any{rec("basic", v, "basic", 40*gib, june14)})
		d := h.data(v)
		if d.UsedBytes != 0 || d.RemainingBytes != allowance || d.Throttled || d.AllowanceBytes != allowance {
			t.Errorf("after basic usage: %+v, want nothing used of %d", d, allowance)
		}

		h.postUsage([]map[string]any{rec("fun-1", v, "entertainment", allowance-1, june14.Add(time.Hour))})
		if d := h.data(v); d.UsedBytes != allowance-1 || d.RemainingBytes != 1 || d.Throttled {
			t.Errorf("one byte left: %+v, want remaining 1, not throttled", d)
		}
		if f := h.feature(v, "video_streaming", ""); !f.Allowed || f.Throttled || f.Reason != "covered" {
			t.Errorf("under the allowance: %+v, want allowed, not throttled, covered", f)
		}

		h.postUsage([]map[string]any{rec("fun-2", v, "entertainment", 2, june14.Add(2*time.Hour))})
		if d := h.data(v); d.UsedBytes != allowance+1 || d.RemainingBytes != 0 || !d.Throttled {
			t.Errorf("over the allowance: %+v, want remaining 0 and throttled", d)
		}
		tests := []struct {
			name, feature, conn string
			allowed, throttled  bool
			reason              string
		}{
			{"premium over the allowance", "video_streaming", "cellular", true, true, "quota_exhausted"},
			{"premium on a hotspot", "video_streaming", "hotspot", true, false, "external_network"},
			{"basic over the allowance", "navigation", "", true, false, "basic_feature"},
		}
		for _, tc := range tests {
			if f := h.feature(v, tc.feature, tc.conn); f.Allowed != tc.allowed || f.Throttled != tc.throttled || f.Reason != tc.reason {
				t.Errorf("%s: %+v, want allowed=%v throttled=%v reason=%s", tc.name, f, tc.allowed, tc.throttled, tc.reason)
			}
		}
		// A new month starts from zero.
		h.clock.Set(time.Date(2026, 7, 1, 0, 0, 1, 0, shanghai))
		if d := h.data(v); d.UsedBytes != 0 || d.Throttled || d.CycleStart != "2026-07-01T00:00:00+08:00" {
			t.Errorf("in July: %+v, want a fresh cycle", d)
		}
	})
}

type featureBody struct {
	Allowed   bool   `json:"allowed"`
	Throttled bool   `json:"throttled"`
	Reason    string `json:"reason"`
}

func (h *harness) feature(v, feature, conn string) featureBody {
	h.t.Helper()
	path := "/v1/vehicles/" + v + "/features/" + feature
	if conn != "" {
		path += "?connection=" + conn
	}
	res := h.get(path, h.token(api.RoleVehicle, v))
	if res.Code != http.StatusOK {
		h.t.Fatalf("GET %s = %d %s", path, res.Code, res.Body)
	}
	var f featureBody
	res.decode(h.t, &f)
	return f
}
