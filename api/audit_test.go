package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store/storetest"

	"github.com/getkin/kin-openapi/openapi3"
)

type auditEntry struct {
	ID        string         `json:"id"`
	At        string         `json:"at"`
	Actor     string         `json:"actor"`
	RequestID *string        `json:"request_id"`
	Action    string         `json:"action"`
	VIN       *string        `json:"vin"`
	OrderID   *string        `json:"order_id"`
	RefundID  *string        `json:"refund_id"`
	Before    map[string]any `json:"before"`
	After     map[string]any `json:"after"`
}

type auditList struct {
	Entries    []auditEntry `json:"entries"`
	NextCursor *string      `json:"next_cursor"`
}

// audit reads GET /v1/audit?query as billing and fails unless it is 200.
func (h *harness) audit(query string) auditList {
	h.t.Helper()
	res := h.get("/v1/audit?"+query, h.token(api.RoleBilling, "auditor"))
	if res.Code != http.StatusOK {
		h.t.Fatalf("GET /v1/audit?%s = %d %s, want 200", query, res.Code, res.Body)
	}
	var out auditList
	res.decode(h.t, &out)
	return out
}

// only returns the one entry of action in es, failing the test unless
// there is exactly one.
func only(t *testing.T, es []auditEntry, action string) auditEntry {
	t.Helper()
	var found []auditEntry
	for _, e := range es {
		if e.Action == action {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s entries in %+v, want 1", len(found), action, es)
	}
	return found[0]
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkEntry compares an entry's actor, request id and ids.
func checkEntry(t *testing.T, e auditEntry, actor, requestID, vin, orderID string) {
	t.Helper()
	if e.Actor != actor || str(e.RequestID) != requestID || str(e.VIN) != vin || str(e.OrderID) != orderID {
		t.Errorf("%s entry: actor %q, request %q, vin %q, order %q; want %q, %q, %q, %q", e.Action,
			e.Actor, str(e.RequestID), str(e.VIN), str(e.OrderID), actor, requestID, vin, orderID)
	}
}

// TestAuditRecordsStaffActions: activation, transfer, order, refund and a
// refused refund each leave exactly one entry, by the token's role and
// subject, with the request's id, the ids concerned and what changed;
// requests that change nothing leave none.
func TestAuditRecordsStaffActions(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2400001")
		ops := h.token(api.RoleOps, "delivery")
		activation := map[string]any{"activated_at": "2025-01-10T09:00:00+08:00", "owner_id": "alice", "model": "SU7"}
		for _, want := range []int{201, 200} { // the same again changes nothing
			res := h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/activation", Token: ops, Body: activation,
				Headers: map[string]string{"X-Request-Id": "req-activate"}})
			if res.Code != want {
				t.Fatalf("activate = %d %s, want %d", res.Code, res.Body, want)
			}
		}
		e := only(t, h.audit("vin="+v).Entries, "vehicle.activated")
		checkEntry(t, e, "ops:delivery", "req-activate", v, "")
		if len(e.Before) != 0 || e.After["owner_id"] != "alice" || e.After["activated_at"] != "2025-01-10T09:00:00+08:00" ||
			e.After["coverage_ends_at"] != "2026-01-10T00:00:00+08:00" {
			t.Errorf("activation before %v after %v, want nothing before and the vehicle after, in local time", e.Before, e.After)
		}

		var pending orderBody
		for range 2 { // the retry with the same key replays the first answer
			res := h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/orders", Token: h.token(api.RoleOwner, "alice"),
				Body: map[string]string{"product": "yearly"}, Headers: map[string]string{"Idempotency-Key": "audit-order"}})
			if res.Code != http.StatusCreated {
				t.Fatalf("create order = %d %s", res.Code, res.Body)
			}
			res.decode(t, &pending)
		}
		if n := len(h.audit("action=order.created").Entries); n != 1 {
			t.Errorf("%d order.created entries after a replayed order, want 1", n)
		}
		e = only(t, h.audit("order_id="+pending.ID).Entries, "order.created")
		checkEntry(t, e, "owner:alice", str(e.RequestID), v, pending.ID)
		if e.RequestID == nil || e.After["status"] != "pending" || e.After["amount_fen"] != float64(19900) || e.After["product"] != "yearly" {
			t.Errorf("order entry %+v, want a request id and the pending order", e)
		}

		transfer := func() {
			res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: ops,
				Body: map[string]string{"owner_id": "bruno"}, Headers: map[string]string{"X-Request-Id": "req-transfer"}})
			if res.Code != 200 {
				t.Fatalf("transfer = %d %s", res.Code, res.Body)
			}
		}
		transfer()
		transfer() // to the current owner: a no-op
		e = only(t, h.audit("vin="+v).Entries, "vehicle.owner_transferred")
		checkEntry(t, e, "ops:delivery", "req-transfer", v, "")
		if e.Before["owner_id"] != "alice" || e.After["owner_id"] != "bruno" || fmt.Sprint(e.After["cancelled_orders"]) != "["+pending.ID+"]" {
			t.Errorf("transfer before %v after %v, want alice to bruno, %s cancelled", e.Before, e.After, pending.ID)
		}

		o := h.pay(h.createOrder(v, "bruno", "monthly"))
		res := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: h.token(api.RoleBilling, "bob"),
			Body: map[string]any{"reason": "service_issue", "amount_fen": 500}, Headers: map[string]string{"Idempotency-Key": "rf-1", "X-Request-Id": "req-refund"}})
		if res.Code != 201 {
			t.Fatalf("refund = %d %s", res.Code, res.Body)
		}
		var r refundBody
		res.decode(t, &r)
		e = only(t, h.audit("order_id="+o.ID).Entries, "refund.issued")
		checkEntry(t, e, "billing:bob", "req-refund", v, o.ID)
		if str(e.RefundID) != r.ID || e.Before["refunded_fen"] != float64(0) || e.After["refunded_fen"] != float64(500) ||
			e.Before["status"] != "paid" || e.After["status"] != "partially_refunded" || e.After["reason"] != "service_issue" {
			t.Errorf("refund entry %+v, want refund %s taking refunded_fen 0 to 500", e, r.ID)
		}
		// The retry with the same key replays the response and records nothing.
		h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: h.token(api.RoleBilling, "bob"),
			Body: map[string]any{"reason": "service_issue", "amount_fen": 500}, Headers: map[string]string{"Idempotency-Key": "rf-1"}})
		only(t, h.audit("order_id="+o.ID).Entries, "refund.issued")

		// Refused attempts are recorded, though the refund's transaction rolls back.
		for _, c := range []struct {
			order, code string
			body        map[string]any
		}{
			{o.ID, "refund_exceeds_balance", map[string]any{"reason": "other", "amount_fen": 5000}},
			{pending.ID, "order_not_paid", map[string]any{"reason": "other"}},
		} {
			// A refused dry run is not an attempt: it leaves no entry.
			dry := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + c.order + "/refunds?dry_run=true", Token: h.token(api.RoleBilling, "bob"), Body: c.body})
			if dry.Code == 200 || dry.problem(t).Code != c.code {
				t.Fatalf("dry run of %s = %d %s, want %s", c.order, dry.Code, dry.Body, c.code)
			}
			for _, e := range h.audit("order_id=" + c.order).Entries {
				if e.Action == "refund.refused" {
					t.Fatalf("a refused dry run of %s was recorded: %+v", c.order, e)
				}
			}
			res := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + c.order + "/refunds", Token: h.token(api.RoleBilling, "bob"),
				Body: c.body, Headers: map[string]string{"Idempotency-Key": "rf-" + c.code, "X-Request-Id": "req-" + c.code}})
			if res.Code == 201 || res.problem(t).Code != c.code {
				t.Fatalf("refund of %s = %d %s, want %s", c.order, res.Code, res.Body, c.code)
			}
			e := only(t, h.audit("order_id="+c.order).Entries, "refund.refused")
			checkEntry(t, e, "billing:bob", "req-"+c.code, v, c.order)
			if e.After["code"] != c.code || e.After["reason"] != "other" || e.RefundID != nil {
				t.Errorf("refusal entry %+v, want code %s", e, c.code)
			}
		}
		if n := len(h.audit("action=refund.issued").Entries); n != 1 {
			t.Errorf("%d refund.issued entries, want 1 (refusals issue nothing)", n)
		}
	})
}

