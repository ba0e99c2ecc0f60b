package api_test

import (
	"context"
	"entitlements/store/storetest"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// The visibility matrix: every role × every VIN- or order-scoped endpoint ×
// every kind of subject, seen from the caller. A vehicle or owner must not
// be able to tell another's car, a car sold since, a VIN never activated
// and a VIN no car has apart: status, code and detail are the same (with
// the VIN or order id in the detail). Staff see every record and may learn
// that a VIN is not activated.

// subject is what a matrix cell asks about, relative to the caller.
type subject int

const (
	ownCar       subject = iota // the caller's own car (for a vehicle token: itself) and an order of it the caller placed
	soldCar                     // a car the owner sold, and the buyer's order of it
	strangersCar                // another owner's car and order
	notActivated                // a valid VIN with no activation (and an order id nobody has)
	nonexistent                 // a valid VIN no car has (and another order id nobody has)
)

var subjects = []subject{ownCar, soldCar, strangersCar, notActivated, nonexistent}

func (s subject) String() string {
	return [...]string{"own car", "previous owner after a transfer", "stranger's car", "valid VIN not activated", "nonexistent VIN"}[s]
}

// visibilityFixture holds the records the matrix asks about. Alice owns
// carD (order oD) and has sold carA to bob, who bought oB for it after the
// transfer; carol owns carC (order oC). carN and carX have no vehicle.
type visibilityFixture struct {
	carD, carA, carC, carN, carX string
	oD, oA, oB, oC               string
	owner                        map[string]string // current owner by VIN
}

func (f visibilityFixture) vin(s subject) string {
	return [...]string{f.carD, f.carA, f.carC, f.carN, f.carX}[s]
}

func (f visibilityFixture) order(s subject) string {
	return [...]string{f.oD, f.oB, f.oC, "ord_never_placed", "no-such-order"}[s]
}

// newVisibilityFixture builds the fixture through the API. The notices it
// leaves on carA: alice's coverage.expiring (before the transfer), the
// order.paid of her oA, the refund.issued of oA (billing refunds it after
// the transfer), bob's order.paid of oB and bob's coverage.expiring.
func newVisibilityFixture(t *testing.T, h *harness) visibilityFixture {
	t.Helper()
	f := visibilityFixture{
		carD: vin("LSVAX4E10P4000001"), carA: vin("LSVAX4E10P4000002"), carC: vin("LSVAX4E10P4000003"),
		carN: vin("LSVAX4E10P4000004"), carX: vin("WDDZZZ00000000009"),
		owner: map[string]string{},
	}
	activated := time.Date(2025, 7, 1, 10, 0, 0, 0, shanghai) // the trial ends 2026-07-01, 16 days after the harness clock
	for v, owner := range map[string]string{f.carD: "alice", f.carA: "alice", f.carC: "carol"} {
		h.activate(v, owner, activated)
		f.owner[v] = owner
	}
	remind(t, h)                                               // alice's coverage.expiring for carA (and carD, carC)
	f.oA = h.pay(h.createOrder(f.carA, "alice", "monthly")).ID // carA covered until 2026-08-01
	transfer(t, h, f.carA, "bob")
	f.owner[f.carA] = "bob"
	f.oB = h.pay(h.createOrder(f.carA, "bob", "monthly")).ID // carA covered until 2026-09-01
	if res := h.refund(f.oA, map[string]any{"reason": "vehicle_transferred", "amount_fen": 100}); res.Code != http.StatusCreated {
		t.Fatalf("refund %s = %d %s, want 201", f.oA, res.Code, res.Body)
	}
	f.oD = h.pay(h.createOrder(f.carD, "alice", "monthly")).ID
	f.oC = h.pay(h.createOrder(f.carC, "carol", "monthly")).ID
	h.clock.Set(time.Date(2026, 8, 10, 12, 0, 0, 0, shanghai))
	remind(t, h) // bob's coverage.expiring for carA: 22 days left
	return f
}

// remind runs the reminder job at the harness clock.
func remind(t *testing.T, h *harness) {
	t.Helper()
	if _, err := h.db.CreateReminders(context.Background(), h.clock.Now(), []int{30, 7, 1}, shanghai, 100); err != nil {
		t.Fatalf("CreateReminders: %v", err)
	}
}

func transfer(t *testing.T, h *harness, v, owner string) {
	t.Helper()
	res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: h.token(api.RoleOps, "delivery"),
		Body: map[string]string{"owner_id": owner}})
	if res.Code != http.StatusOK {
		t.Fatalf("transfer %s to %s = %d %s", v, owner, res.Code, res.Body)
	}
}

