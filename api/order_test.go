package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store/storetest"
)

var paymentSecret = []byte("test-payment-secret")

// withPayments configures the payment secret, as main.go does.
func withPayments(o *api.Options) {
	o.PaymentSecret = paymentSecret
	o.PaymentTolerance = 5 * time.Minute
	o.UnpaidTTL = 30 * time.Minute
}

// eachPaymentBackend is eachBackend with payments configured.
func eachPaymentBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		fn(t, newHarness(t, dialect, withPayments))
	})
}

// reconfigure rebuilds the server over the same database and clock with
// changed options (a new deployment with another config).
func (h *harness) reconfigure(mod func(*api.Options)) {
	h.t.Helper()
	mod(&h.opts)
	srv, err := api.New(h.opts)
	if err != nil {
		h.t.Fatalf("api.New: %v", err)
	}
	h.handler = srv.Handler()
}

type orderBody struct {
	ID          string  `json:"id"`
	VIN         string  `json:"vin"`
	OwnerID     string  `json:"owner_id"`
	Product     string  `json:"product"`
	AmountFen   int64   `json:"amount_fen"`
	Currency    string  `json:"currency"`
	Status      string  `json:"status"`
	ExpiresAt   string  `json:"expires_at"`
	PaidAt      *string `json:"paid_at"`
	RefundedFen int64   `json:"refunded_fen"`
}

type periodBody struct {
	ID       string  `json:"id"`
	Source   string  `json:"source"`
	OrderID  *string `json:"order_id"`
	Product  string  `json:"product"`
	StartsAt string  `json:"starts_at"`
	EndsAt   string  `json:"ends_at"`
	Status   string  `json:"status"`
}

type fullEntitlement struct {
	State        string       `json:"state"`
	Covered      bool         `json:"covered"`
	CoveredUntil *string      `json:"covered_until"`
	DaysLeft     int          `json:"days_left"`
	Periods      []periodBody `json:"periods"`
}

var keySeq atomic.Int64

// createOrder places an order as owner and fails the test unless it is 201.
func (h *harness) createOrder(v, owner, product string) orderBody {
	h.t.Helper()
	res := h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/orders", Token: h.token(api.RoleOwner, owner),
		Body: map[string]string{"product": product}, Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("k-%d", keySeq.Add(1))}})
	if res.Code != http.StatusCreated {
		h.t.Fatalf("create order = %d %s, want 201", res.Code, res.Body)
	}
	var o orderBody
	res.decode(h.t, &o)
	return o
}

// payment is a notification body.
type payment struct {
	EventID       string `json:"event_id"`
	OrderID       string `json:"order_id"`
	Status        string `json:"status"`
	AmountFen     int64  `json:"amount_fen"`
	Currency      string `json:"currency"`
	PaidAt        string `json:"paid_at,omitempty"`
	TransactionID string `json:"transaction_id"`
}

func succeeded(o orderBody, event string, paidAt time.Time) payment {
	return payment{EventID: event, OrderID: o.ID, Status: "succeeded", AmountFen: o.AmountFen, Currency: "CNY",
		PaidAt: paidAt.Format(time.RFC3339), TransactionID: "tx-" + event}
}

// notify sends a payment notification signed at the harness clock.
func (h *harness) notify(p payment) response {
	h.t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		h.t.Fatalf("marshal: %v", err)
	}
	return h.do(request{Method: http.MethodPost, Path: "/v1/payments/notifications", Body: body,
		Headers: map[string]string{"Payment-Signature": billing.SignPayment(paymentSecret, body, h.clock.Now())}})
}

// pay sends a succeeded notification for o at the harness clock and fails
// the test unless the order comes back paid.
func (h *harness) pay(o orderBody) orderBody {
	h.t.Helper()
	res := h.notify(succeeded(o, "evt-"+o.ID, h.clock.Now()))
	if res.Code != http.StatusOK {
		h.t.Fatalf("pay %s = %d %s, want 200", o.ID, res.Code, res.Body)
	}
	var paid orderBody
	res.decode(h.t, &paid)
	if paid.Status != "paid" {
		h.t.Fatalf("pay %s: status = %s, want paid", o.ID, paid.Status)
	}
	return paid
}

func (h *harness) entitlementOf(v string) fullEntitlement {
	h.t.Helper()
	res := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOps, "ops"))
	if res.Code != http.StatusOK {
		h.t.Fatalf("entitlement = %d %s", res.Code, res.Body)
	}
	var e fullEntitlement
	res.decode(h.t, &e)
	return e
}

func (h *harness) orderOf(id string) orderBody {
	h.t.Helper()
	res := h.get("/v1/orders/"+id, h.token(api.RoleBilling, "bill"))
	if res.Code != http.StatusOK {
		h.t.Fatalf("GET order %s = %d %s", id, res.Code, res.Body)
	}
	var o orderBody
	res.decode(h.t, &o)
	return o
}

// paidPeriods returns the periods that came from orders.
func paidPeriods(e fullEntitlement) []periodBody {
	var out []periodBody
	for _, p := range e.Periods {
		if p.Source == "order" {
			out = append(out, p)
		}
	}
	return out
}

