package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/store/storetest"
)

type refundBody struct {
	ID           string `json:"id"`
	OrderID      string `json:"order_id"`
	AmountFen    int64  `json:"amount_fen"`
	Reason       string `json:"reason"`
	Note         string `json:"note"`
	EndAccess    bool   `json:"end_access"`
	PeriodAction string `json:"period_action"`
	CreatedBy    string `json:"created_by"`
}

var refundKeys atomic.Int64

// refund asks for a refund as billing operator bob with a fresh key.
func (h *harness) refund(orderID string, body map[string]any) response {
	h.t.Helper()
	return h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + orderID + "/refunds", Token: h.token(api.RoleBilling, "bob"),
		Body: body, Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("r-%d", refundKeys.Add(1))}})
}

// boughtAfterLapse activates a car whose trial ended in January 2026 and
// pays for product at the harness clock.
func (h *harness) boughtAfterLapse(body, product string) (string, orderBody) {
	h.t.Helper()
	v := vin(body)
	h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
	o := h.createOrder(v, "alice", product)
	return v, h.pay(o)
}

func TestRefundRules(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		t.Run("not started: full amount, period removed", func(t *testing.T) {
			v := vin("LSVAX4E10P2300001")
			h.activate(v, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
			o := h.pay(h.createOrder(v, "alice", "monthly"))
			res := h.refund(o.ID, map[string]any{"reason": "requested_by_customer", "note": "changed mind"})
			var r refundBody
			res.decode(t, &r)
			if res.Code != 201 || r.AmountFen != 1990 || r.PeriodAction != "removed" || !r.EndAccess || r.CreatedBy != "bob" {
				t.Fatalf("refund = %d %s, want 201 of 1990 fen, removed, by bob", res.Code, res.Body)
			}
			e := h.entitlementOf(v)
			if ps := paidPeriods(e); len(ps) != 1 || ps[0].Status != "refunded" {
				t.Errorf("periods = %+v, want the order's period refunded", ps)
			}
			if e.CoveredUntil == nil || *e.CoveredUntil != "2026-09-03T00:00:00+08:00" {
				t.Errorf("covered_until = %v, want the trial's end", e.CoveredUntil)
			}
			if got := h.orderOf(o.ID); got.Status != "refunded" || got.RefundedFen != 1990 {
				t.Errorf("order = %s refunded_fen %d, want refunded 1990", got.Status, got.RefundedFen)
			}
			checkCoverageEnd(t, h, v, "2026-09-03T00:00:00+08:00")
		})
		t.Run("half used: half, access ends now", func(t *testing.T) {
			v, o := h.boughtAfterLapse("LSVAX4E10P2300002", "monthly")
			h.clock.Advance(31 * 24 * time.Hour / 2)
			defer h.clock.Advance(-31 * 24 * time.Hour / 2)
			res := h.refund(o.ID, map[string]any{"reason": "service_issue"})
			var r refundBody
			res.decode(t, &r)
			if res.Code != 201 || r.AmountFen != 995 || r.PeriodAction != "cut" {
				t.Fatalf("refund = %d %s, want 201 of 995 fen, cut", res.Code, res.Body)
			}
			e := h.entitlementOf(v)
			if e.Covered || e.State != "expired" {
				t.Errorf("after the refund: covered=%v state=%s, want not covered, expired", e.Covered, e.State)
			}
			if got := h.orderOf(o.ID); got.Status != "partially_refunded" || got.RefundedFen != 995 {
				t.Errorf("order = %s refunded_fen %d, want partially_refunded 995", got.Status, got.RefundedFen)
			}
			again := h.refund(o.ID, map[string]any{"reason": "service_issue"})
			if again.Code != 422 || again.problem(t).Code != "nothing_refundable" {
				t.Errorf("second default refund = %d %s, want 422 nothing_refundable", again.Code, again.Body)
			}
		})
		t.Run("ended: nothing refundable", func(t *testing.T) {
			_, o := h.boughtAfterLapse("LSVAX4E10P2300003", "monthly")
			h.clock.Advance(32 * 24 * time.Hour)
			defer h.clock.Advance(-32 * 24 * time.Hour)
			res := h.refund(o.ID, map[string]any{"reason": "other"})
			if res.Code != 422 || res.problem(t).Code != "nothing_refundable" {
				t.Errorf("refund = %d %s, want 422 nothing_refundable", res.Code, res.Body)
			}
		})
		t.Run("goodwill at and over the balance", func(t *testing.T) {
			v, o := h.boughtAfterLapse("LSVAX4E10P2300004", "monthly")
			if res := h.refund(o.ID, map[string]any{"reason": "service_issue", "amount_fen": 1000}); res.Code != 201 {
				t.Fatalf("goodwill 1000 = %d %s", res.Code, res.Body)
			}
			if res := h.refund(o.ID, map[string]any{"reason": "service_issue", "amount_fen": 991}); res.Code != 422 || res.problem(t).Code != "refund_exceeds_balance" {
				t.Errorf("goodwill 991 of 990 left = %d %s, want 422 refund_exceeds_balance", res.Code, res.Body)
			}
			if res := h.refund(o.ID, map[string]any{"reason": "service_issue", "amount_fen": 990}); res.Code != 201 {
				t.Errorf("goodwill 990 of 990 left = %d %s, want 201", res.Code, res.Body)
			}
			if e := h.entitlementOf(v); !e.Covered || paidPeriods(e)[0].Status != "active" {
				t.Errorf("goodwill without end_access cut access: %+v", e)
			}
			if got := h.orderOf(o.ID); got.Status != "refunded" || got.RefundedFen != 1990 {
				t.Errorf("order = %s %d, want refunded 1990", got.Status, got.RefundedFen)
			}
		})
		t.Run("monthly refunded, the stacked yearly moves earlier by the cut", func(t *testing.T) {
			v, m := h.boughtAfterLapse("LSVAX4E10P2300005", "monthly")
			y := h.pay(h.createOrder(v, "alice", "yearly"))
			before := paidPeriods(h.entitlementOf(v))
			h.clock.Advance(10 * 24 * time.Hour)
			defer h.clock.Advance(-10 * 24 * time.Hour)
			cutAt := h.clock.Now()
			res := h.refund(m.ID, map[string]any{"reason": "requested_by_customer"})
			var r refundBody
			res.decode(t, &r)
			if res.Code != 201 || r.AmountFen != 1990*21/31 {
				t.Fatalf("refund = %d %s, want 201 of %d", res.Code, res.Body, 1990*21/31)
			}
			after := paidPeriods(h.entitlementOf(v))
			wasStart, _ := time.Parse(time.RFC3339, before[1].StartsAt)
			nowStart, _ := time.Parse(time.RFC3339, after[1].StartsAt)
			wasEnd, _ := time.Parse(time.RFC3339, before[0].EndsAt)
			if got, want := wasStart.Sub(nowStart), wasEnd.Sub(cutAt); got != want || *after[1].OrderID != y.ID {
				t.Errorf("yearly moved earlier by %v, want %v (the cut)", got, want)
			}
			if after[0].Status != "refunded" || after[0].EndsAt != stampOf(cutAt) || after[1].Status != "active" {
				t.Errorf("periods after the refund = %+v", after)
			}
			e := h.entitlementOf(v)
			if !e.Covered || e.State != "paid" || *e.CoveredUntil != after[1].EndsAt {
				t.Errorf("entitlement = %+v, want covered by the yearly", e)
			}
			checkCoverageEnd(t, h, v, after[1].EndsAt)
		})
		t.Run("unpaid order", func(t *testing.T) {
			v := vin("LSVAX4E10P2300006")
			h.activate(v, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
			o := h.createOrder(v, "alice", "monthly")
			if res := h.refund(o.ID, map[string]any{"reason": "other"}); res.Code != 409 || res.problem(t).Code != "order_not_paid" {
				t.Errorf("refund of unpaid = %d %s, want 409 order_not_paid", res.Code, res.Body)
			}
		})
		t.Run("bad requests", func(t *testing.T) {
			_, o := h.boughtAfterLapse("LSVAX4E10P2300007", "monthly")
			tests := []struct {
				name string
				body any
				code string
			}{
				{"no reason", map[string]any{}, "validation_failed"},
				{"unknown reason", map[string]any{"reason": "bored"}, "validation_failed"},
				{"note too long", map[string]any{"reason": "other", "note": strings.Repeat("字", 501)}, "validation_failed"},
				{"zero amount", map[string]any{"reason": "other", "amount_fen": 0}, "validation_failed"},
				{"fractional amount", `{"reason":"other","amount_fen":1.5}`, "malformed_body"},
				{"unknown field", map[string]any{"reason": "other", "amount": 5}, "malformed_body"},
			}
			for _, tc := range tests {
				res := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: h.token(api.RoleBilling, "bob"),
					Body: tc.body, Headers: map[string]string{"Idempotency-Key": "bad-" + tc.name}})
				if res.Code != 400 || res.problem(t).Code != tc.code {
					t.Errorf("%s: = %d %s, want 400 %s", tc.name, res.Code, res.Body, tc.code)
				}
			}
			if res := h.refund("ord_missing", map[string]any{"reason": "other"}); res.Code != 404 || res.problem(t).Code != "order_not_found" {
				t.Errorf("unknown order = %d %s, want 404 order_not_found", res.Code, res.Body)
			}
			noKey := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: h.token(api.RoleBilling, "bob"),
				Body: map[string]any{"reason": "other"}})
			if noKey.Code != 400 || noKey.problem(t).Code != "idempotency_key_required" {
				t.Errorf("no key = %d %s, want 400 idempotency_key_required", noKey.Code, noKey.Body)
			}
		})
		t.Run("idempotent", func(t *testing.T) {
			_, o := h.boughtAfterLapse("LSVAX4E10P2300008", "yearly")
			send := func(body any) response {
				return h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: h.token(api.RoleBilling, "bob"),
					Body: body, Headers: map[string]string{"Idempotency-Key": "refund-once"}})
			}
			first := send(map[string]any{"reason": "service_issue", "amount_fen": 100})
			again := send(map[string]any{"amount_fen": 100, "reason": "service_issue"})
			other := send(map[string]any{"reason": "service_issue", "amount_fen": 200})
			if first.Code != 201 || again.Code != 201 || again.Header.Get("Idempotent-Replayed") != "true" || string(first.Body) != string(again.Body) {
				t.Errorf("first = %d %s, again = %d %s, want the same 201 replayed", first.Code, first.Body, again.Code, again.Body)
			}
			if other.Code != 422 || other.problem(t).Code != "idempotency_key_reused" {
				t.Errorf("other body = %d %s, want 422 idempotency_key_reused", other.Code, other.Body)
			}
			if got := h.orderOf(o.ID); got.RefundedFen != 100 {
				t.Errorf("refunded_fen = %d, want 100", got.RefundedFen)
			}
		})
	})
}