// scopedEndpoint is a VIN- or order-scoped endpoint of the matrix; roles
// are those SPEC section 3 lets call it at all.
type scopedEndpoint struct {
	method, path string // path holds {vin} or {id}
	roles        []api.Role
	// decidedWhenNotActivated: a caller who may learn that a VIN is not
	// activated gets 200 with not_activated decisions, not a 404.
	decidedWhenNotActivated bool
	body                    func(f visibilityFixture, s subject) any
	key                     bool // needs an Idempotency-Key
}

func (e scopedEndpoint) orderScoped() bool { return strings.Contains(e.path, "{id}") }

var (
	readers = []api.Role{api.RoleVehicle, api.RoleOwner, api.RoleBilling, api.RoleOps}
	ownerOr = []api.Role{api.RoleOwner, api.RoleBilling, api.RoleOps}
)

var scopedEndpoints = []scopedEndpoint{
	{method: "GET", path: "/v1/vehicles/{vin}/entitlement", roles: readers},
	{method: "GET", path: "/v1/vehicles/{vin}/features", roles: readers, decidedWhenNotActivated: true},
	{method: "GET", path: "/v1/vehicles/{vin}/features/karaoke?connection=hotspot", roles: readers, decidedWhenNotActivated: true},
	{method: "GET", path: "/v1/vehicles/{vin}/entitlement?at=2026-07-15&as_known_at=2026-08-01T00:00:00%2B08:00", roles: readers},
	{method: "GET", path: "/v1/vehicles/{vin}/features?as_known_at=2026-08-01", roles: readers, decidedWhenNotActivated: true},
	{method: "GET", path: "/v1/vehicles/{vin}/features/karaoke?at=2026-07-15T10:00:00Z", roles: readers, decidedWhenNotActivated: true},
	{method: "GET", path: "/v1/vehicles/{vin}/timeline/history", roles: []api.Role{api.RoleBilling, api.RoleOps}},
	{method: "GET", path: "/v1/vehicles/{vin}/certificate", roles: readers},
	{method: "POST", path: "/v1/vehicles/{vin}/orders", roles: []api.Role{api.RoleOwner}, key: true,
		body: func(visibilityFixture, subject) any { return map[string]string{"product": "monthly"} }},
	{method: "GET", path: "/v1/vehicles/{vin}/orders", roles: ownerOr},
	{method: "GET", path: "/v1/vehicles/{vin}/notices", roles: ownerOr},
	{method: "PUT", path: "/v1/vehicles/{vin}/owner", roles: []api.Role{api.RoleOps},
		body: func(f visibilityFixture, s subject) any {
			// A transfer to the current owner changes nothing; a VIN with
			// no vehicle gets someone, who never becomes its owner.
			return map[string]string{"owner_id": cmpOr(f.owner[f.vin(s)], "dave")}
		}},
	{method: "GET", path: "/v1/orders/{id}", roles: ownerOr},
	{method: "POST", path: "/v1/orders/{id}/refunds", roles: []api.Role{api.RoleBilling}, key: true,
		body: func(visibilityFixture, subject) any {
			return map[string]any{"reason": "service_issue", "amount_fen": 1}
		}},
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// matrixCaller is the token of a role; sub is chosen so that the fixture's
// subjects are what their names say for that caller.
type matrixCaller struct {
	role api.Role
	sub  func(f visibilityFixture) string
}

var matrixCallers = []matrixCaller{
	{api.RoleVehicle, func(f visibilityFixture) string { return f.carD }},
	{api.RoleOwner, func(visibilityFixture) string { return "alice" }},
	{api.RoleBilling, func(visibilityFixture) string { return "billing-clerk" }},
	{api.RoleOps, func(visibilityFixture) string { return "delivery" }},
	{api.RoleCarrier, func(visibilityFixture) string { return "carrier-feed" }},
}

// outcome is what a cell must answer; detail has {vin} and {id} for the
// subject's VIN and order id. A 2xx has no detail.
type outcome struct {
	status int
	code   string
	detail string
}

// want is the visibility rule restated from SPEC section 3, independently
// of the code under test.
func want(e scopedEndpoint, role api.Role, s subject) outcome {
	if !slices.Contains(e.roles, role) {
		return outcome{http.StatusForbidden, "forbidden", "role " + string(role) + " may not do this"}
	}
	staff := role == api.RoleBilling || role == api.RoleOps
	visible := staff && s <= strangersCar || s == ownCar
	created := e.method == http.MethodPost
	switch {
	case visible && created:
		return outcome{status: http.StatusCreated}
	case visible:
		return outcome{status: http.StatusOK}
	case e.orderScoped():
		return outcome{http.StatusNotFound, "order_not_found", "order {id} not found"}
	case staff && e.decidedWhenNotActivated:
		return outcome{status: http.StatusOK}
	case staff:
		return outcome{http.StatusNotFound, "vehicle_not_found", "vehicle {vin} is not activated"}
	}
	return outcome{http.StatusNotFound, "vehicle_not_found", "vehicle {vin} not found"}
}

func TestVisibilityMatrix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		h := newHarness(t, dialect, withPayments, withCertificates(t, newSigningKey(t)))
		f := newVisibilityFixture(t, h)
		for _, e := range scopedEndpoints {
			for _, c := range matrixCallers {
				tok := h.token(c.role, c.sub(f))
				hidden := map[outcome][]subject{} // answers of the subjects the caller may not see
				for _, s := range subjects {
					what := fmt.Sprintf("%s %s as %s, %s", e.method, e.path, c.role, s)
					got := h.ask(f, e, s, tok)
					if w := want(e, c.role, s); got != w {
						t.Errorf("%s = %d %s %q, want %d %s %q", what, got.status, got.code, got.detail, w.status, w.code, w.detail)
					}
					if c.role == api.RoleVehicle || c.role == api.RoleOwner {
						if s != ownCar {
							hidden[got] = append(hidden[got], s)
						}
					}
				}
				if len(hidden) > 1 {
					t.Errorf("%s %s as %s tells subjects apart: %v", e.method, e.path, c.role, hidden)
				}
			}
		}
	})
}

