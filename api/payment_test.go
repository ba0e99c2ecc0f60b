package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store/storetest"
)

func TestCreateOrderIdempotencyAndAccess(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2200001")
		h.activate(v, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
		alice := h.token(api.RoleOwner, "alice")
		post := func(tok, path, key string, body any) response {
			hdr := map[string]string{}
			if key != "" {
				hdr["Idempotency-Key"] = key
			}
			return h.do(request{Method: http.MethodPost, Path: path, Token: tok, Body: body, Headers: hdr})
		}
		path := "/v1/vehicles/" + v + "/orders"
		first := post(alice, path, "key-1", map[string]string{"product": "monthly"})
		if first.Code != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first = %d %v %s, want 201 not replayed", first.Code, first.Header, first.Body)
		}
		again := post(alice, path, "key-1", `{ "product" : "monthly" }`)
		if again.Code != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) {
			t.Errorf("replay = %d %q %s, want 201 replayed with the first body %s", again.Code, again.Header.Get("Idempotent-Replayed"), again.Body, first.Body)
		}
		tests := []struct {
			name   string
			token  string
			path   string
			key    string
			body   any
			status int
			code   string
		}{
			{"same key, other body", alice, path, "key-1", map[string]string{"product": "yearly"}, 422, "idempotency_key_reused"},
			{"missing key", alice, path, "", map[string]string{"product": "monthly"}, 400, "idempotency_key_required"},
			{"key too long", alice, path, strings.Repeat("k", 256), map[string]string{"product": "monthly"}, 400, "validation_failed"},
			{"unknown product", alice, path, "key-2", map[string]string{"product": "weekly"}, 400, "unknown_product"},
			{"no product", alice, path, "key-3", map[string]string{}, 400, "validation_failed"},
			{"unknown field", alice, path, "key-4", map[string]string{"product": "monthly", "price_fen": "1"}, 400, "malformed_body"},
			{"not activated (looks like another's car)", alice, "/v1/vehicles/" + vin("LSVAX4E10P2200999") + "/orders", "key-5", map[string]string{"product": "monthly"}, 404, "vehicle_not_found"},
			{"someone else's car", h.token(api.RoleOwner, "mallory"), path, "key-6", map[string]string{"product": "monthly"}, 404, "vehicle_not_found"},
			{"bad vin", alice, "/v1/vehicles/NOTAVIN/orders", "key-7", map[string]string{"product": "monthly"}, 400, "invalid_vin"},
			{"vehicle role", h.token(api.RoleVehicle, v), path, "key-8", map[string]string{"product": "monthly"}, 403, "forbidden"},
			{"billing role", h.token(api.RoleBilling, "bill"), path, "key-9", map[string]string{"product": "monthly"}, 403, "forbidden"},
			{"ops role", h.token(api.RoleOps, "ops"), path, "key-10", map[string]string{"product": "monthly"}, 403, "forbidden"},
			{"carrier role", h.token(api.RoleCarrier, "cmcc"), path, "key-11", map[string]string{"product": "monthly"}, 403, "forbidden"},
			{"no token", "", path, "key-12", map[string]string{"product": "monthly"}, 401, "unauthorized"},
		}
		for _, tc := range tests {
			res := post(tc.token, tc.path, tc.key, tc.body)
			if res.Code != tc.status || res.problem(t).Code != tc.code {
				t.Errorf("%s: POST orders = %d %s, want %d %s", tc.name, res.Code, res.Body, tc.status, tc.code)
			}
		}
		// A failed request does not burn its key.
		if res := post(alice, path, "key-2", map[string]string{"product": "yearly"}); res.Code != http.StatusCreated {
			t.Errorf("key of a failed request reused = %d %s, want 201", res.Code, res.Body)
		}
		var o orderBody
		first.decode(t, &o)
		reads := []struct {
			name   string
			token  string
			path   string
			status int
		}{
			{"owner reads own order", alice, "/v1/orders/" + o.ID, 200},
			{"other owner", h.token(api.RoleOwner, "mallory"), "/v1/orders/" + o.ID, 404},
			{"billing", h.token(api.RoleBilling, "b"), "/v1/orders/" + o.ID, 200},
			{"ops", h.token(api.RoleOps, "o"), "/v1/orders/" + o.ID, 200},
			{"vehicle", h.token(api.RoleVehicle, v), "/v1/orders/" + o.ID, 403},
			{"carrier", h.token(api.RoleCarrier, "c"), "/v1/orders/" + o.ID, 403},
			{"unknown order", alice, "/v1/orders/ord_nope", 404},
			{"owner lists own car", alice, "/v1/vehicles/" + v + "/orders", 200},
			{"other owner lists", h.token(api.RoleOwner, "mallory"), "/v1/vehicles/" + v + "/orders", 404},
			{"billing lists", h.token(api.RoleBilling, "b"), "/v1/vehicles/" + v + "/orders", 200},
			{"ops lists", h.token(api.RoleOps, "o"), "/v1/vehicles/" + v + "/orders", 200},
			{"vehicle lists", h.token(api.RoleVehicle, v), "/v1/vehicles/" + v + "/orders", 403},
			{"carrier lists", h.token(api.RoleCarrier, "c"), "/v1/vehicles/" + v + "/orders", 403},
			{"bad cursor", alice, "/v1/vehicles/" + v + "/orders?cursor=not-a-cursor!", 400},
			{"bad limit", alice, "/v1/vehicles/" + v + "/orders?limit=0", 400},
		}
		for _, tc := range reads {
			if res := h.get(tc.path, tc.token); res.Code != tc.status {
				t.Errorf("%s: GET %s = %d %s, want %d", tc.name, tc.path, res.Code, res.Body, tc.status)
			}
		}
	})
}