// TestAuditRecordsPaymentsAndUsage: the provider's notifications (applied,
// failed, mismatched, a second payment) and the carrier's batches each
// leave one entry; repeats of a notification or a batch leave none.
func TestAuditRecordsPaymentsAndUsage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		h := newHarness(t, dialect, withPayments, withUsage)
		v := vin("LSVAX4E10P2400002")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "monthly")

		failed := succeeded(o, "evt-failed", h.clock.Now())
		failed.Status, failed.TransactionID = "failed", ""
		mismatch := succeeded(o, "evt-usd", h.clock.Now())
		mismatch.Currency = "USD"
		for _, p := range []payment{failed, mismatch, mismatch} {
			h.notify(p)
		}
		paid := h.pay(o)
		h.pay(o) // the same event again
		h.notify(succeeded(o, "evt-second", h.clock.Now()))

		es := h.audit("order_id=" + o.ID).Entries
		for _, action := range []string{"payment.failed", "payment.amount_mismatch", "payment.applied", "payment.already_paid"} {
			e := only(t, es, action)
			if e.Actor != "provider" || e.RequestID == nil || str(e.VIN) != v {
				t.Errorf("%s entry %+v, want the provider with a request id, on %s", action, e, v)
			}
		}
		e := only(t, es, "payment.applied")
		if e.Before["status"] != "pending" || e.After["status"] != "paid" || e.After["event_id"] != "evt-"+o.ID ||
			e.After["paid_at"] != *paid.PaidAt || e.Before["coverage_ends_at"] != "2026-01-10T00:00:00+08:00" {
			t.Errorf("payment.applied before %v after %v, want pending to paid by evt-%s at %s", e.Before, e.After, o.ID, *paid.PaidAt)
		}
		e = only(t, es, "payment.amount_mismatch")
		if e.Before["currency"] != "CNY" || e.After["currency"] != "USD" || e.After["event_id"] != "evt-usd" {
			t.Errorf("mismatch before %v after %v, want CNY asked and USD paid", e.Before, e.After)
		}

		batch := []map[string]any{
			rec("u1", v, "entertainment", 1000, h.clock.Now().Add(-time.Hour)),
			rec("u2", v, "basic", 500, h.clock.Now().Add(-time.Hour)),
			rec("u3", vin("LSVAX4E10P2499999"), "basic", 500, h.clock.Now().Add(-time.Hour)),
		}
		h.postUsage(batch)
		h.postUsage(batch) // all duplicates: nothing changes
		e = only(t, h.audit("action=usage.accepted").Entries, "usage.accepted")
		if e.Actor != "carrier:carrier-1" || e.VIN != nil || e.After["accepted"] != float64(2) || e.After["rejected"] != float64(1) ||
			e.After["records"] != float64(3) {
			t.Errorf("usage entry %+v, want the carrier's counts 3 records, 2 accepted, 1 rejected", e)
		}
	})
}

