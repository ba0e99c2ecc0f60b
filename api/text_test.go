package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"

	"github.com/golang-jwt/jwt/v5"
)

// badCharacters are characters no text field accepts: NUL (which
// PostgreSQL cannot store), other C0 controls, DEL, a C1 control, a
// bidirectional override, a zero-width space and a line separator.
var badCharacters = map[string]string{
	"NUL":                    "\x00",
	"ESC":                    "\x1b",
	"DEL":                    "\x7f",
	"C1 NEL":                 "\u0085",
	"right-to-left override": "\u202e",
	"zero-width space":       "\u200b",
	"line separator":         "\u2028",
}

// textCase is one text field of one endpoint, sent with a bad character
// in it: the answer must be want (a 400 naming the field, or 401 for a
// token's subject), never a 500.
type textCase struct {
	field string
	req   func(bad string) request
	// status and code of the problem; field is the errors entry expected
	// (with fieldCode when set). status 200 is a usage batch, whose bad
	// record is rejected alone with rejectCode.
	status     int
	code       string
	fieldCode  string
	rejectCode string
}

// TestBadCharactersInEveryTextField sends each bad character in every text
// field of every endpoint (bodies, headers, path and query parameters and
// the token's subject), on both databases.
func TestBadCharactersInEveryTextField(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		car := vin("LSVAX4E10P2500001")
		fresh := vin("LSVAX4E10P2500002")
		h.activate(car, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
		pending := h.createOrder(car, "alice", "monthly")
		paid := h.pay(h.createOrder(car, "alice", "yearly"))
		now := h.clock.Now()
		ops, billingTok, alice := h.token(api.RoleOps, "ops"), h.token(api.RoleBilling, "bob"), h.token(api.RoleOwner, "alice")
		carrier := h.token(api.RoleCarrier, "cmcc")
		okAt := now.Add(-time.Hour).Format(time.RFC3339)

		activation := func(owner, model, at string) request {
			return request{Method: "POST", Path: "/v1/vehicles/" + fresh + "/activation", Token: ops,
				Body: map[string]string{"activated_at": at, "owner_id": owner, "model": model}}
		}
		order := func(product, key string) request {
			return request{Method: "POST", Path: "/v1/vehicles/" + car + "/orders", Token: alice,
				Body: map[string]string{"product": product}, Headers: map[string]string{"Idempotency-Key": key}}
		}
		payBody := func(edit func(p *payment)) request {
			p := succeeded(pending, "evt-text", now)
			edit(&p)
			body, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			return request{Method: "POST", Path: "/v1/payments/notifications", Body: body,
				Headers: map[string]string{"Payment-Signature": billing.SignPayment(paymentSecret, body, now)}}
		}
		refund := func(id, reason, note, key string) request {
			return request{Method: "POST", Path: "/v1/orders/" + id + "/refunds", Token: billingTok,
				Body: map[string]any{"reason": reason, "note": note}, Headers: map[string]string{"Idempotency-Key": key}}
		}
		get := func(path, token string) request { return request{Method: "GET", Path: path, Token: token} }
		q := url.QueryEscape
		// cursorWith is a cursor that decodes, with bad in its id.
		cursorWith := func(bad string) string {
			return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d.ord%s1", now.UnixMicro(), bad)))
		}
		usage := func(edit func(r map[string]any)) request {
			r := rec("use-1", car, "entertainment", 10, now.Add(-2*time.Hour))
			edit(r)
			return request{Method: "POST", Path: "/v1/usage", Token: carrier, Body: map[string]any{"records": []any{r}}}
		}
		subject := func(role api.Role, bad string) string {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": "al" + bad + "ice", "role": string(role), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			}).SignedString(tokenSecret)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		invalid := func(field string) textCase {
			return textCase{field: field, status: 400, code: "validation_failed"}
		}
		withCode := func(c textCase, code string, req func(string) request) textCase {
			c.fieldCode = code
			c.req = req
			return c
		}
		rejected := func(code string, req func(string) request) textCase {
			return textCase{field: "records", status: 200, rejectCode: code, req: req}
		}
		unauthorized := func(req func(string) request) textCase {
			return textCase{field: "sub", status: 401, code: "unauthorized", req: req}
		}

		cases := []textCase{
			withCode(invalid("owner_id"), "invalid_character", func(b string) request { return activation("al"+b+"ice", "SU7", okAt) }),
			withCode(invalid("model"), "invalid_character", func(b string) request { return activation("bob", "SU7"+b, okAt) }),
			withCode(invalid("activated_at"), "invalid_time", func(b string) request { return activation("bob", "SU7", okAt+b) }),
			withCode(invalid("owner_id"), "invalid_character", func(b string) request {
				return request{Method: "PUT", Path: "/v1/vehicles/" + car + "/owner", Token: ops, Body: map[string]string{"owner_id": "b" + b + "ob"}}
			}),
			withCode(invalid("product"), "invalid_character", func(b string) request { return order("month"+b+"ly", "key-text") }),
			withCode(invalid("Idempotency-Key"), "invalid_character", func(b string) request { return order("monthly", "key"+b) }),
			withCode(invalid("cursor"), "invalid", func(b string) request { return get("/v1/vehicles/"+car+"/orders?cursor="+cursorWith(b), alice) }),
			withCode(invalid("cursor"), "invalid", func(b string) request { return get("/v1/vehicles/"+car+"/orders?cursor="+q(b), ops) }),
			withCode(invalid("limit"), "out_of_range", func(b string) request { return get("/v1/vehicles/"+car+"/orders?limit=5"+q(b), ops) }),
			withCode(invalid("id"), "invalid_character", func(b string) request { return get("/v1/orders/ord"+url.PathEscape(b)+"1", alice) }),
			withCode(invalid("event_id"), "invalid_character", func(b string) request { return payBody(func(p *payment) { p.EventID += b }) }),
			withCode(invalid("order_id"), "invalid_character", func(b string) request { return payBody(func(p *payment) { p.OrderID += b }) }),
			withCode(invalid("status"), "invalid", func(b string) request { return payBody(func(p *payment) { p.Status += b }) }),
			withCode(invalid("currency"), "invalid_character", func(b string) request { return payBody(func(p *payment) { p.Currency += b }) }),
			withCode(invalid("paid_at"), "invalid_time", func(b string) request { return payBody(func(p *payment) { p.PaidAt += b }) }),
			withCode(invalid("transaction_id"), "invalid_character", func(b string) request { return payBody(func(p *payment) { p.TransactionID += b }) }),
			// The amount-mismatch path records what it refuses: a bad
			// character must be refused before that.
			withCode(invalid("currency"), "invalid_character", func(b string) request {
				return payBody(func(p *payment) { p.AmountFen, p.Currency = 1, "CNY"+b })
			}),
			withCode(invalid("transaction_id"), "invalid_character", func(b string) request {
				return payBody(func(p *payment) { p.AmountFen, p.TransactionID = 1, p.TransactionID+b })
			}),
			withCode(invalid("id"), "invalid_character", func(b string) request { return refund("ord"+url.PathEscape(b)+"1", "other", "", "key-r") }),
			withCode(invalid("reason"), "invalid", func(b string) request { return refund(paid.ID, "other"+b, "", "key-r") }),
			withCode(invalid("note"), "invalid_character", func(b string) request { return refund(paid.ID, "other", "goodwill"+b, "key-r") }),
			withCode(invalid("Idempotency-Key"), "invalid_character", func(b string) request { return refund(paid.ID, "other", "", "key"+b) }),
			withCode(invalid("from"), "invalid_time", func(b string) request { return get("/v1/refunds?from="+q(okAt+b), billingTok) }),
			withCode(invalid("to"), "invalid_time", func(b string) request { return get("/v1/refunds?to="+q(okAt+b), billingTok) }),
			withCode(invalid("vin"), "invalid_vin", func(b string) request { return get("/v1/refunds?vin="+q(car[:8]+b+car[8:]), billingTok) }),
			withCode(invalid("reason"), "invalid", func(b string) request { return get("/v1/refunds?reason="+q("other"+b), billingTok) }),
			withCode(invalid("format"), "invalid", func(b string) request { return get("/v1/refunds?format="+q("csv"+b), billingTok) }),
			withCode(invalid("cursor"), "invalid", func(b string) request { return get("/v1/refunds?cursor="+cursorWith(b), billingTok) }),
			withCode(invalid("limit"), "out_of_range", func(b string) request { return get("/v1/refunds?limit="+q("5"+b), billingTok) }),
			withCode(invalid("limit"), "out_of_range", func(b string) request { return get("/v1/vehicles/"+car+"/notices?limit="+q("5"+b), ops) }),
			withCode(invalid("connection"), "invalid", func(b string) request {
				return get("/v1/vehicles/"+car+"/features/karaoke?connection="+q("hotspot"+b), ops)
			}),
			{field: "feature", status: 404, code: "unknown_feature", req: func(b string) request {
				return get("/v1/vehicles/"+car+"/features/karaoke"+url.PathEscape(b), ops)
			}},
			{field: "vin", status: 400, code: "invalid_vin", req: func(b string) request {
				return get("/v1/vehicles/"+url.PathEscape(car[:8]+b+car[8:])+"/entitlement", ops)
			}},
			rejected("id_invalid", func(b string) request { return usage(func(r map[string]any) { r["id"] = "use" + b }) }),
			rejected("invalid_vin", func(b string) request { return usage(func(r map[string]any) { r["vin"] = car[:8] + b + car[8:] }) }),
			rejected("invalid_category", func(b string) request { return usage(func(r map[string]any) { r["category"] = "basic" + b }) }),
			rejected("invalid_time", func(b string) request {
				return usage(func(r map[string]any) { r["started_at"] = r["started_at"].(string) + b })
			}),
			rejected("invalid_time", func(b string) request {
				return usage(func(r map[string]any) { r["ended_at"] = r["ended_at"].(string) + b })
			}),
			unauthorized(func(b string) request { return order("monthly", "key-sub") }),
			unauthorized(func(b string) request { return get("/v1/vehicles/"+car+"/orders", "") }),
			unauthorized(func(b string) request { return refund(paid.ID, "other", "", "key-sub") }),
			unauthorized(func(b string) request { return get("/v1/vehicles/"+car+"/entitlement", "") }),
			unauthorized(func(b string) request { return usage(func(map[string]any) {}) }),
		}
		// The token of each subject case is the caller's own, with the bad
		// character in its sub.
		subjectRole := map[string]api.Role{
			"POST /v1/vehicles/" + car + "/orders": api.RoleOwner, "GET /v1/vehicles/" + car + "/orders": api.RoleOwner,
			"POST /v1/orders/" + paid.ID + "/refunds": api.RoleBilling, "GET /v1/vehicles/" + car + "/entitlement": api.RoleOps,
			"POST /v1/usage": api.RoleCarrier,
		}
		for _, tc := range cases {
			for name, bad := range badCharacters {
				req := tc.req(bad)
				if tc.field == "sub" {
					req.Token = subject(subjectRole[req.Method+" "+req.Path], bad)
				}
				what := fmt.Sprintf("%s %s: %s in %s", req.Method, req.Path, name, tc.field)
				res := h.do(req)
				if res.Code != tc.status {
					t.Errorf("%s = %d %.300s, want %d %s", what, res.Code, res.Body, tc.status, tc.code)
					continue
				}
				if tc.status == 200 {
					var out usageResult
					res.decode(t, &out)
					if out.Accepted != 0 || len(out.Rejected) != 1 || out.Rejected[0].Code != tc.rejectCode {
						t.Errorf("%s = %s, want the record rejected with %s", what, res.Body, tc.rejectCode)
					}
					continue
				}
				p := res.problem(t)
				if p.Code != tc.code {
					t.Errorf("%s: code %q, want %q", what, p.Code, tc.code)
				}
				if tc.code != "validation_failed" {
					continue
				}
				found := false
				for _, f := range p.Errors {
					found = found || (f.Field == tc.field && (tc.fieldCode == "" || f.Code == tc.fieldCode))
				}
				if !found {
					t.Errorf("%s: errors %+v, want %s %s", what, p.Errors, tc.field, tc.fieldCode)
				}
			}
		}
		// Nothing was recorded of the refused notifications, and the order
		// they named is still pending.
		if events, err := h.db.PaymentEvents(context.Background(), pending.ID); err != nil || len(events) != 0 {
			t.Errorf("payment events of %s = %+v, %v; want none", pending.ID, events, err)
		}
		if o := h.orderOf(pending.ID); o.Status != "pending" {
			t.Errorf("order %s is %s, want pending", pending.ID, o.Status)
		}
	})
}