func stampOf(t time.Time) string { return t.In(shanghai).Format(time.RFC3339) }

func checkCoverageEnd(t *testing.T, h *harness, v, want string) {
	t.Helper()
	var end time.Time
	if err := storetest.Query(h.db, &end, "SELECT coverage_ends_at FROM vehicles WHERE vin = ?", v); err != nil {
		t.Fatal(err)
	}
	if got := stampOf(end); got != want {
		t.Errorf("vehicles.coverage_ends_at = %s, want %s", got, want)
	}
}

func TestRefundAccess(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v, o := h.boughtAfterLapse("LSVAX4E10P2300010", "monthly")
		for _, role := range []api.Role{api.RoleOwner, api.RoleVehicle, api.RoleOps, api.RoleCarrier} {
			sub := "alice"
			if role == api.RoleVehicle {
				sub = v
			}
			tok := h.token(role, sub)
			post := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: tok,
				Body: map[string]any{"reason": "other"}, Headers: map[string]string{"Idempotency-Key": "a-" + string(role)}})
			if post.Code != 403 || post.problem(t).Code != "forbidden" {
				t.Errorf("%s POST refund = %d %s, want 403", role, post.Code, post.Body)
			}
			for _, path := range []string{"/v1/refunds", "/v1/refunds?format=csv"} {
				if res := h.get(path, tok); res.Code != 403 {
					t.Errorf("%s GET %s = %d %s, want 403", role, path, res.Code, res.Body)
				}
			}
		}
		if res := h.get("/v1/refunds", ""); res.Code != 401 {
			t.Errorf("GET refunds without token = %d, want 401", res.Code)
		}
		if got := h.orderOf(o.ID); got.RefundedFen != 0 {
			t.Errorf("refunded_fen = %d after refused refunds, want 0", got.RefundedFen)
		}
	})
}