// ask sends the cell's request and returns its answer with the subject's
// VIN and order id replaced by {vin} and {id} in the detail.
func (h *harness) ask(f visibilityFixture, e scopedEndpoint, s subject, tok string) outcome {
	h.t.Helper()
	v, id := f.vin(s), f.order(s)
	req := request{Method: e.method, Path: strings.NewReplacer("{vin}", v, "{id}", id).Replace(e.path), Token: tok}
	if e.body != nil {
		req.Body = e.body(f, s)
	}
	if e.key {
		req.Headers = map[string]string{"Idempotency-Key": fmt.Sprintf("vis-%d", keySeq.Add(1))}
	}
	res := h.do(req)
	if res.Code < 300 {
		return outcome{status: res.Code}
	}
	p := res.problem(h.t)
	return outcome{res.Code, p.Code, strings.NewReplacer(v, "{vin}", id, "{id}").Replace(p.Detail)}
}

// TestPreviousOwnerKeepsTheirOrders: after selling the car, the previous
// owner still reads the order they paid by its id (the money was theirs),
// but not the car, its order list or its notices.
func TestPreviousOwnerKeepsTheirOrders(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		f := newVisibilityFixture(t, h)
		alice := h.token(api.RoleOwner, "alice")
		if res := h.get("/v1/orders/"+f.oA, alice); res.Code != http.StatusOK {
			t.Errorf("alice reads her order %s of the car she sold = %d %s, want 200", f.oA, res.Code, res.Body)
		}
		if res := h.get("/v1/orders/"+f.oA, h.token(api.RoleOwner, "bob")); res.Code != http.StatusNotFound {
			t.Errorf("bob reads alice's order %s = %d %s, want 404", f.oA, res.Code, res.Body)
		}
		var list struct {
			Orders []orderBody `json:"orders"`
		}
		res := h.get("/v1/vehicles/"+f.carA+"/orders", h.token(api.RoleOwner, "bob"))
		res.decode(t, &list)
		if ids := orderIDs(list.Orders); !slices.Equal(ids, []string{f.oB}) {
			t.Errorf("bob lists the orders of carA = %v, want only his %s", ids, f.oB)
		}
	})
}

