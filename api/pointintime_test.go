package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"entitlements/api"
)

// The car of the point-in-time tests, built through the API with the
// harness clock (Asia/Shanghai):
//
//	C0  2025-01-10 10:00  activated by owner-1: trial [2025-01-10, 2026-01-10)
//	C1  2025-12-20 09:00  monthly o1 paid: [2026-01-10, 2026-02-10)
//	U1  2026-01-06 09:00  usage u1 received: 1 GiB, 2026-01-05 10:00-10:10
//	C2  2026-01-20 15:00  monthly o2 paid: [2026-02-10, 2026-03-13)
//	C3  2026-01-25 11:00  o1 refunded with end_access: o1 cut at C3,
//	                      o2 laid out again: [C3, 2026-02-25 11:00)
//	C4  2026-02-01 10:00  transferred to owner-2
//	C5  2026-02-03 09:00  late usage u2 received: 1 GiB, 2026-01-24 20:00-20:10
//	NOW 2026-02-05 12:00
var (
	ptC0  = time.Date(2025, 1, 10, 10, 0, 0, 0, shanghai)
	ptC1  = time.Date(2025, 12, 20, 9, 0, 0, 0, shanghai)
	ptU1  = time.Date(2026, 1, 6, 9, 0, 0, 0, shanghai)
	ptC2  = time.Date(2026, 1, 20, 15, 0, 0, 0, shanghai)
	ptC3  = time.Date(2026, 1, 25, 11, 0, 0, 0, shanghai)
	ptC4  = time.Date(2026, 2, 1, 10, 0, 0, 0, shanghai)
	ptC5  = time.Date(2026, 2, 3, 9, 0, 0, 0, shanghai)
	ptNow = time.Date(2026, 2, 5, 12, 0, 0, 0, shanghai)
)

// pointCar builds the history above and returns the VIN and the orders.
func pointCar(t *testing.T, h *harness) (v string, o1, o2 orderBody) {
	t.Helper()
	v = vin("LSVPT4E10P2000001")
	h.clock.Set(ptC0)
	h.activate(v, "owner-1", ptC0)
	h.clock.Set(ptC1)
	o1 = h.pay(h.createOrder(v, "owner-1", "monthly"))
	h.clock.Set(ptU1)
	if r := h.postUsage([]map[string]any{rec("u1", v, "entertainment", gib, time.Date(2026, 1, 5, 10, 0, 0, 0, shanghai))}); r.Accepted != 1 {
		t.Fatalf("u1 not accepted: %+v", r)
	}
	h.clock.Set(ptC2)
	o2 = h.pay(h.createOrder(v, "owner-1", "monthly"))
	h.clock.Set(ptC3)
	if res := h.refund(o1.ID, map[string]any{"reason": "requested_by_customer", "end_access": true}); res.Code != http.StatusCreated {
		t.Fatalf("refund = %d %s", res.Code, res.Body)
	}
	h.clock.Set(ptC4)
	if res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: h.token(api.RoleOps, "delivery"),
		Body: map[string]string{"owner_id": "owner-2"}}); res.Code != http.StatusOK {
		t.Fatalf("transfer = %d %s", res.Code, res.Body)
	}
	h.clock.Set(ptC5)
	if r := h.postUsage([]map[string]any{rec("u2", v, "entertainment", gib, time.Date(2026, 1, 24, 20, 0, 0, 0, shanghai))}); r.Accepted != 1 {
		t.Fatalf("u2 not accepted: %+v", r)
	}
	h.clock.Set(ptNow)
	return v, o1, o2
}

type pointBody struct {
	OwnerID      string  `json:"owner_id"`
	State        string  `json:"state"`
	Covered      bool    `json:"covered"`
	CoveredUntil *string `json:"covered_until"`
	EvaluatedAt  string  `json:"evaluated_at"`
	Data         struct {
		CycleStart string  `json:"cycle_start"`
		UsedBytes  int64   `json:"used_bytes"`
		AsOf       *string `json:"as_of"`
	} `json:"data"`
	Point *struct {
		At        string `json:"at"`
		AsKnownAt string `json:"as_known_at"`
		Future    bool   `json:"future"`
	} `json:"point_in_time"`
}

func shanghaiStamp(t time.Time) string { return t.In(shanghai).Format(time.RFC3339Nano) }

const us = time.Microsecond

