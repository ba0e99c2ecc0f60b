package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store/storetest"
)

type previewBody struct {
	DryRun       bool              `json:"dry_run"`
	OrderID      string            `json:"order_id"`
	AmountFen    int64             `json:"amount_fen"`
	EndAccess    bool              `json:"end_access"`
	PeriodAction string            `json:"period_action"`
	CoveredUntil *string           `json:"covered_until"`
	Periods      []json.RawMessage `json:"periods"`
}

// dryRefund asks what a refund would do, as billing operator bob.
func (h *harness) dryRefund(orderID string, body map[string]any) response {
	h.t.Helper()
	return h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + orderID + "/refunds?dry_run=true",
		Token: h.token(api.RoleBilling, "bob"), Body: body})
}

// written is everything a refund could write, read straight from the
// database, plus the vehicle's entitlement and the order as the API shows
// them.
func (h *harness) written(v, orderID string) string {
	h.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT COUNT(*) FROM refunds`,
		`SELECT COUNT(*) FROM notices`,
		`SELECT COUNT(*) FROM idempotency_keys`,
		`SELECT COUNT(*) FROM periods WHERE refunded_at IS NOT NULL`,
	} {
		var n int64
		if err := storetest.Query(h.db, &n, q); err != nil {
			h.t.Fatalf("%s: %v", q, err)
		}
		fmt.Fprintf(&b, "%s = %d\n", q, n)
	}
	type row struct {
		ID       string
		StartsAt time.Time
		EndsAt   time.Time
	}
	var ps []row
	if err := storetest.Query(h.db, &ps, `SELECT id, starts_at, ends_at FROM periods WHERE vin = ? ORDER BY seq`, v); err != nil {
		h.t.Fatalf("periods: %v", err)
	}
	fmt.Fprintf(&b, "periods %v\n", ps)
	res := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOps, "ops"))
	fmt.Fprintf(&b, "entitlement %s\n", res.Body)
	fmt.Fprintf(&b, "order %s\n", h.get("/v1/orders/"+orderID, h.token(api.RoleBilling, "bill")).Body)
	return b.String()
}

// entitlementPeriods is the raw periods and covered_until of the vehicle.
func (h *harness) entitlementPeriods(v string) ([]json.RawMessage, *string) {
	h.t.Helper()
	var e struct {
		CoveredUntil *string           `json:"covered_until"`
		Periods      []json.RawMessage `json:"periods"`
	}
	h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOps, "ops")).decode(h.t, &e)
	return e.Periods, e.CoveredUntil
}

func TestRefundDryRunWritesNothingAndMatchesTheRefund(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		cases := []struct {
			name    string
			body    string
			advance time.Duration
			product string
			body2   map[string]any
			action  string
		}{
			{"not started: removed", "LSVAX4E10P2400001", 0, "", map[string]any{"reason": "requested_by_customer", "note": "changed mind"}, "removed"},
			{"running: cut", "LSVAX4E10P2400002", 31 * 24 * time.Hour / 3, "lapsed", map[string]any{"reason": "service_issue"}, "cut"},
			{"goodwill: kept", "LSVAX4E10P2400003", time.Hour, "lapsed", map[string]any{"reason": "other", "amount_fen": 500}, "kept"},
			{"goodwill ending access", "LSVAX4E10P2400004", time.Hour, "lapsed", map[string]any{"reason": "fraudulent", "amount_fen": 700, "end_access": true}, "cut"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var v string
				var o orderBody
				if tc.product == "lapsed" {
					v, o = h.boughtAfterLapse(tc.body, "monthly")
				} else {
					v = vin(tc.body)
					h.activate(v, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
					o = h.pay(h.createOrder(v, "alice", "monthly"))
					// a second package behind it, which the refund moves
					h.pay(h.createOrder(v, "alice", "yearly"))
				}
				h.clock.Advance(tc.advance)
				defer h.clock.Advance(-tc.advance)

				before := h.written(v, o.ID)
				res := h.dryRefund(o.ID, tc.body2)
				if res.Code != http.StatusOK {
					t.Fatalf("dry run = %d %s, want 200", res.Code, res.Body)
				}
				var p previewBody
				res.decode(t, &p)
				if !p.DryRun || p.OrderID != o.ID || p.PeriodAction != tc.action || p.AmountFen <= 0 {
					t.Fatalf("dry run = %s, want a %s refund of order %s", res.Body, tc.action, o.ID)
				}
				if after := h.written(v, o.ID); after != before {
					t.Fatalf("the dry run wrote something:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				// Twice: a dry run does not use anything up.
				var p2 previewBody
				h.dryRefund(o.ID, tc.body2).decode(t, &p2)
				if p2.AmountFen != p.AmountFen {
					t.Errorf("second dry run = %d fen, first %d", p2.AmountFen, p.AmountFen)
				}

				real := h.refund(o.ID, tc.body2)
				var r refundBody
				real.decode(t, &r)
				if real.Code != http.StatusCreated || r.AmountFen != p.AmountFen || r.PeriodAction != p.PeriodAction || r.EndAccess != p.EndAccess {
					t.Fatalf("refund = %d %s, want 201 as previewed: %d fen, %s, end_access %v",
						real.Code, real.Body, p.AmountFen, p.PeriodAction, p.EndAccess)
				}
				periods, until := h.entitlementPeriods(v)
				if !reflect.DeepEqual(periods, p.Periods) {
					t.Errorf("periods after the refund:\n%s\nas previewed:\n%s", periods, p.Periods)
				}
				if fmt.Sprint(deref(until)) != fmt.Sprint(deref(p.CoveredUntil)) {
					t.Errorf("covered_until = %v, previewed %v", deref(until), deref(p.CoveredUntil))
				}
			})
		}
		t.Run("refusals are the real request's", func(t *testing.T) {
			v := vin("LSVAX4E10P2400009")
			h.activate(v, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
			unpaid := h.createOrder(v, "alice", "monthly")
			if res := h.dryRefund(unpaid.ID, map[string]any{"reason": "other"}); res.Code != 409 || res.problem(t).Code != "order_not_paid" {
				t.Errorf("dry run of an unpaid order = %d %s, want 409 order_not_paid", res.Code, res.Body)
			}
			_, o := h.boughtAfterLapse("LSVAX4E10P2400010", "monthly")
			if res := h.dryRefund(o.ID, map[string]any{"reason": "other", "amount_fen": 1991}); res.Code != 422 || res.problem(t).Code != "refund_exceeds_balance" {
				t.Errorf("dry run over the balance = %d %s, want 422 refund_exceeds_balance", res.Code, res.Body)
			}
			h.clock.Advance(32 * 24 * time.Hour)
			defer h.clock.Advance(-32 * 24 * time.Hour)
			if res := h.dryRefund(o.ID, map[string]any{"reason": "other"}); res.Code != 422 || res.problem(t).Code != "nothing_refundable" {
				t.Errorf("dry run of an ended period = %d %s, want 422 nothing_refundable", res.Code, res.Body)
			}
			if res := h.dryRefund("ord_missing", map[string]any{"reason": "other"}); res.Code != 404 {
				t.Errorf("dry run of an unknown order = %d %s, want 404", res.Code, res.Body)
			}
			res := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds?dry_run=yes",
				Token: h.token(api.RoleBilling, "bob"), Body: map[string]any{"reason": "other"}})
			if res.Code != 400 || !strings.Contains(string(res.Body), "dry_run") {
				t.Errorf("dry_run=yes = %d %s, want 400 naming dry_run", res.Code, res.Body)
			}
			res = h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds?dry_run=true",
				Token: h.token(api.RoleOps, "olga"), Body: map[string]any{"reason": "other"}})
			if res.Code != 403 {
				t.Errorf("dry run as ops = %d, want 403", res.Code)
			}
		})
	})
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestVehiclesOfAnOwner(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		base := time.Date(2025, 3, 1, 10, 0, 0, 0, shanghai)
		var alice []string
		for i := range 3 {
			v := vin(fmt.Sprintf("LSVAX4E10P25%05d", i))
			h.activate(v, "alice", base.Add(time.Duration(i)*24*time.Hour))
			alice = append(alice, v)
		}
		h.activate(vin("LSVAX4E10P2599999"), "carol", base)
		staff := h.token(api.RoleBilling, "bob")
		type list struct {
			Vehicles []struct {
				VIN     string `json:"vin"`
				OwnerID string `json:"owner_id"`
				Model   string `json:"model"`
			} `json:"vehicles"`
			NextCursor *string `json:"next_cursor"`
		}
		var got []string
		cursor := ""
		for page := 0; page < 3; page++ {
			res := h.get("/v1/vehicles?owner_id=alice&limit=2"+cursor, staff)
			if res.Code != http.StatusOK {
				t.Fatalf("list = %d %s", res.Code, res.Body)
			}
			var l list
			res.decode(t, &l)
			for _, v := range l.Vehicles {
				if v.OwnerID != "alice" || v.Model != "SU7" {
					t.Errorf("vehicle %+v, want alice's SU7", v)
				}
				got = append(got, v.VIN)
			}
			if l.NextCursor == nil {
				break
			}
			cursor = "&cursor=" + *l.NextCursor
		}
		want := []string{alice[2], alice[1], alice[0]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("alice's vehicles = %v, want %v (newest activation first)", got, want)
		}
		var none list
		if res := h.get("/v1/vehicles?owner_id=nobody", h.token(api.RoleOps, "olga")); res.Code != 200 {
			t.Errorf("ops, unknown owner = %d %s, want 200 empty", res.Code, res.Body)
		} else if res.decode(t, &none); len(none.Vehicles) != 0 || none.NextCursor != nil {
			t.Errorf("unknown owner = %+v, want empty", none)
		}
		if res := h.get("/v1/vehicles", staff); res.Code != 400 || !strings.Contains(string(res.Body), "owner_id") {
			t.Errorf("without owner_id = %d %s, want 400 naming owner_id", res.Code, res.Body)
		}
		if res := h.get("/v1/vehicles?owner_id=alice&cursor=%%%", staff); res.Code != 400 {
			t.Errorf("bad cursor = %d, want 400", res.Code)
		}
		for _, tok := range []string{h.token(api.RoleOwner, "alice"), h.token(api.RoleVehicle, alice[0]), h.token(api.RoleCarrier, "cmcc")} {
			if res := h.get("/v1/vehicles?owner_id=alice", tok); res.Code != 403 {
				t.Errorf("non-staff list = %d %s, want 403", res.Code, res.Body)
			}
		}
	})
}

func TestRefundsFilterByOperator(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		_, o := h.boughtAfterLapse("LSVAX4E10P2600001", "monthly")
		for _, op := range []string{"bob", "erin", "erin"} {
			res := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: h.token(api.RoleBilling, op),
				Body: map[string]any{"reason": "other", "amount_fen": 100}, Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("op-%d", refundKeys.Add(1))}})
			if res.Code != http.StatusCreated {
				t.Fatalf("refund by %s = %d %s", op, res.Code, res.Body)
			}
		}
		billing := h.token(api.RoleBilling, "bob")
		var l struct {
			Refunds []refundBody `json:"refunds"`
		}
		h.get("/v1/refunds?operator=erin", billing).decode(t, &l)
		if len(l.Refunds) != 2 || l.Refunds[0].CreatedBy != "erin" || l.Refunds[1].CreatedBy != "erin" {
			t.Errorf("operator=erin = %+v, want erin's 2 refunds", l.Refunds)
		}
		res := h.get("/v1/refunds?format=csv&operator=bob", billing)
		if lines := strings.Count(string(res.Body), "\r\n"); res.Code != 200 || lines != 2 || !strings.Contains(string(res.Body), ",bob,") {
			t.Errorf("CSV operator=bob = %d %q, want the header and bob's refund", res.Code, res.Body)
		}
		if res := h.get("/v1/refunds?operator="+strings.Repeat("x", 129), billing); res.Code != 400 {
			t.Errorf("129-character operator = %d, want 400", res.Code)
		}
	})
}

func TestConsoleIsServedWithAStrictPolicy(t *testing.T) {
	h := newHarness(t, "sqlite")
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	for path, ctype := range map[string]string{
		"/console/":            "text/html; charset=utf-8",
		"/console/js/main.js":  "text/javascript; charset=utf-8",
		"/console/console.css": "text/css; charset=utf-8",
		"/console/config.json": "application/json; charset=utf-8",
	} {
		w := get(path)
		if w.Code != 200 || w.Header().Get("Content-Type") != ctype {
			t.Errorf("GET %s = %d %s, want 200 %s", path, w.Code, w.Header().Get("Content-Type"), ctype)
		}
		if got := w.Header().Get("Content-Security-Policy"); got != api.ConsoleCSP {
			t.Errorf("GET %s: Content-Security-Policy = %q", path, got)
		}
		if w.Header().Get("Set-Cookie") != "" {
			t.Errorf("GET %s sets a cookie", path)
		}
	}
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(api.ConsoleCSP, want) {
			t.Errorf("the policy lacks %s", want)
		}
	}
	if strings.Contains(api.ConsoleCSP, "unsafe") {
		t.Errorf("the policy allows something unsafe: %s", api.ConsoleCSP)
	}
	var cfg struct {
		Zone          string                `json:"zone"`
		OffsetSeconds int                   `json:"offset_seconds"`
		AuditActions  []billing.AuditAction `json:"audit_actions"`
	}
	if err := json.Unmarshal(get("/console/config.json").Body.Bytes(), &cfg); err != nil || cfg.Zone != "Asia/Shanghai" || cfg.OffsetSeconds != 8*3600 {
		t.Errorf("config.json = %+v (%v), want Asia/Shanghai +8h", cfg, err)
	}
	if !slices.Equal(cfg.AuditActions, billing.AuditActions) {
		t.Errorf("config.json audit_actions = %v, want billing.AuditActions %v", cfg.AuditActions, billing.AuditActions)
	}
	if w := get("/console"); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/console/" {
		t.Errorf("GET /console = %d %s, want a redirect to /console/", w.Code, w.Header().Get("Location"))
	}
	for _, path := range []string{"/console/nope.js", "/console/js", "/console/../openapi.yaml/x"} {
		if w := get(path); w.Code != 404 || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s = %d %s, want 404 problem", path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	// No inline script or style for the policy to refuse.
	index := get("/console/").Body.String()
	for _, bad := range []string{"<script>", " style=", " onclick=", " onload=", "http://", "https://"} {
		if strings.Contains(index, bad) {
			t.Errorf("index.html has %q", bad)
		}
	}
}