func orderIDs(os []orderBody) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

// TestVehicleLearnsItIsNotActivated: the car asking about its own VIN
// before activation learns that it is not activated (it knows its own
// VIN, so nothing leaks): decisions say not_activated, the entitlement
// says so in its detail.
func TestVehicleLearnsItIsNotActivated(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P4000009")
		tok := h.token(api.RoleVehicle, v)
		var fb featureBody
		res := h.get("/v1/vehicles/"+v+"/features/navigation", tok)
		res.decode(t, &fb)
		if res.Code != http.StatusOK || fb.Reason != "not_activated" || fb.Allowed {
			t.Errorf("features/navigation of its own unactivated VIN = %d %s, want 200 not allowed, not_activated", res.Code, res.Body)
		}
		res = h.get("/v1/vehicles/"+v+"/entitlement", tok)
		if p := res.problem(t); res.Code != http.StatusNotFound || p.Code != "vehicle_not_found" || p.Detail != "vehicle "+v+" is not activated" {
			t.Errorf("entitlement of its own unactivated VIN = %d %s, want 404 vehicle_not_found, not activated", res.Code, res.Body)
		}
	})
}

func (h *harness) noticesOf(v, tok, query string) (int, []noticeBody) {
	h.t.Helper()
	res := h.get("/v1/vehicles/"+v+"/notices"+query, tok)
	var ns []noticeBody
	if res.Code == http.StatusOK {
		res.decode(h.t, &ns)
	}
	return res.Code, ns
}

// noticeKeys names each notice by kind, owner and order: "order.paid alice ord_...".
func noticeKeys(ns []noticeBody) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = fmt.Sprintf("%s %v", n.Kind, n.Data["owner_id"])
		if id, ok := n.Data["order_id"]; ok {
			out[i] += fmt.Sprintf(" %v", id)
		}
	}
	slices.Sort(out)
	return out
}

// TestOwnerSeesOnlyNoticesAddressedToThem: after a transfer the new owner
// sees the coverage notices created while they own the car and the money
// notices of their own orders, none of the previous owner's (not even the
// refund of her order made after the transfer); the limit counts only
// what they may see. Staff see every notice.
func TestOwnerSeesOnlyNoticesAddressedToThem(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		f := newVisibilityFixture(t, h)
		bob := h.token(api.RoleOwner, "bob")
		wantBob := []string{"coverage.expiring bob", "order.paid bob " + f.oB}
		if code, ns := h.noticesOf(f.carA, bob, ""); code != http.StatusOK || !slices.Equal(noticeKeys(ns), wantBob) {
			t.Errorf("bob's notices of carA = %d %v, want %v", code, noticeKeys(ns), wantBob)
		}
		if code, ns := h.noticesOf(f.carA, bob, "?limit=2"); code != http.StatusOK || !slices.Equal(noticeKeys(ns), wantBob) {
			t.Errorf("bob's notices of carA, limit 2 = %d %v, want %v", code, noticeKeys(ns), wantBob)
		}
		if code, ns := h.noticesOf(f.carA, bob, "?limit=1"); code != http.StatusOK || len(ns) != 1 || noticeKeys(ns)[0] != "coverage.expiring bob" {
			t.Errorf("bob's newest notice of carA = %d %v, want his coverage.expiring", code, noticeKeys(ns))
		}
		if code, ns := h.noticesOf(f.carA, h.token(api.RoleOwner, "alice"), ""); code != http.StatusNotFound {
			t.Errorf("alice's notices of the car she sold = %d %v, want 404", code, noticeKeys(ns))
		}
		wantAll := []string{"coverage.expiring alice", "coverage.expiring bob", "order.paid alice " + f.oA,
			"order.paid bob " + f.oB, "refund.issued alice " + f.oA}
		for _, role := range []api.Role{api.RoleBilling, api.RoleOps} {
			if code, ns := h.noticesOf(f.carA, h.token(role, "staff"), ""); code != http.StatusOK || !slices.Equal(noticeKeys(ns), wantAll) {
				t.Errorf("%s sees the notices of carA = %d %v, want %v", role, code, noticeKeys(ns), wantAll)
			}
		}
	})
}