// TestEntitlementAtPointsInTime asks the car above at the edges of every
// change, on both axes, and compares with answers worked out by hand.
func TestEntitlementAtPointsInTime(t *testing.T) {
	const (
		trialEnd = "2026-01-10T00:00:00+08:00"
		o1End    = "2026-02-10T00:00:00+08:00"
		o2End    = "2026-03-13T00:00:00+08:00"
		cut      = "2026-01-25T11:00:00+08:00" // C3
		o2Moved  = "2026-02-25T11:00:00+08:00" // C3 + 31 days
		u1End    = "2026-01-05T10:10:00+08:00"
		u2End    = "2026-01-24T20:10:00+08:00"
		jan      = "2026-01-01T00:00:00+08:00"
		feb      = "2026-02-01T00:00:00+08:00"
		none     = ""
	)
	u2Ended := time.Date(2026, 1, 24, 20, 10, 0, 0, shanghai)
	cases := []struct {
		name    string
		at, k   string // query values; "" = not given
		code    int
		state   string
		until   string
		owner   string
		cycle   string
		usedGiB int64
		asOf    string
		future  bool
	}{
		// as_known_at alone replays the plain read at K.
		{"known just before activation", "", shanghaiStamp(ptC0.Add(-us)), 404, "", "", "", "", 0, "", false},
		{"known at activation", "", shanghaiStamp(ptC0), 200, "trial", trialEnd, "owner-1", "2025-01-01T00:00:00+08:00", 0, none, false},
		{"known just before the first payment", "", shanghaiStamp(ptC1.Add(-us)), 200, "trial", trialEnd, "owner-1", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"known at the first payment", "", shanghaiStamp(ptC1), 200, "trial", o1End, "owner-1", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"known just after the first payment", "", shanghaiStamp(ptC1.Add(us)), 200, "trial", o1End, "owner-1", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"known just before u1 arrived", "", shanghaiStamp(ptU1.Add(-us)), 200, "trial", o1End, "owner-1", jan, 0, none, false},
		{"known when u1 arrived", "", shanghaiStamp(ptU1), 200, "trial", o1End, "owner-1", jan, 1, u1End, false},
		{"known just before the second payment", "", shanghaiStamp(ptC2.Add(-us)), 200, "paid", o1End, "owner-1", jan, 1, u1End, false},
		{"known at the second payment", "", shanghaiStamp(ptC2), 200, "paid", o2End, "owner-1", jan, 1, u1End, false},
		{"known just before the refund", "", shanghaiStamp(ptC3.Add(-us)), 200, "paid", o2End, "owner-1", jan, 1, u1End, false},
		{"known at the refund", "", shanghaiStamp(ptC3), 200, "paid", o2Moved, "owner-1", jan, 1, u1End, false},
		{"known just after the refund", "", shanghaiStamp(ptC3.Add(us)), 200, "paid", o2Moved, "owner-1", jan, 1, u1End, false},
		{"known just before the transfer", "", shanghaiStamp(ptC4.Add(-us)), 200, "paid", o2Moved, "owner-1", feb, 0, u1End, false},
		{"known at the transfer", "", shanghaiStamp(ptC4), 200, "paid", o2Moved, "owner-2", feb, 0, u1End, false},
		{"known just before the late usage", "", shanghaiStamp(ptC5.Add(-us)), 200, "paid", o2Moved, "owner-2", feb, 0, u1End, false},
		{"known at the late usage", "", shanghaiStamp(ptC5), 200, "paid", o2Moved, "owner-2", feb, 0, u2End, false},
		{"known now", "", shanghaiStamp(ptNow), 200, "paid", o2Moved, "owner-2", feb, 0, u2End, false},

		// at alone: the timeline as it stands now, at T.
		{"at activation's local midnight (before activation)", "2025-01-10", "", 409, "", "", "", "", 0, "", false},
		{"just before activation", shanghaiStamp(ptC0.Add(-us)), "", 409, "", "", "", "", 0, "", false},
		{"at activation", shanghaiStamp(ptC0), "", 200, "trial", trialEnd, "owner-2", "2025-01-01T00:00:00+08:00", 0, none, false},
		{"just before the first payment", shanghaiStamp(ptC1.Add(-us)), "", 200, "trial", trialEnd, "owner-2", "2025-12-01T00:00:00+08:00", 0, none, false},
		// o1 as it ran: cut at C3, and o2 not bought yet.
		{"at the first payment", shanghaiStamp(ptC1), "", 200, "trial", cut, "owner-2", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"just before the trial's end", "2026-01-09T23:59:59.999999+08:00", "", 200, "trial", cut, "owner-2", jan, 1, u1End, false},
		{"at the trial's end, a local date", "2026-01-10", "", 200, "paid", cut, "owner-2", jan, 1, u1End, false},
		{"the same instant in UTC", "2026-01-09T16:00:00Z", "", 200, "paid", cut, "owner-2", jan, 1, u1End, false},
		{"just before u1 ended", "2026-01-05T10:09:59.999999+08:00", "", 200, "trial", cut, "owner-2", jan, 0, none, false},
		{"when u1 ended (not before it)", "2026-01-05T10:10:00+08:00", "", 200, "trial", cut, "owner-2", jan, 0, none, false},
		{"just after u1 ended", "2026-01-05T10:10:00.000001+08:00", "", 200, "trial", cut, "owner-2", jan, 1, u1End, false},
		{"just before the second payment", shanghaiStamp(ptC2.Add(-us)), "", 200, "paid", cut, "owner-2", jan, 1, u1End, false},
		{"at the second payment", shanghaiStamp(ptC2), "", 200, "paid", o2Moved, "owner-2", jan, 1, u1End, false},
		{"when u2 ended", shanghaiStamp(u2Ended), "", 200, "paid", o2Moved, "owner-2", jan, 1, u1End, false},
		{"just after u2 ended", shanghaiStamp(u2Ended.Add(us)), "", 200, "paid", o2Moved, "owner-2", jan, 2, u2End, false},
		{"just before the refund", shanghaiStamp(ptC3.Add(-us)), "", 200, "paid", o2Moved, "owner-2", jan, 2, u2End, false},
		{"at the refund", shanghaiStamp(ptC3), "", 200, "paid", o2Moved, "owner-2", jan, 2, u2End, false},
		{"last microsecond of January", "2026-01-31T23:59:59.999999+08:00", "", 200, "paid", o2Moved, "owner-2", jan, 2, u2End, false},
		{"February's first local midnight", "2026-02-01", "", 200, "paid", o2Moved, "owner-2", feb, 0, u2End, false},
		{"just before o2 ends (future)", "2026-02-25T10:59:59.999999+08:00", "", 200, "paid", o2Moved, "owner-2", feb, 0, u2End, true},
		{"when o2 ends (future)", "2026-02-25T11:00:00+08:00", "", 200, "expired", none, "owner-2", feb, 0, u2End, true},
		{"a future month", "2026-03-03", "", 200, "expired", none, "owner-2", "2026-03-01T00:00:00+08:00", 0, u2End, true},

		// both: T evaluated on what was known at K.
		{"T after u2 ended, known before the refund", shanghaiStamp(u2Ended.Add(time.Hour)), shanghaiStamp(ptC3.Add(-us)), 200, "paid", o2End, "owner-1", jan, 1, u1End, false},
		{"T after u2 ended, known after the late usage", shanghaiStamp(u2Ended.Add(time.Hour)), shanghaiStamp(ptC5), 200, "paid", o2Moved, "owner-2", jan, 2, u2End, false},
		{"T at the refund, known at the refund", shanghaiStamp(ptC3), shanghaiStamp(ptC3), 200, "paid", o2Moved, "owner-1", jan, 1, u1End, false},
		{"T at the first payment, known then", shanghaiStamp(ptC1), shanghaiStamp(ptC1), 200, "trial", o1End, "owner-1", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"T before the first payment, known after it", shanghaiStamp(ptC1.Add(-us)), shanghaiStamp(ptC1.Add(us)), 200, "trial", trialEnd, "owner-1", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"December 1 as the app showed it then", "2025-12-01", "2025-12-01", 200, "trial", trialEnd, "owner-1", "2025-12-01T00:00:00+08:00", 0, none, false},
		{"a future T known before the refund", "2026-03-12", shanghaiStamp(ptC3.Add(-us)), 200, "paid", o2End, "owner-1", "2026-03-01T00:00:00+08:00", 0, u1End, true},
		{"a known_at before activation", shanghaiStamp(ptC1), shanghaiStamp(ptC0.Add(-us)), 404, "", "", "", "", 0, "", false},
	}
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v, _, _ := pointCar(t, h)
		tok := h.token(api.RoleBilling, "bill")
		for _, c := range cases {
			q := url.Values{}
			if c.at != "" {
				q.Set("at", c.at)
			}
			if c.k != "" {
				q.Set("as_known_at", c.k)
			}
			res := h.get("/v1/vehicles/"+v+"/entitlement?"+q.Encode(), tok)
			if res.Code != c.code {
				t.Errorf("%s: status = %d %s, want %d", c.name, res.Code, res.Body, c.code)
				continue
			}
			if c.code != http.StatusOK {
				if p := res.problem(t); p.Code != map[int]string{404: "vehicle_not_found", 409: "not_activated"}[c.code] {
					t.Errorf("%s: code = %s", c.name, p.Code)
				}
				continue
			}
			var e pointBody
			res.decode(t, &e)
			until := ""
			if e.CoveredUntil != nil {
				until = *e.CoveredUntil
			}
			asOf := ""
			if e.Data.AsOf != nil {
				asOf = *e.Data.AsOf
			}
			if e.State != c.state || until != c.until || e.OwnerID != c.owner {
				t.Errorf("%s: state, covered_until, owner = %s %q %s, want %s %q %s", c.name, e.State, until, e.OwnerID, c.state, c.until, c.owner)
			}
			if e.Data.CycleStart != c.cycle || e.Data.UsedBytes != c.usedGiB*gib || asOf != c.asOf {
				t.Errorf("%s: cycle, used, as_of = %s %d %q, want %s %d %q", c.name, e.Data.CycleStart, e.Data.UsedBytes, asOf,
					c.cycle, c.usedGiB*gib, c.asOf)
			}
			if e.Point == nil || e.Point.Future != c.future {
				t.Errorf("%s: point_in_time = %+v, want future %v", c.name, e.Point, c.future)
			}
		}
	})
}