func TestConcurrentRefundsNeverExceedThePayment(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		t.Run("goodwill of 500 fen twenty times on 1990", func(t *testing.T) {
			_, o := h.boughtAfterLapse("LSVAX4E10P2300011", "monthly")
			res := sendAll(20, func(int) response {
				return h.refund(o.ID, map[string]any{"reason": "service_issue", "amount_fen": 500})
			})
			ok, exceeded := 0, 0
			for _, r := range res {
				switch {
				case r.Code == 201:
					ok++
				case r.Code == 422 && r.problem(t).Code == "refund_exceeds_balance":
					exceeded++
				default:
					t.Errorf("refund = %d %s", r.Code, r.Body)
				}
			}
			if ok != 3 || exceeded != 17 {
				t.Errorf("succeeded %d, exceeded %d, want 3 and 17", ok, exceeded)
			}
			checkRefundedFen(t, h, o.ID, 1500)
		})
		t.Run("unused value twenty times", func(t *testing.T) {
			_, o := h.boughtAfterLapse("LSVAX4E10P2300012", "yearly")
			res := sendAll(20, func(int) response { return h.refund(o.ID, map[string]any{"reason": "duplicate"}) })
			ok := 0
			for _, r := range res {
				switch {
				case r.Code == 201:
					ok++
				case r.Code == 422 && r.problem(t).Code == "nothing_refundable":
				default:
					t.Errorf("refund = %d %s", r.Code, r.Body)
				}
			}
			if ok != 1 {
				t.Errorf("succeeded %d, want 1", ok)
			}
			checkRefundedFen(t, h, o.ID, 19900)
		})
	})
}