func TestListOrdersNewestFirstWithCursor(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2200002")
		h.activate(v, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
		var want []string
		for range 5 {
			want = append([]string{h.createOrder(v, "alice", "monthly").ID}, want...)
			h.clock.Advance(time.Second)
		}
		var got []string
		cursor := ""
		for page := 0; page < 5; page++ {
			path := "/v1/vehicles/" + v + "/orders?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			res := h.get(path, h.token(api.RoleOwner, "alice"))
			var body struct {
				Orders     []orderBody `json:"orders"`
				NextCursor *string     `json:"next_cursor"`
			}
			res.decode(t, &body)
			for _, o := range body.Orders {
				got = append(got, o.ID)
			}
			if body.NextCursor == nil {
				break
			}
			cursor = *body.NextCursor
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("orders = %v, want %v", got, want)
		}
	})
}

func TestPaymentOutcomes(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2200003")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "monthly")

		failed := succeeded(o, "evt-failed", h.clock.Now())
		failed.Status, failed.TransactionID = "failed", ""
		res := h.notify(failed)
		var got orderBody
		res.decode(t, &got)
		if res.Code != http.StatusOK || got.Status != "pending" {
			t.Fatalf("failed payment = %d %s, want 200 and the order still pending", res.Code, res.Body)
		}
		if n := len(paidPeriods(h.entitlementOf(v))); n != 0 {
			t.Fatalf("after a failed payment: %d paid periods, want 0", n)
		}

		wrongCurrency := succeeded(o, "evt-usd", h.clock.Now())
		wrongCurrency.Currency = "USD"
		if res := h.notify(wrongCurrency); res.Code != 422 || res.problem(t).Code != "amount_mismatch" {
			t.Errorf("wrong currency = %d %s, want 422 amount_mismatch", res.Code, res.Body)
		}
		if res := h.notify(wrongCurrency); res.Code != 422 {
			t.Errorf("wrong currency repeated = %d %s, want the same 422", res.Code, res.Body)
		}

		// Stale: the order shows cancelled past expires_at before the job runs,
		// is cancelled by the job, and a payment still makes it paid.
		h.clock.Advance(31 * time.Minute)
		if got := h.orderOf(o.ID); got.Status != "cancelled" {
			t.Errorf("status past expires_at = %s, want cancelled", got.Status)
		}
		n, err := h.db.CancelStaleOrders(context.Background(), h.clock.Now(), 30*time.Minute)
		if err != nil || n != 1 {
			t.Fatalf("CancelStaleOrders() = %d, %v, want 1, nil", n, err)
		}
		if n, _ := h.db.CancelStaleOrders(context.Background(), h.clock.Now(), 30*time.Minute); n != 0 {
			t.Errorf("CancelStaleOrders() again = %d, want 0", n)
		}
		paid := h.pay(o)
		if paid.PaidAt == nil {
			t.Errorf("paid_at is null")
		}
		dup := succeeded(o, "evt-second-payment", h.clock.Now())
		if res := h.notify(dup); res.Code != http.StatusOK {
			t.Errorf("second payment of a paid order = %d %s, want 200", res.Code, res.Body)
		}
		if n := len(paidPeriods(h.entitlementOf(v))); n != 1 {
			t.Errorf("paid periods = %d, want 1", n)
		}
		unknown := succeeded(o, "evt-unknown", h.clock.Now())
		unknown.OrderID = "ord_missing"
		if res := h.notify(unknown); res.Code != 404 || res.problem(t).Code != "order_not_found" {
			t.Errorf("unknown order = %d %s, want 404 order_not_found", res.Code, res.Body)
		}
		events, err := h.db.PaymentEvents(context.Background(), o.ID)
		if err != nil {
			t.Fatal(err)
		}
		var outcomes []string
		for _, e := range events {
			outcomes = append(outcomes, string(e.Outcome))
		}
		if got, want := strings.Join(outcomes, ","), "failed,amount_mismatch,applied,already_paid"; got != want {
			t.Errorf("recorded outcomes = %s, want %s", got, want)
		}
	})
}