// TestFeatureAtPointsInTime: the feature reads answer the same points,
// with not_activated before activation, and for the same callers.
func TestFeatureAtPointsInTime(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v, _, _ := pointCar(t, h)
		for _, c := range []struct {
			name, query, token string
			code               int
			allowed            bool
			reason             string
		}{
			{"karaoke on March 3 (the package ended on Feb 25)", "at=2026-03-03", h.token(api.RoleVehicle, v), 200, false, "not_covered"},
			{"karaoke before the refund, as known now", "at=" + url.QueryEscape(shanghaiStamp(ptC3.Add(-us))), h.token(api.RoleOwner, "owner-2"), 200, true, "covered"},
			{"karaoke on March 3 as known before the refund", "at=2026-03-03&as_known_at=" + url.QueryEscape(shanghaiStamp(ptC3.Add(-us))), h.token(api.RoleOps, "ops"), 200, true, "covered"},
			{"karaoke over a hotspot after coverage", "at=2026-03-03&connection=hotspot", h.token(api.RoleBilling, "bill"), 200, true, "external_network"},
			{"karaoke before activation", "at=2025-01-01", h.token(api.RoleVehicle, v), 200, false, "not_activated"},
			{"karaoke as known before activation", "as_known_at=2025-01-01", h.token(api.RoleOwner, "owner-2"), 200, false, "not_activated"},
			{"the previous owner", "at=" + url.QueryEscape(shanghaiStamp(ptC3.Add(-us))), h.token(api.RoleOwner, "owner-1"), 404, false, ""},
			{"another car", "at=2026-01-20", h.token(api.RoleVehicle, vin("LSVPT4E10P2000002")), 404, false, ""},
		} {
			res := h.get("/v1/vehicles/"+v+"/features/karaoke?"+c.query, c.token)
			if res.Code != c.code {
				t.Errorf("%s: status = %d %s, want %d", c.name, res.Code, res.Body, c.code)
				continue
			}
			if c.code != http.StatusOK {
				if p := res.problem(t); p.Code != "vehicle_not_found" {
					t.Errorf("%s: code = %s, want vehicle_not_found", c.name, p.Code)
				}
				continue
			}
			var f featureBody
			res.decode(t, &f)
			if f.Allowed != c.allowed || f.Reason != c.reason {
				t.Errorf("%s: allowed, reason = %v %s, want %v %s", c.name, f.Allowed, f.Reason, c.allowed, c.reason)
			}
		}
		res := h.get("/v1/vehicles/"+v+"/features?at=2025-01-01", h.token(api.RoleOps, "ops"))
		var list struct {
			Covered  bool          `json:"covered"`
			Features []featureBody `json:"features"`
		}
		res.decode(t, &list)
		if res.Code != http.StatusOK || list.Covered || len(list.Features) == 0 || list.Features[0].Reason != "not_activated" {
			t.Errorf("features before activation = %d %s, want not_activated decisions", res.Code, res.Body)
		}
	})
}