func TestBuyingPackagesStacksPeriods(t *testing.T) {
	type buy struct {
		product    string
		startsAt   string
		endsAt     string
		afterState string
	}
	// The harness clock is 2026-06-15 12:00 Shanghai; every payment is made then.
	tests := []struct {
		name        string
		activatedAt time.Time
		buys        []buy
		until       string
	}{
		{
			name:        "during the trial the package starts when the free year ends",
			activatedAt: time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai),
			buys:        []buy{{"monthly", "2026-09-03T00:00:00+08:00", "2026-10-04T00:00:00+08:00", "trial"}},
			until:       "2026-10-04T00:00:00+08:00",
		},
		{
			name:        "after a lapse the package starts at payment",
			activatedAt: time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai),
			buys:        []buy{{"yearly", "2026-06-15T12:00:00+08:00", "2027-06-15T12:00:00+08:00", "paid"}},
			until:       "2027-06-15T12:00:00+08:00",
		},
		{
			name:        "buying twice in a row, the second starts where the first ends",
			activatedAt: time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai),
			buys: []buy{
				{"monthly", "2026-06-15T12:00:00+08:00", "2026-07-16T12:00:00+08:00", "paid"},
				{"monthly", "2026-07-16T12:00:00+08:00", "2026-08-16T12:00:00+08:00", "paid"},
			},
			until: "2026-08-16T12:00:00+08:00",
		},
		{
			name:        "monthly then yearly",
			activatedAt: time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai),
			buys: []buy{
				{"monthly", "2026-06-15T12:00:00+08:00", "2026-07-16T12:00:00+08:00", "paid"},
				{"yearly", "2026-07-16T12:00:00+08:00", "2027-07-16T12:00:00+08:00", "paid"},
			},
			until: "2027-07-16T12:00:00+08:00",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachPaymentBackend(t, func(t *testing.T, h *harness) {
				v := vin("LSVAX4E10P2100001")
				h.activate(v, "alice", tc.activatedAt)
				for i, b := range tc.buys {
					o := h.createOrder(v, "alice", b.product)
					h.pay(o)
					e := h.entitlementOf(v)
					ps := paidPeriods(e)
					if len(ps) != i+1 {
						t.Fatalf("after buy %d: %d paid periods, want %d", i+1, len(ps), i+1)
					}
					got := ps[i]
					if got.StartsAt != b.startsAt || got.EndsAt != b.endsAt || got.OrderID == nil || *got.OrderID != o.ID {
						t.Errorf("buy %d period = %s..%s (order %v), want %s..%s (order %s)", i+1, got.StartsAt, got.EndsAt, got.OrderID, b.startsAt, b.endsAt, o.ID)
					}
					if e.State != b.afterState {
						t.Errorf("buy %d: state = %s, want %s", i+1, e.State, b.afterState)
					}
				}
				e := h.entitlementOf(v)
				if e.CoveredUntil == nil || *e.CoveredUntil != tc.until {
					t.Errorf("covered_until = %v, want %s", e.CoveredUntil, tc.until)
				}
				var coverageEnd time.Time
				if err := storetest.Query(h.db, &coverageEnd, "SELECT coverage_ends_at FROM vehicles WHERE vin = ?", v); err != nil {
					t.Fatal(err)
				}
				if got := coverageEnd.In(shanghai).Format(time.RFC3339); got != tc.until {
					t.Errorf("vehicles.coverage_ends_at = %s, want %s", got, tc.until)
				}
				notices, err := h.db.Notices(context.Background(), billing.VIN(v), 100)
				if err != nil {
					t.Fatal(err)
				}
				paidNotices := 0
				for _, n := range notices {
					if n.Kind == billing.NoticeOrderPaid {
						paidNotices++
						if n.OwnerID != "alice" || n.Data["order_id"] == nil || n.Data["amount_fen"] == nil || n.Data["starts_at"] == nil {
							t.Errorf("order.paid notice = %+v", n)
						}
					}
				}
				if paidNotices != len(tc.buys) {
					t.Errorf("order.paid notices = %d, want %d", paidNotices, len(tc.buys))
				}
			})
		})
	}
}

func TestOrderKeepsItsPriceWhenTheCatalogChanges(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2100002")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "monthly")
		if o.AmountFen != 1990 {
			t.Fatalf("amount_fen = %d, want 1990", o.AmountFen)
		}
		h.reconfigure(func(opts *api.Options) {
			opts.Catalog.Products[0].PriceFen = 2990
			opts.Catalog.Products[0].Days = 30
		})
		newer := h.createOrder(v, "alice", "monthly")
		if newer.AmountFen != 2990 {
			t.Errorf("new order amount_fen = %d, want 2990", newer.AmountFen)
		}
		wrong := succeeded(o, "evt-new-price", h.clock.Now())
		wrong.AmountFen = 2990
		if res := h.notify(wrong); res.Code != http.StatusUnprocessableEntity || res.problem(t).Code != "amount_mismatch" {
			t.Fatalf("payment at the new price = %d %s, want 422 amount_mismatch", res.Code, res.Body)
		}
		paid := h.pay(o)
		if paid.AmountFen != 1990 {
			t.Errorf("paid amount_fen = %d, want 1990", paid.AmountFen)
		}
		ps := paidPeriods(h.entitlementOf(v))
		if len(ps) != 1 || ps[0].StartsAt != "2026-06-15T12:00:00+08:00" || ps[0].EndsAt != "2026-07-16T12:00:00+08:00" {
			t.Errorf("periods = %+v, want one of the order's 31 days", ps)
		}
		events, err := h.db.PaymentEvents(context.Background(), o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 || events[0].Outcome != billing.OutcomeAmountMismatch || events[1].Outcome != billing.OutcomeApplied {
			t.Errorf("payment events = %+v, want the mismatch recorded, then the payment", events)
		}
	})
}
