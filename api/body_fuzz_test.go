package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store"
)

// Endpoints driven by FuzzRequestBodies: the fuzzed bytes are the request
// body, or for the two list endpoints the ?cursor= value.
const (
	fuzzActivation = iota
	fuzzOwner
	fuzzOrder
	fuzzPayment
	fuzzRefund
	fuzzUsage
	fuzzRefundCursor
	fuzzOrderCursor
	fuzzEndpoints
)

// FuzzRequestBodies sends arbitrary bodies (and cursors) through the real
// router to every endpoint that reads one, over a real SQLite database
// that holds an activated car with paid and pending orders. Whatever the
// bytes, the answer is never a 5xx, a 4xx is problem+json whose status is
// the response's, and every answer matches api/openapi.yaml. Payment
// bodies are signed, so the decoder behind the signature check is reached.
func FuzzRequestBodies(f *testing.F) {
	h := newHarness(f, store.SQLite)
	owned := vin("LSVAX4E10P2100007")
	h.activate(owned, "owner-1", h.clock.Now().AddDate(0, -2, 0))
	var paid, pending []string
	for range 3 {
		paid = append(paid, h.pay(h.createOrder(owned, "owner-1", "monthly")).ID)
		pending = append(pending, h.createOrder(owned, "owner-1", "yearly").ID)
	}
	tokens := map[int]string{
		fuzzActivation:   h.token(api.RoleOps, "delivery"),
		fuzzOwner:        h.token(api.RoleOps, "delivery"),
		fuzzOrder:        h.token(api.RoleOwner, "owner-1"),
		fuzzRefund:       h.token(api.RoleBilling, "billing-1"),
		fuzzUsage:        h.token(api.RoleCarrier, "carrier-1"),
		fuzzRefundCursor: h.token(api.RoleBilling, "billing-1"),
		fuzzOrderCursor:  h.token(api.RoleOwner, "owner-1"),
	}
	now := h.clock.Now()

	seeds := map[int][]string{
		fuzzActivation: {`{"activated_at":"2026-06-01T10:00:00+08:00","owner_id":"o-2","model":"SU7"}`,
			`{"activated_at":"2026-06-01T10:00:00Z","owner_id":"o-2"}`, `{"activated_at":"9999-12-31T23:59:59Z","owner_id":"x","model":"m"}`,
			`{"activated_at":"0001-01-01T00:00:00Z","owner_id":"x"}`, `{"owner_id":1}`, `[]`, `null`, ``},
		fuzzOwner: {`{"owner_id":"owner-2"}`, `{"owner_id":""}`, `{"owner_id":null}`, `{"owner_id":"a","x":1}`, `{"owner_id":"` + string(bytes.Repeat([]byte("é"), 300)) + `"}`},
		fuzzOrder: {`{"product":"monthly"}`, `{"product":"yearly"}`, `{"product":"nope"}`, `{"product":7}`, `{}`, `{"product":"monthly"} {}`},
		fuzzPayment: {fmt.Sprintf(`{"event_id":"evt-f1","order_id":%q,"status":"succeeded","amount_fen":19900,"currency":"CNY","transaction_id":"tx-f1","paid_at":"2026-06-15T11:59:00+08:00"}`, pending[0]),
			fmt.Sprintf(`{"event_id":"evt-f2","order_id":%q,"status":"failed","amount_fen":19900,"currency":"CNY"}`, pending[1]),
			fmt.Sprintf(`{"event_id":"evt-f3","order_id":%q,"status":"succeeded","amount_fen":1,"currency":"USD","transaction_id":"t"}`, pending[2]),
			`{"event_id":"evt-f4","order_id":"ord_missing","status":"succeeded","amount_fen":1,"currency":"CNY","transaction_id":"t","extra":{}}`,
			`{"amount_fen":1e3}`, `{"paid_at":"not a time"}`, `{"amount_fen":-1}`},
		fuzzRefund: {`{"reason":"requested_by_customer"}`, `{"reason":"service_issue","amount_fen":100,"end_access":false,"note":"goodwill"}`,
			`{"reason":"duplicate","amount_fen":1,"end_access":true}`, `{"reason":"x"}`, `{"reason":"duplicate","amount_fen":9223372036854775807}`, `{"amount_fen":0}`},
		fuzzUsage: {`{"records":[{"id":"u1","vin":"` + owned + `","category":"entertainment","bytes":5,"started_at":"2026-06-15T08:00:00+08:00","ended_at":"2026-06-15T09:00:00+08:00"}]}`,
			`{"records":[{"id":"u2","vin":"` + owned + `","category":"navigation","bytes":-1,"started_at":"2026-06-15T09:00:00+08:00","ended_at":"2026-06-15T08:00:00+08:00"}]}`,
			`{"records":[null,1,{"x":1}]}`, `{"records":[]}`, `{}`},
		fuzzRefundCursor: {"MTc4MTQ5MTIwMDAwMDAwMC5yZl8x", "%%%", "LTkyMjMzNzIwMzY4NTQ3NzU4MDguYQ", "OTIyMzM3MjAzNjg1NDc3NTgwNy5h", "MC4"},
		fuzzOrderCursor:  {"MTc4MTQ5MTIwMDAwMDAwMC5vcmRfMQ", "LTEueA", "OTk5OTk5OTk5OTk5OTk5OS54"},
	}
	for kind, bodies := range seeds {
		for _, b := range bodies {
			f.Add(uint8(kind), []byte(b))
		}
	}

	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		sum := sha256.Sum256(append([]byte{kind}, body...))
		n := binary.BigEndian.Uint64(sum[:8])
		key := hex.EncodeToString(sum[:12])
		var method, path string
		payload := body
		headers := map[string]string{}
		switch int(kind) % fuzzEndpoints {
		case fuzzActivation:
			method, path = http.MethodPost, "/v1/vehicles/"+vin(fmt.Sprintf("LSVAX4E10P%07d", n%10000000))+"/activation"
		case fuzzOwner:
			method, path = http.MethodPut, "/v1/vehicles/"+owned+"/owner"
		case fuzzOrder:
			method, path = http.MethodPost, "/v1/vehicles/"+owned+"/orders"
			headers["Idempotency-Key"] = key
		case fuzzPayment:
			method, path = http.MethodPost, "/v1/payments/notifications"
			headers["Payment-Signature"] = billing.SignPayment(paymentSecret, body, now)
		case fuzzRefund:
			method, path = http.MethodPost, "/v1/orders/"+paid[n%uint64(len(paid))]+"/refunds"
			headers["Idempotency-Key"] = key
		case fuzzUsage:
			method, path = http.MethodPost, "/v1/usage"
		case fuzzRefundCursor:
			method, path, payload = http.MethodGet, "/v1/refunds?cursor="+url.QueryEscape(string(body)), nil
		case fuzzOrderCursor:
			method, path, payload = http.MethodGet, "/v1/vehicles/"+owned+"/orders?limit=1&cursor="+url.QueryEscape(string(body)), nil
		}
		var r *http.Request
		if payload != nil {
			r = httptest.NewRequest(method, path, bytes.NewReader(payload))
			r.Header.Set("Content-Type", "application/json")
		} else {
			r = httptest.NewRequest(method, path, nil)
		}
		if tok := tokens[int(kind)%fuzzEndpoints]; tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		res := response{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
		if res.Code >= 500 {
			t.Fatalf("%s %s with body %q = %d: %s", method, path, payload, res.Code, res.Body)
		}
		if res.Code >= 400 {
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("%s %s with body %q = %d with Content-Type %q, want application/problem+json", method, path, payload, res.Code, ct)
			}
			var p api.Problem
			if err := json.Unmarshal(res.Body, &p); err != nil || p.Status != res.Code || p.Code == "" {
				t.Fatalf("%s %s with body %q = %d, problem %s (%v): want its status and a code", method, path, payload, res.Code, res.Body, err)
			}
		}
		checkOpenAPI(t, r, res)
	})
}