// TestPointInTimeBadInstants: an instant that does not parse, or has no
// offset, or an as_known_at in the future, is a 400 naming the field.
func TestPointInTimeBadInstants(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVPT4E10P2000003")
		h.activate(v, "owner-1", h.clock.Now().Add(-time.Hour))
		tok := h.token(api.RoleOps, "ops")
		for _, c := range []struct {
			query, field, code string
		}{
			{"at=yesterday", "at", "invalid_time"},
			{"at=2026-03-03T10:00:00", "at", "offset_required"},
			{"at=", "at", "invalid_time"},
			{"at=2026-02-30", "at", "invalid_time"},
			{"as_known_at=2026-03-03T10:00:00", "as_known_at", "offset_required"},
			{"as_known_at=2099-01-01", "as_known_at", "in_the_future"},
			{"at=0001-01-01T00:00:00Z", "at", "invalid_time"},
		} {
			for _, path := range []string{"/entitlement", "/features", "/features/karaoke"} {
				res := h.get("/v1/vehicles/"+v+path+"?"+c.query, tok)
				if res.Code != http.StatusBadRequest {
					t.Errorf("%s?%s = %d %s, want 400", path, c.query, res.Code, res.Body)
					continue
				}
				p := res.problem(t)
				if p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Field != c.field || p.Errors[0].Code != c.code {
					t.Errorf("%s?%s: problem %+v, want %s %s", path, c.query, p, c.field, c.code)
				}
			}
		}
		// An offset whose '+' arrived unencoded (a space) still reads.
		if res := h.get("/v1/vehicles/"+v+"/entitlement?at=2026-06-15T11:00:00+08:00", tok); res.Code != http.StatusOK {
			t.Errorf("unencoded + = %d %s, want 200", res.Code, res.Body)
		}
	})
}