// TestAuditRecordsJobs: the stale-order job's cancellations are recorded
// as system:cancel_unpaid.
func TestAuditRecordsJobs(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2400003")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "monthly")
		h.clock.Advance(31 * time.Minute)
		if n, err := h.db.CancelStaleOrders(context.Background(), h.clock.Now(), 30*time.Minute); err != nil || n != 1 {
			t.Fatalf("CancelStaleOrders = %d, %v", n, err)
		}
		e := only(t, h.audit("order_id="+o.ID).Entries, "order.cancelled_stale")
		checkEntry(t, e, "system:cancel_unpaid", "", v, o.ID)
		if e.Before["status"] != "pending" || e.After["status"] != "cancelled" {
			t.Errorf("cancel before %v after %v, want pending to cancelled", e.Before, e.After)
		}
	})
}

// TestAuditFiltersAndPages: every filter narrows the list, pages run
// newest first without gaps or repeats, and bad filters are 400.
func TestAuditFiltersAndPages(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		var vins []string
		for i := range 5 {
			v := vin(fmt.Sprintf("LSVAX4E10P25%05d", i))
			vins = append(vins, v)
			h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
			h.clock.Advance(time.Minute)
		}
		o := h.createOrder(vins[0], "alice", "monthly")
		all := h.audit("")
		if len(all.Entries) != 6 || all.NextCursor != nil {
			t.Fatalf("%d entries, cursor %v; want 6 on one page", len(all.Entries), all.NextCursor)
		}
		if all.Entries[0].Action != "order.created" || str(all.Entries[5].VIN) != vins[0] {
			t.Errorf("first %s, last of %s: want newest first", all.Entries[0].Action, str(all.Entries[5].VIN))
		}

		var paged []string
		query := "limit=2"
		for pages := 0; ; pages++ {
			p := h.audit(query)
			for _, e := range p.Entries {
				paged = append(paged, e.ID)
			}
			if p.NextCursor == nil {
				break
			}
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			query = "limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		var ids []string
		for _, e := range all.Entries {
			ids = append(ids, e.ID)
		}
		if strings.Join(paged, ",") != strings.Join(ids, ",") {
			t.Errorf("pages of 2 = %v, want %v", paged, ids)
		}

		second := all.Entries[4] // vins[1]'s activation
		for query, want := range map[string]int{
			"vin=" + strings.ToLower(vins[1]):                               1,
			"order_id=" + o.ID:                                              1,
			"actor=ops:delivery":                                            5,
			"actor=owner:alice":                                             1,
			"actor=" + strings.Repeat("a", 140):                             0, // the longest allowed
			"actor=ops":                                                     0, // the whole actor, not a prefix
			"action=vehicle.activated":                                      5,
			"action=vehicle.activated&vin=" + vins[2]:                       1,
			"from=" + url.QueryEscape(second.At):                            5,
			"to=" + url.QueryEscape(second.At):                              1,
			"from=2030-01-01T00:00:00Z":                                     0,
			"actor=ops:delivery&from=" + url.QueryEscape(second.At):         4,
			"action=order.created&to=" + url.QueryEscape(second.At):         0,
			"order_id=" + o.ID + "&actor=" + url.QueryEscape("owner:alice"): 1,
		} {
			if got := len(h.audit(query).Entries); got != want {
				t.Errorf("?%s: %d entries, want %d", query, got, want)
			}
		}

		for query, field := range map[string]string{
			"vin=NOTAVIN":                                       "vin",
			"action=vehicle.deleted":                            "action",
			"actor=" + url.QueryEscape("a\x01"):                 "actor",
			"actor=" + strings.Repeat("a", 141):                 "actor",
			"order_id=" + url.QueryEscape("o 1"):                "order_id",
			"from=yesterday":                                    "from",
			"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z": "to",
			"limit=0":    "limit",
			"cursor=abc": "cursor",
			"format=xml": "format",
		} {
			res := h.get("/v1/audit?"+query, h.token(api.RoleOps, "ops"))
			if res.Code != 400 {
				t.Errorf("?%s = %d %s, want 400", query, res.Code, res.Body)
				continue
			}
			p := res.problem(t)
			if p.Code != "validation_failed" || len(p.Errors) == 0 || p.Errors[0].Field != field {
				t.Errorf("?%s: %+v, want validation_failed naming %s", query, p, field)
			}
		}
	})
}