// TestTextFieldLimits checks the boundaries of the text rules: what is
// just allowed is stored and shown as sent, one character more is refused.
func TestTextFieldLimits(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		car := vin("LSVAX4E10P2500003")
		now := h.clock.Now()
		ops := h.token(api.RoleOps, "ops")
		activate := func(v, owner, model string) response {
			return h.do(request{Method: "POST", Path: "/v1/vehicles/" + v + "/activation", Token: ops,
				Body: map[string]string{"activated_at": now.Add(-time.Hour).Format(time.RFC3339), "owner_id": owner, "model": model}})
		}
		// A model of 100 characters, spaces and CJK allowed.
		model := strings.Repeat("小米 SU7 ", 14) + "小米"
		if n := len([]rune(model)); n != 100 {
			t.Fatalf("model has %d characters", n)
		}
		if res := activate(car, "车主-1", model); res.Code != http.StatusCreated {
			t.Fatalf("activation with a 100-character model = %d %s, want 201", res.Code, res.Body)
		}
		if res := activate(vin("LSVAX4E10P2500004"), "bob", model+"x"); res.Code != 400 || !hasField(res.problem(t), "model", "too_long") {
			t.Errorf("101-character model = %d %s, want 400 model too_long", res.Code, res.Body)
		}
		if res := activate(vin("LSVAX4E10P2500004"), "bob smith", "SU7"); res.Code != 400 || !hasField(res.problem(t), "owner_id", "invalid_character") {
			t.Errorf("owner_id with a space = %d %s, want 400 owner_id invalid_character", res.Code, res.Body)
		}
		o := h.pay(h.createOrder(car, "车主-1", "monthly"))
		note := "line one\r\nline two: 退款 " + strings.Repeat("x", 477)
		if n := len([]rune(note)); n != 500 {
			t.Fatalf("note has %d characters", n)
		}
		res := h.refund(o.ID, map[string]any{"reason": "other", "note": note, "amount_fen": 1})
		var r refundBody
		if res.Code != http.StatusCreated {
			t.Fatalf("refund with a 500-character two-line note = %d %s, want 201", res.Code, res.Body)
		}
		if res.decode(t, &r); r.Note != note {
			t.Errorf("note = %q, want %q", r.Note, note)
		}
		res = h.refund(o.ID, map[string]any{"reason": "other", "note": note + "x", "amount_fen": 1})
		if res.Code != 400 || !hasField(res.problem(t), "note", "too_long") {
			t.Errorf("501-character note = %d %s, want 400 note too_long", res.Code, res.Body)
		}
		res = h.refund(o.ID, map[string]any{"reason": "other", "note": "a\tb", "amount_fen": 1})
		if res.Code != 400 || !hasField(res.problem(t), "note", "invalid_character") {
			t.Errorf("note with a tab = %d %s, want 400 note invalid_character", res.Code, res.Body)
		}
		res = h.do(request{Method: "POST", Path: "/v1/vehicles/" + car + "/orders", Token: h.token(api.RoleOwner, "车主-1"),
			Body: map[string]string{"product": strings.Repeat("p", 65)}, Headers: map[string]string{"Idempotency-Key": "k-long"}})
		if res.Code != 400 || !hasField(res.problem(t), "product", "too_long") {
			t.Errorf("65-character product = %d %s, want 400 product too_long", res.Code, res.Body)
		}
		res = h.notify(payment{EventID: "evt-cur", OrderID: o.ID, Status: "succeeded", AmountFen: o.AmountFen,
			Currency: "CNYCNYCNY", TransactionID: "tx"})
		if res.Code != 400 || !hasField(res.problem(t), "currency", "too_long") {
			t.Errorf("9-character currency = %d %s, want 400 currency too_long", res.Code, res.Body)
		}
		// A well-formed currency that is not the order's is a recorded
		// mismatch, as before.
		if res := h.notify(payment{EventID: "evt-usd", OrderID: o.ID, Status: "succeeded", AmountFen: o.AmountFen,
			Currency: "USD", TransactionID: "tx"}); res.Code != http.StatusUnprocessableEntity {
			t.Errorf("USD payment = %d %s, want 422", res.Code, res.Body)
		}
	})
}

func hasField(p api.Problem, field, code string) bool {
	for _, f := range p.Errors {
		if f.Field == field && f.Code == code {
			return true
		}
	}
	return false
}