// checkRefundedFen checks the order's refunded_fen against want and
// against the sum of its refund rows.
func checkRefundedFen(t *testing.T, h *harness, orderID string, want int64) {
	t.Helper()
	sum, err := h.db.RefundedFen(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.orderOf(orderID).RefundedFen; got != want || sum != want {
		t.Errorf("refunded_fen = %d, sum of refunds = %d, want %d", got, sum, want)
	}
}

func TestRefundExportMatchesJSON(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		notes := []string{"=HYPERLINK(\"http://evil\",\"x\")", "said \"refund\", twice\nthen left", "+1", "plain", "@SUM(A1)", "-2", "退款"}
		var want int64
		var orders []string
		for i, note := range notes {
			_, o := h.boughtAfterLapse(fmt.Sprintf("LSVAX4E10P23001%02d", i), "yearly")
			orders = append(orders, o.ID)
			amount := int64(1 + i*1001)
			res := h.refund(o.ID, map[string]any{"reason": "service_issue", "note": note, "amount_fen": amount})
			if res.Code != 201 {
				t.Fatalf("refund = %d %s", res.Code, res.Body)
			}
			want += amount
			h.clock.Advance(time.Minute)
		}
		bill := h.token(api.RoleBilling, "bob")
		var jsonTotal int64
		count := 0
		cursor := ""
		for range 10 {
			path := "/v1/refunds?limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			res := h.get(path, bill)
			var page struct {
				Refunds    []refundBody `json:"refunds"`
				NextCursor *string      `json:"next_cursor"`
			}
			res.decode(t, &page)
			for _, r := range page.Refunds {
				jsonTotal += r.AmountFen
				count++
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		res := h.get("/v1/refunds?format=csv", bill)
		if res.Code != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("csv = %d %s", res.Code, res.Header.Get("Content-Type"))
		}
		rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
		if err != nil {
			t.Fatalf("parse csv: %v\n%s", err, res.Body)
		}
		if got := strings.Join(rows[0], ","); got != "id,order_id,vin,amount_fen,amount_yuan,currency,reason,note,created_by,created_at" {
			t.Errorf("header = %s", got)
		}
		var csvFen, csvYuanFen int64
		for _, row := range rows[1:] {
			n, _ := strconv.ParseInt(row[3], 10, 64)
			csvFen += n
			yuan, frac, _ := strings.Cut(row[4], ".")
			y, _ := strconv.ParseInt(yuan, 10, 64)
			f, _ := strconv.ParseInt(frac, 10, 64)
			if len(frac) != 2 {
				t.Errorf("amount_yuan %q has not two decimals", row[4])
			}
			csvYuanFen += y*100 + f
			if c := row[7]; c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
				t.Errorf("note %q would run as a formula", c)
			}
		}
		if len(rows)-1 != len(notes) || count != len(notes) {
			t.Errorf("csv rows = %d, json refunds = %d, want %d", len(rows)-1, count, len(notes))
		}
		if csvFen != want || jsonTotal != want || csvYuanFen != want {
			t.Errorf("totals: csv %d fen (%d from yuan), json %d, want %d", csvFen, csvYuanFen, jsonTotal, want)
		}
		if rows[2][7] != "said \"refund\", twice\nthen left" || rows[1][7] != "'=HYPERLINK(\"http://evil\",\"x\")" || rows[7][7] != "退款" {
			t.Errorf("notes = %q, %q, %q", rows[1][7], rows[2][7], rows[7][7])
		}
		for _, o := range orders {
			sum, _ := h.db.RefundedFen(context.Background(), o)
			if got := h.orderOf(o).RefundedFen; got != sum {
				t.Errorf("order %s refunded_fen = %d, sum of refunds %d", o, got, sum)
			}
		}
		// Filters.
		from := stampOf(h.clock.Now().Add(-3 * time.Minute))
		res = h.get("/v1/refunds?from="+strings.ReplaceAll(from, "+", "%2B")+"&format=csv", bill)
		if rows, _ := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll(); len(rows) != 4 {
			t.Errorf("from the last 3 minutes: %d lines, want header + 3", len(rows))
		}
		for _, bad := range []string{"from=yesterday", "reason=bored", "vin=XYZ", "format=xml", "limit=1000"} {
			if res := h.get("/v1/refunds?"+bad, bill); res.Code != 400 {
				t.Errorf("?%s = %d, want 400", bad, res.Code)
			}
		}
		if res := h.get("/v1/refunds?reason=duplicate", bill); !strings.Contains(string(res.Body), `"refunds":[]`) {
			t.Errorf("reason filter: %s", res.Body)
		}
	})
}