// TestTimelineHistory: every change is a version, newest first, with its
// cause, for billing and ops only.
func TestTimelineHistory(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v, o1, o2 := pointCar(t, h)
		res := h.get("/v1/vehicles/"+v+"/timeline/history", h.token(api.RoleBilling, "bill"))
		if res.Code != http.StatusOK {
			t.Fatalf("history = %d %s", res.Code, res.Body)
		}
		var hist struct {
			Versions []struct {
				Version    int          `json:"version"`
				RecordedAt string       `json:"recorded_at"`
				Cause      string       `json:"cause"`
				OrderID    *string      `json:"order_id"`
				RefundID   *string      `json:"refund_id"`
				OwnerID    string       `json:"owner_id"`
				Periods    []periodBody `json:"periods"`
			} `json:"versions"`
		}
		res.decode(t, &hist)
		want := []struct {
			cause, order string
			at           time.Time
			owner        string
			periods      int
			changed      int
		}{
			{"vehicle.owner_transferred", "", ptC4, "owner-2", 3, 0},
			{"refund.issued", o1.ID, ptC3, "owner-1", 3, 2},
			{"payment.applied", o2.ID, ptC2, "owner-1", 3, 1},
			{"payment.applied", o1.ID, ptC1, "owner-1", 2, 1},
			{"vehicle.activated", "", ptC0, "owner-1", 1, 1},
		}
		if len(hist.Versions) != len(want) {
			t.Fatalf("history has %d versions, want %d: %s", len(hist.Versions), len(want), res.Body)
		}
		for i, w := range want {
			g := hist.Versions[i]
			order := ""
			if g.OrderID != nil {
				order = *g.OrderID
			}
			if g.Version != len(want)-i || g.Cause != w.cause || order != w.order || g.RecordedAt != shanghaiStamp(w.at) ||
				g.OwnerID != w.owner || len(g.Periods) != w.changed {
				t.Errorf("version %d = %+v, want %+v", len(want)-i, g, w)
			}
		}
		if r := hist.Versions[1].RefundID; r == nil || *r == "" {
			t.Errorf("the refund's version names no refund")
		}
		for _, tok := range []string{h.token(api.RoleOwner, "owner-2"), h.token(api.RoleVehicle, v), h.token(api.RoleCarrier, "c")} {
			if res := h.get("/v1/vehicles/"+v+"/timeline/history", tok); res.Code != http.StatusForbidden {
				t.Errorf("history for a non-staff token = %d, want 403", res.Code)
			}
		}
		if res := h.get("/v1/vehicles/"+vin("LSVPT4E10P2000009")+"/timeline/history", h.token(api.RoleOps, "ops")); res.Code != http.StatusNotFound {
			t.Errorf("history of an unknown car = %d, want 404", res.Code)
		}
	})
}