func TestPaymentSignature(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2200004")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "monthly")
		body, _ := json.Marshal(succeeded(o, "evt-sig", h.clock.Now()))
		now := h.clock.Now()
		changed := append([]byte(nil), body...)
		changed[len(changed)-3] ^= 1
		tests := []struct {
			name   string
			header string
			body   []byte
		}{
			{"wrong secret", billing.SignPayment([]byte("not-the-secret"), body, now), body},
			{"body changed by one byte", billing.SignPayment(paymentSecret, body, now), changed},
			{"t six minutes old", billing.SignPayment(paymentSecret, body, now.Add(-6*time.Minute)), body},
			{"t six minutes in the future", billing.SignPayment(paymentSecret, body, now.Add(6*time.Minute)), body},
			{"missing header", "", body},
			{"malformed header", "garbage", body},
			{"no v1", fmt.Sprintf("t=%d", now.Unix()), body},
			{"v1 not hex", fmt.Sprintf("t=%d,v1=zz", now.Unix()), body},
			{"t not a number", "t=soon," + strings.Split(billing.SignPayment(paymentSecret, body, now), ",")[1], body},
		}
		for _, tc := range tests {
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Payment-Signature"] = tc.header
			}
			res := h.do(request{Method: http.MethodPost, Path: "/v1/payments/notifications", Body: tc.body, Headers: hdr})
			if res.Code != http.StatusUnauthorized || res.problem(t).Code != "bad_signature" {
				t.Errorf("%s: = %d %s, want 401 bad_signature", tc.name, res.Code, res.Body)
			}
		}
		if got := h.orderOf(o.ID); got.Status != "pending" {
			t.Fatalf("after bad signatures the order is %s, want pending", got.Status)
		}
		if events, _ := h.db.PaymentEvents(context.Background(), o.ID); len(events) != 0 {
			t.Fatalf("bad signatures recorded %d events, want 0", len(events))
		}
		// Rotation: the provider signs with the old and the new secret; either matching is enough.
		old := billing.SignPayment([]byte("old-secret"), body, now)
		cur := billing.SignPayment(paymentSecret, body, now)
		rotated := old + "," + strings.Split(cur, ",")[1]
		res := h.do(request{Method: http.MethodPost, Path: "/v1/payments/notifications", Body: body,
			Headers: map[string]string{"Payment-Signature": rotated}})
		if res.Code != http.StatusOK {
			t.Errorf("two v1 values, one valid = %d %s, want 200", res.Code, res.Body)
		}
		// Within the tolerance either way is fine.
		for _, skew := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
			res := h.do(request{Method: http.MethodPost, Path: "/v1/payments/notifications", Body: body,
				Headers: map[string]string{"Payment-Signature": billing.SignPayment(paymentSecret, body, now.Add(skew))}})
			if res.Code != http.StatusOK {
				t.Errorf("t %v from now = %d %s, want 200", skew, res.Code, res.Body)
			}
		}
	})
}

