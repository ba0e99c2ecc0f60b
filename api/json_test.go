package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// TestNumberMessagesNameTheUnit: a fraction where an integer is expected
// is refused with a message that says which integer (of fen, of bytes),
// and a null usage record is rejected as null, not as a bad VIN.
func TestNumberMessagesNameTheUnit(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		car := vin("LSVAX4E10P2800001")
		h.activate(car, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.pay(h.createOrder(car, "alice", "monthly"))
		pending := h.createOrder(car, "alice", "yearly")

		res := h.refund(o.ID, map[string]any{"reason": "other", "amount_fen": 10.5})
		checkDetail(t, "refund of 10.5 fen", res, "field amount_fen must be an integer number of fen, got number 10.5")

		body := `{"event_id":"evt-frac","order_id":"` + pending.ID + `","status":"succeeded","amount_fen":19900.5,"currency":"CNY","transaction_id":"tx"}`
		res = h.do(request{Method: "POST", Path: "/v1/payments/notifications", Body: body,
			Headers: map[string]string{"Payment-Signature": billing.SignPayment(paymentSecret, []byte(body), h.clock.Now())}})
		checkDetail(t, "payment of 19900.5 fen", res, "field amount_fen must be an integer number of fen, got number 19900.5")

		res = h.do(request{Method: "PUT", Path: "/v1/vehicles/" + car + "/owner", Token: h.token(api.RoleOps, "ops"), Body: `{"owner_id":1.5}`})
		checkDetail(t, "owner_id as a number", res, "field owner_id must be a string, got number")

		start := h.clock.Now().Add(-time.Hour)
		good := rec("u-ok", car, "entertainment", 5, start)
		frac := rec("u-frac", car, "entertainment", 5, start)
		frac["bytes"] = 10.5
		res = h.do(request{Method: "POST", Path: "/v1/usage", Token: h.token(api.RoleCarrier, "cmcc"),
			Body: map[string]any{"records": []any{good, nil, frac, map[string]any{}}}})
		var out usageResult
		if res.Code != http.StatusOK {
			t.Fatalf("usage batch = %d %s, want 200", res.Code, res.Body)
		}
		res.decode(t, &out)
		want := []struct {
			index        int
			code, detail string
		}{
			{1, "null_record", "record is null; a JSON object is expected"},
			{2, "malformed_record", "field bytes must be an integer number of bytes, got number 10.5"},
			{3, "invalid_vin", ""}, // {} is a record without fields, as before
		}
		if out.Accepted != 1 || len(out.Rejected) != len(want) {
			t.Fatalf("usage batch = %s, want 1 accepted and %d rejected", res.Body, len(want))
		}
		for i, w := range want {
			r := out.Rejected[i]
			if r.Index != w.index || r.Code != w.code || (w.detail != "" && r.Detail != w.detail) {
				t.Errorf("rejected[%d] = %+v, want index %d code %s detail %q", i, r, w.index, w.code, w.detail)
			}
		}
	})
}

func checkDetail(t *testing.T, what string, res response, want string) {
	t.Helper()
	if res.Code != http.StatusBadRequest {
		t.Errorf("%s = %d %s, want 400", what, res.Code, res.Body)
		return
	}
	if p := res.problem(t); p.Code != "malformed_body" || p.Detail != want || !strings.Contains(p.Detail, "must be") {
		t.Errorf("%s = %s %q, want malformed_body %q", what, p.Code, p.Detail, want)
	}
}