// TestAsKnownAtReplaysThePlainRead builds random histories (payments, some
// confirmed late; refunds of every kind; transfers; usage arriving late and
// out of order) with the clock moving by microseconds to weeks, records the
// plain reads after every step, and then asks as_known_at for each step's
// instant: the answer must be the one recorded, and as_known_at=now must
// be the plain read.
func TestAsKnownAtReplaysThePlainRead(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		seeds := 4
		if h.dialect != "sqlite" {
			seeds = 2
		}
		for seed := 1; seed <= seeds; seed++ {
			replayRandomHistory(t, h, uint64(seed))
		}
	})
}

type plainAnswer struct {
	at    time.Time
	paths map[string]response
}

func replayRandomHistory(t *testing.T, h *harness, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	v := vin(fmt.Sprintf("LSVPR4E10P%07d", seed))
	start := time.Date(2025, 2, 27, 0, 0, 0, 0, shanghai).Add(time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Microsecond)
	h.clock.Set(start)
	h.activate(v, "owner-1", start.Add(-time.Duration(rng.Int64N(int64(48*time.Hour)))).Truncate(time.Second))
	owner := "owner-1"
	var orders []string
	paths := []string{"/entitlement", "/features", "/features/karaoke", "/features/music_streaming?connection=hotspot"}
	var answers []plainAnswer
	record := func() {
		a := plainAnswer{at: h.clock.Now(), paths: map[string]response{}}
		for _, p := range paths {
			a.paths[p] = h.get("/v1/vehicles/"+v+p, h.token(api.RoleOps, "ops"))
		}
		answers = append(answers, a)
	}
	record()
	nrec := 0
	for step := 0; step < 24; step++ {
		switch rng.IntN(4) {
		case 0:
			h.clock.Advance(time.Duration(1+rng.IntN(3)) * time.Microsecond)
		case 1:
			h.clock.Advance(time.Duration(rng.Int64N(int64(6 * time.Hour))).Truncate(time.Microsecond))
		default:
			h.clock.Advance(time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))).Truncate(time.Microsecond))
		}
		switch rng.IntN(6) {
		case 0, 1: // a payment, sometimes confirmed minutes after it was made
			product := []string{"monthly", "yearly"}[rng.IntN(2)]
			o := h.createOrder(v, owner, product)
			paidAt := h.clock.Now()
			if rng.IntN(2) == 0 {
				h.clock.Advance(time.Duration(rng.IntN(20)) * time.Minute)
			}
			if res := h.notify(succeeded(o, "evt-"+o.ID, paidAt)); res.Code != http.StatusOK {
				t.Fatalf("seed %d: pay = %d %s", seed, res.Code, res.Body)
			}
			orders = append(orders, o.ID)
		case 2: // a refund of any kind; a refused one changes nothing
			if len(orders) == 0 {
				continue
			}
			body := map[string]any{"reason": "other"}
			switch rng.IntN(3) {
			case 0:
				body["end_access"] = true
			case 1:
				body["amount_fen"] = 1 + rng.IntN(100)
			case 2:
				body["amount_fen"], body["end_access"] = 1+rng.IntN(100), true
			}
			h.refund(orders[rng.IntN(len(orders))], body)
		case 3:
			owner = fmt.Sprintf("owner-%d", step+2)
			if res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: h.token(api.RoleOps, "delivery"),
				Body: map[string]string{"owner_id": owner}}); res.Code != http.StatusOK {
				t.Fatalf("seed %d: transfer = %d %s", seed, res.Code, res.Body)
			}
		default: // usage, late and out of order, now and then from the previous month
			var recs []map[string]any
			for range 1 + rng.IntN(3) {
				nrec++
				started := h.clock.Now().Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))).Truncate(time.Second)
				r := rec(fmt.Sprintf("r%d-%d", seed, nrec), v, []string{"entertainment", "basic"}[rng.IntN(2)],
					rng.Int64N(4*gib), started)
				recs = append(recs, r)
			}
			h.postUsage(recs)
		}
		record()
	}
	now := h.clock.Now()
	tok := h.token(api.RoleOps, "ops")
	ask := func(k time.Time, want plainAnswer) {
		t.Helper()
		for _, p := range paths {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			got := h.get("/v1/vehicles/"+v+p+sep+"as_known_at="+url.QueryEscape(shanghaiStamp(k)), tok)
			if !sameAnswer(t, got, want.paths[p]) {
				t.Errorf("seed %d: %s as known at %s:\n got %d %s\nwant %d %s", seed, p, shanghaiStamp(k), got.Code, got.Body,
					want.paths[p].Code, want.paths[p].Body)
			}
		}
	}
	for _, a := range answers {
		ask(a.at, a)
	}
	current := plainAnswer{at: now, paths: map[string]response{}}
	for _, p := range paths {
		current.paths[p] = h.get("/v1/vehicles/"+v+p, tok)
	}
	ask(now, current)
}