// sendAll sends fn(i) for i in [0, n) from n goroutines released at once
// and returns the responses.
func sendAll(n int, fn func(i int) response) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestConcurrentDuplicateNotificationsGiveOnePeriod(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2200005")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "yearly")
		p := succeeded(o, "evt-dup", h.clock.Now())
		res := sendAll(50, func(int) response { return h.notify(p) })
		checkAllOK(t, res)
		if n := len(paidPeriods(h.entitlementOf(v))); n != 1 {
			t.Errorf("paid periods = %d, want 1", n)
		}
		checkNotices(t, h, v, 1)
	})
}

// checkAllOK fails unless every response is 200 (in particular, no
// "database is locked" 500 reached a client).
func checkAllOK(t *testing.T, res []response) {
	t.Helper()
	for i, r := range res {
		if r.Code != http.StatusOK {
			t.Errorf("request %d = %d %s, want 200", i, r.Code, r.Body)
		}
	}
}

func checkNotices(t *testing.T, h *harness, v string, want int) {
	t.Helper()
	ns, err := h.db.Notices(context.Background(), billing.VIN(v), 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ns {
		if x.Kind == billing.NoticeOrderPaid {
			n++
		}
	}
	if n != want {
		t.Errorf("order.paid notices = %d, want %d", n, want)
	}
}

func TestConcurrentPaymentsOfManyOrdersLayEndToEnd(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2200006")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		orders := make([]orderBody, 20)
		for i := range orders {
			orders[i] = h.createOrder(v, "alice", "monthly")
		}
		res := sendAll(len(orders), func(i int) response { return h.notify(succeeded(orders[i], "evt-"+orders[i].ID, h.clock.Now())) })
		checkAllOK(t, res)
		ps := paidPeriods(h.entitlementOf(v))
		if len(ps) != len(orders) {
			t.Fatalf("paid periods = %d, want %d", len(ps), len(orders))
		}
		if ps[0].StartsAt != "2026-06-15T12:00:00+08:00" {
			t.Errorf("first period starts %s, want 2026-06-15T12:00:00+08:00", ps[0].StartsAt)
		}
		seen := map[string]bool{}
		for i, p := range ps {
			seen[*p.OrderID] = true
			if i > 0 && p.StartsAt != ps[i-1].EndsAt {
				t.Errorf("period %d starts %s, want the end of period %d: %s", i, p.StartsAt, i-1, ps[i-1].EndsAt)
			}
		}
		if len(seen) != len(orders) {
			t.Errorf("periods belong to %d orders, want %d", len(seen), len(orders))
		}
		e := h.entitlementOf(v)
		if e.CoveredUntil == nil || *e.CoveredUntil != ps[len(ps)-1].EndsAt {
			t.Errorf("covered_until = %v, want %s", e.CoveredUntil, ps[len(ps)-1].EndsAt)
		}
		checkNotices(t, h, v, len(orders))
	})
}

func TestDuplicateNotificationsAcrossTwoServers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		clk := &clock{t: time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)}
		replica := func(db interface{ api.Store }) *harness {
			h := &harness{t: t, dialect: dialect, clock: clk}
			h.opts = api.Options{Store: db, Catalog: testCatalog(), Location: shanghai, TokenSecret: tokenSecret, Now: clk.Now}
			withPayments(&h.opts)
			srv, err := api.New(h.opts)
			if err != nil {
				t.Fatal(err)
			}
			h.handler = srv.Handler()
			return h
		}
		ha, hb := replica(a), replica(b)
		ha.db, hb.db = a, b
		v := vin("LSVAX4E10P2200007")
		ha.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := ha.createOrder(v, "alice", "monthly")
		p := succeeded(o, "evt-two-replicas", clk.Now())
		res := sendAll(50, func(i int) response {
			if i%2 == 0 {
				return ha.notify(p)
			}
			return hb.notify(p)
		})
		checkAllOK(t, res)
		if n := len(paidPeriods(hb.entitlementOf(v))); n != 1 {
			t.Errorf("paid periods = %d, want 1", n)
		}
		checkNotices(t, ha, v, 1)
	})
}