func TestTransferCancelsPreviousOwnersUnpaidOrders(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v, paid := h.boughtAfterLapse("LSVAX4E10P2300020", "monthly")
		pending := h.createOrder(v, "alice", "yearly")
		res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: h.token(api.RoleOps, "ops"),
			Body: map[string]string{"owner_id": "bruno"}})
		if res.Code != 200 {
			t.Fatalf("transfer = %d %s", res.Code, res.Body)
		}
		if got := h.orderOf(pending.ID); got.Status != "cancelled" {
			t.Errorf("previous owner's unpaid order = %s, want cancelled", got.Status)
		}
		if got := h.orderOf(paid.ID); got.Status != "paid" {
			t.Errorf("paid order = %s, want paid", got.Status)
		}
		if ps := paidPeriods(h.entitlementOf(v)); len(ps) != 1 || ps[0].Status != "active" {
			t.Errorf("periods after transfer = %+v, want the paid one kept", ps)
		}
		// The previous owner can no longer order for the car; the new one can.
		res = h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/orders", Token: h.token(api.RoleOwner, "alice"),
			Body: map[string]string{"product": "monthly"}, Headers: map[string]string{"Idempotency-Key": "after-sale"}})
		if res.Code != 404 {
			t.Errorf("previous owner orders = %d, want 404", res.Code)
		}
		h.createOrder(v, "bruno", "monthly")
	})
}