// TestAuditExportMatchesJSON: the CSV export holds every matching entry,
// in the JSON order, with before and after as JSON objects.
func TestAuditExportMatchesJSON(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2600001")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		for range 3 {
			h.createOrder(v, "alice", "monthly")
		}
		res := h.get("/v1/audit?format=csv&vin="+v, h.token(api.RoleBilling, "auditor"))
		if res.Code != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("CSV = %d %s %s", res.Code, res.Header.Get("Content-Type"), res.Body)
		}
		rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(rows[0], ","); got != "id,at,actor,request_id,action,vin,order_id,refund_id,before,after" {
			t.Errorf("header = %s", got)
		}
		js := h.audit("vin=" + v).Entries
		if len(rows) != len(js)+1 || len(js) != 4 {
			t.Fatalf("%d CSV rows for %d entries, want a header and 4 entries", len(rows), len(js))
		}
		for i, e := range js {
			row := rows[i+1]
			var after map[string]any
			if err := json.Unmarshal([]byte(row[9]), &after); err != nil {
				t.Fatalf("after column %q: %v", row[9], err)
			}
			if row[0] != e.ID || row[1] != e.At || row[2] != e.Actor || row[4] != e.Action || row[5] != v ||
				row[6] != str(e.OrderID) || row[8] != "{}" || fmt.Sprint(after) != fmt.Sprint(e.After) {
				t.Errorf("row %d = %v, want %+v", i, row, e)
			}
		}
	})
}

// TestAuditAccess: billing and ops read the trail; the other roles get 403
// and no token 401.
func TestAuditAccess(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2700001")
		for _, role := range []api.Role{api.RoleVehicle, api.RoleOwner, api.RoleCarrier} {
			sub := "alice"
			if role == api.RoleVehicle {
				sub = v
			}
			for _, q := range []string{"", "?format=csv", "?vin=" + v} {
				if res := h.get("/v1/audit"+q, h.token(role, sub)); res.Code != 403 || res.problem(t).Code != "forbidden" {
					t.Errorf("%s GET /v1/audit%s = %d %s, want 403", role, q, res.Code, res.Body)
				}
			}
		}
		for _, role := range []api.Role{api.RoleBilling, api.RoleOps} {
			if res := h.get("/v1/audit", h.token(role, "staff")); res.Code != 200 {
				t.Errorf("%s GET /v1/audit = %d %s, want 200", role, res.Code, res.Body)
			}
		}
		if res := h.get("/v1/audit", ""); res.Code != 401 {
			t.Errorf("GET /v1/audit without a token = %d, want 401", res.Code)
		}
	})
}

// TestAuditActionsDocumented: the OpenAPI document lists exactly the
// actions the service records.
func TestAuditActionsDocumented(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, v := range doc.Components.Schemas["AuditAction"].Value.Enum {
		documented = append(documented, fmt.Sprint(v))
	}
	var actions []string
	for _, a := range billing.AuditActions {
		actions = append(actions, string(a))
	}
	if strings.Join(documented, ",") != strings.Join(actions, ",") {
		t.Errorf("openapi.yaml AuditAction = %v, want %v", documented, actions)
	}
}