// sameAnswer compares two responses' status and JSON bodies, leaving out
// point_in_time (which only a point-in-time read has).
func sameAnswer(t *testing.T, a, b response) bool {
	t.Helper()
	if a.Code != b.Code {
		return false
	}
	var x, y map[string]any
	if json.Unmarshal(a.Body, &x) != nil || json.Unmarshal(b.Body, &y) != nil {
		return bytes.Equal(a.Body, b.Body)
	}
	delete(x, "point_in_time")
	delete(y, "point_in_time")
	delete(x, "request_id")
	delete(y, "request_id")
	return reflect.DeepEqual(x, y)
}

// pointEdges are the instants around the car's changes: each change, a
// microsecond before and after, and the local midnights and month
// boundaries in between.
func pointEdges() []time.Time {
	var out []time.Time
	for _, c := range []time.Time{ptC0, ptC1, ptU1, ptC2, ptC3, ptC4, ptC5, ptNow,
		time.Date(2025, 12, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 1, 1, 0, 0, 0, 0, shanghai),
		time.Date(2026, 1, 10, 0, 0, 0, 0, shanghai), time.Date(2026, 2, 1, 0, 0, 0, 0, shanghai),
		time.Date(2026, 1, 24, 20, 10, 0, 0, shanghai), time.Date(2026, 1, 5, 10, 10, 0, 0, shanghai)} {
		out = append(out, c.Add(-us), c, c.Add(us))
	}
	return out
}

// TestEveryPointOfTheCar asks every combination of valid and known time
// at the car's edges: each answers 200, 404 (not known then) or 409
// (before activation), matches the OpenAPI document, and at=K with
// as_known_at=K answers what as_known_at=K alone does (the car's records
// all ended before they arrived, so the two count the same usage).
func TestEveryPointOfTheCar(t *testing.T) {
	eachUsageBackend(t, func(t *testing.T, h *harness) {
		v, _, _ := pointCar(t, h)
		tok := h.token(api.RoleOps, "ops")
		edges := pointEdges()
		get := func(q url.Values) response {
			return h.get("/v1/vehicles/"+v+"/entitlement?"+q.Encode(), tok)
		}
		for _, k := range edges {
			if k.After(ptNow) {
				continue
			}
			alone := get(url.Values{"as_known_at": {shanghaiStamp(k)}})
			for _, at := range edges {
				res := get(url.Values{"at": {shanghaiStamp(at)}, "as_known_at": {shanghaiStamp(k)}})
				switch {
				case res.Code == http.StatusOK, res.Code == http.StatusNotFound && k.Before(ptC0),
					res.Code == http.StatusConflict && at.Before(ptC0):
				default:
					t.Errorf("at %s as known at %s = %d %s", shanghaiStamp(at), shanghaiStamp(k), res.Code, res.Body)
				}
				if at.Equal(k) && !sameAnswer(t, res, alone) {
					t.Errorf("at=as_known_at=%s:\n got %d %s\nwant %d %s", shanghaiStamp(k), res.Code, res.Body, alone.Code, alone.Body)
				}
			}
		}
	})
}