// TestMoneyNoticeOfAnOrderPaidAfterTransfer: an order the previous owner
// placed and whose payment arrives after the transfer is still hers: the
// order.paid notice is addressed to her, and the new owner does not see it.
func TestMoneyNoticeOfAnOrderPaidAfterTransfer(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P4000010")
		h.activate(v, "alice", time.Date(2025, 9, 1, 10, 0, 0, 0, shanghai))
		o := h.createOrder(v, "alice", "monthly")
		transfer(t, h, v, "bob") // cancels the unpaid order; the money arrives anyway
		h.pay(o)
		ns, err := h.db.Notices(context.Background(), billing.VIN(v), 10)
		if err != nil || len(ns) != 1 || ns[0].Kind != billing.NoticeOrderPaid || ns[0].OwnerID != "alice" {
			t.Fatalf("notices of %s = %+v, %v; want one order.paid addressed to alice", v, ns, err)
		}
		if code, got := h.noticesOf(v, h.token(api.RoleOwner, "bob"), ""); code != http.StatusOK || len(got) != 0 {
			t.Errorf("bob's notices = %d %v, want none", code, noticeKeys(got))
		}
	})
}

// snapshotRecorder is a Store that records, for every Snapshot, whether
// the request was marked as turning on who owns the car.
type snapshotRecorder struct {
	api.Store
	mu      sync.Mutex
	checked []bool
}

func (r *snapshotRecorder) Snapshot(ctx context.Context, vin billing.VIN, cycle billing.Cycle) (billing.Snapshot, error) {
	r.mu.Lock()
	r.checked = append(r.checked, billing.OwnershipChecked(ctx))
	r.mu.Unlock()
	return r.Store.Snapshot(ctx, vin, cycle)
}

func (r *snapshotRecorder) take() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.checked
	r.checked = nil
	return out
}

// TestOwnerReadsAreOwnershipChecked: an owner's entitlement read,
// feature check and certificate ask the store for the car's snapshot marked by
// billing.WithOwnershipCheck, so that a store whose cache may lag another
// replica's transfer reads the owner from the database; the car's own
// reads and staff's are not marked and may be answered from the cache.
func TestOwnerReadsAreOwnershipChecked(t *testing.T) {
	rec := &snapshotRecorder{}
	h := newHarness(t, "sqlite", withCertificates(t, newSigningKey(t)), func(o *api.Options) { rec.Store = o.Store; o.Store = rec })
	car := vin("LSVAX4E10P5000001")
	h.activate(car, "alice", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	for _, tc := range []struct {
		who   string
		token string
		want  bool
	}{
		{"owner", h.token(api.RoleOwner, "alice"), true},
		{"car", h.token(api.RoleVehicle, car), false},
		{"ops", h.token(api.RoleOps, "ops-1"), false},
	} {
		rec.take()
		for _, path := range []string{"/entitlement", "/features/music_streaming", "/certificate"} {
			if res := h.get("/v1/vehicles/"+car+path, tc.token); res.Code != http.StatusOK {
				t.Fatalf("%s GET %s = %d %s", tc.who, path, res.Code, res.Body)
			}
		}
		got := rec.take()
		if len(got) != 3 || slices.ContainsFunc(got, func(c bool) bool { return c != tc.want }) {
			t.Errorf("%s's reads: snapshots ownership-checked %v, want three, each %v", tc.who, got, tc.want)
		}
	}
}
