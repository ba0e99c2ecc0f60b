package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// replicaLoadDuration is how long TestThreeReplicasUnderMixedLoad drives
// its workload.
const replicaLoadDuration = 60 * time.Second

// Three service processes on one PostgreSQL schema, every job on and
// ticking each second, under a mixed workload spread over them for
// replicaLoadDuration: activations, ownership transfers, orders (some
// retried at once on another replica), signed payment notifications sent
// twice at once to two replicas, refunds racing on one order from all
// three, usage batches that overlap sent at once to two replicas, and
// reads. Afterwards the database holds every acknowledged write once,
// nothing is counted twice, every notice was created once and delivered,
// and each job tick ran in one replica at most.
func TestThreeReplicasUnderMixedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the service binary")
	}
	cfg := storetest.Config(t, store.Postgres) // a schema of its own; skips, saying so, without a server
	bin := serviceBinary(t)
	loc, _ := time.LoadLocation("Asia/Shanghai")
	const seeded = 10
	seedCrashFleet(t, cfg, loc, seeded)

	key := []byte("replica-load-key-0123456789abcd!")
	rcv := &crashReceiver{key: key, perID: map[string]int{}}
	hook := newLocalServer(t, rcv)
	conf := replicaConfig(t)
	addrs, pids := startReplicas(t, bin, conf, cfg.DSN, 3,
		"ENTITLEMENTS_LOG_LEVEL=warn",
		"ENTITLEMENTS_SCHEDULER_EXPIRE=@every 1s",
		"ENTITLEMENTS_SCHEDULER_REMIND=@every 1s",
		"ENTITLEMENTS_SCHEDULER_DELIVER=@every 1s",
		"ENTITLEMENTS_SCHEDULER_CANCEL_UNPAID=@every 1s",
		"ENTITLEMENTS_SCHEDULER_PRUNE=@every 1s",
		"ENTITLEMENTS_NOTICES_WEBHOOK_URL="+hook,
		"ENTITLEMENTS_NOTICES_WEBHOOK_SECRET=whsec_"+base64.StdEncoding.EncodeToString(key),
	)

	l := newLoad(t, addrs, loc)
	start := time.Now()
	l.run(replicaLoadDuration)
	t.Logf("workload: %d requests in %v (%s)", l.requests.Load(), time.Since(start).Round(time.Second), l.summary())

	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Every notice, of the seeded fleet and of the workload, sent.
	unsent := func() (n int64) {
		storetest.Query(db, &n, `SELECT COUNT(*) FROM notices WHERE status <> 'sent'`)
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for unsent() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	l.checkWrites(db)
	l.checkCachedReads(db)
	l.checkNotices(db, rcv, seeded)
	host, _ := os.Hostname()
	var names []string
	for _, pid := range pids {
		names = append(names, fmt.Sprintf("%s/%d", host, pid))
	}
	l.checkJobRuns(db, names, start.Add(2*time.Second), start.Add(replicaLoadDuration))
}

// replicaConfig writes the shipped config.yaml with a short unpaid-order
// TTL, so that the cancel_unpaid job cancels orders during the run and
// late payments race with it, and the snapshot cache on, so that the
// replicas' invalidations of each other's caches run under the load.
func replicaConfig(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(raw), "orders: {unpaid_ttl: 30m}", "orders: {unpaid_ttl: 15s}", 1)
	conf = strings.Replace(conf, "database: {driver: sqlite, dsn: data/entitlements.db}",
		"database: {driver: sqlite, dsn: data/entitlements.db, snapshot_cache: 65536}", 1)
	if !strings.Contains(conf, "unpaid_ttl: 15s") || !strings.Contains(conf, "snapshot_cache: 65536}") {
		t.Fatalf("config.yaml changed: update replicaConfig's edit of it")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load drives the workload and keeps the ledger of what the replicas
// acknowledged.
type load struct {
	t       *testing.T
	addrs   []string
	loc     *time.Location
	client  *http.Client
	billing string // token
	ops     string
	carrier string

	requests atomic.Int64
	nextVIN  atomic.Int64
	nextID   atomic.Int64

	mu         sync.Mutex             // protects the fields below
	vins       []string               // acknowledged activations, in order
	owners     map[string]string      // vin → owner_id
	moving     map[string]bool        // vins whose transfer is in flight
	trial      map[string]bool        // vins activated an hour ago: in their trial, usage goes to them
	orders     map[string]ackOrder    // acknowledged orders by id
	unpaid     []ackOrder             // orders left to be paid late
	paid       []ackOrder             // paid orders not yet refunded
	events     map[string]string      // acknowledged payment event_id → order id
	refunds    map[string]ackRefund   // acknowledged refunds by order id
	usage      map[string]usageRecord // acknowledged usage records by id
	statuses   map[string]map[int]int // scenario → status → count
	unexpected []string               // responses that broke a rule
}

type ackOrder struct {
	ID, VIN, Owner string
	AmountFen      int64
	Created        time.Time
	Paid           bool
}

type ackRefund struct {
	ID        string
	AmountFen int64
}

type usageRecord struct {
	ID        string `json:"id"`
	VIN       string `json:"vin"`
	Category  string `json:"category"`
	Bytes     int64  `json:"bytes"`
	StartedAt string `json:"started_at"`
	EndedAt   string `json:"ended_at"`
}

func newLoad(t *testing.T, addrs []string, loc *time.Location) *load {
	mint := func(role api.Role, sub string) string {
		tok, err := api.MintToken([]byte("dev-only"), role, sub, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return &load{
		t: t, addrs: addrs, loc: loc,
		client:  &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		billing: mint(api.RoleBilling, "billing-1"), ops: mint(api.RoleOps, "delivery"), carrier: mint(api.RoleCarrier, "carrier-1"),
		owners: map[string]string{}, moving: map[string]bool{}, trial: map[string]bool{}, orders: map[string]ackOrder{}, events: map[string]string{},
		refunds: map[string]ackRefund{}, usage: map[string]usageRecord{}, statuses: map[string]map[int]int{},
	}
}

// run drives the workload for d: one goroutine per kind of work, each
// pausing between its steps so that the three replicas see a few hundred
// requests a second between them.
func (l *load) run(d time.Duration) {
	end := time.Now().Add(d)
	workers := []struct {
		pause time.Duration
		step  func(r *rand.Rand)
	}{
		{50 * time.Millisecond, l.activate},
		{25 * time.Millisecond, l.orderAndPay},
		{25 * time.Millisecond, l.orderAndPay},
		{250 * time.Millisecond, l.payLate},
		{100 * time.Millisecond, l.transfer},
		{40 * time.Millisecond, l.refundRace},
		{60 * time.Millisecond, l.usageBatches},
		{20 * time.Millisecond, l.read},
		{20 * time.Millisecond, l.read},
	}
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for time.Now().Before(end) {
				w.step(r)
				time.Sleep(w.pause)
			}
		})
	}
	wg.Wait()
}

// call sends one request to replica i (mod 3) and returns its status and
// body. A transport error counts as status 0.
func (l *load) call(i int, method, path, token string, body []byte, header map[string]string) (int, []byte) {
	req, err := http.NewRequest(method, "http://"+l.addrs[i%len(l.addrs)]+path, bytes.NewReader(body))
	if err != nil {
		l.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	l.requests.Add(1)
	res, err := l.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// note counts a response of a scenario, and records it as unexpected when
// its status is not one of want.
func (l *load) note(scenario string, status int, body []byte, want ...int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statuses[scenario] == nil {
		l.statuses[scenario] = map[int]int{}
	}
	l.statuses[scenario][status]++
	for _, w := range want {
		if status == w {
			return true
		}
	}
	if len(l.unexpected) < 50 {
		l.unexpected = append(l.unexpected, fmt.Sprintf("%s: %d %s", scenario, status, body))
	}
	return false
}

func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range []string{"activate", "transfer", "order", "order replay", "pay", "pay again", "pay late", "refund", "usage", "read"} {
		fmt.Fprintf(&b, "%s %v; ", s, l.statuses[s])
	}
	return b.String()
}

// pick returns a random acknowledged vehicle (trialOnly: one in its
// trial), or "" when there is none yet.
func (l *load) pick(r *rand.Rand, trialOnly bool) (vin, owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range 10 {
		if len(l.vins) == 0 {
			return "", ""
		}
		v := l.vins[r.IntN(len(l.vins))]
		if !trialOnly || l.trial[v] {
			return v, l.owners[v]
		}
	}
	return "", ""
}

// activate activates a new car, half of the time through two replicas at
// once with the same body (201 from one, 200 from the other). Every other
// car's trial ended five days ago, so its paid periods start now and the
// expire job has work; the others are in their trial.
func (l *load) activate(r *rand.Rand) {
	n := l.nextVIN.Add(1)
	vin := billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10R%07d", n))
	owner := fmt.Sprintf("owner-%d", n)
	at := time.Now().Add(-time.Hour)
	inTrial := n%2 == 0
	if !inTrial {
		at = billing.AddMonthsClamped(time.Now().Add(-5*24*time.Hour), -12, l.loc).Add(time.Hour)
	}
	body := fmt.Appendf(nil, `{"activated_at":%q,"owner_id":%q,"model":"SU7"}`, at.Format(time.RFC3339), owner)
	first := r.IntN(3)
	sends := 1 + r.IntN(2)
	acked := make([]bool, sends)
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			code, out := l.call(first+i, "POST", "/v1/vehicles/"+vin+"/activation", l.ops, body, nil)
			acked[i] = l.note("activate", code, out, http.StatusCreated, http.StatusOK)
		})
	}
	wg.Wait()
	if !slices.Contains(acked, true) {
		return
	}
	l.mu.Lock()
	l.vins = append(l.vins, vin)
	l.owners[vin] = owner
	l.trial[vin] = inTrial
	l.mu.Unlock()
}

// orderAndPay has an owner order a package, sometimes sending the request
// again with its Idempotency-Key to another replica, then pays four orders
// in five with one notification sent to two replicas at once, now and
// then followed by a second successful payment of the same order under
// another event_id. A read on a third replica must show the new period.
func (l *load) orderAndPay(r *rand.Rand) {
	vin, owner := l.pick(r, false)
	if vin == "" {
		return
	}
	tok, _ := api.MintToken([]byte("dev-only"), api.RoleOwner, owner, time.Hour, time.Now())
	product := []string{"monthly", "yearly"}[r.IntN(2)]
	body := fmt.Appendf(nil, `{"product":%q}`, product)
	idem := map[string]string{"Idempotency-Key": fmt.Sprintf("order-%d", l.nextID.Add(1))}
	first := r.IntN(3)
	var code int
	var out []byte
	if r.IntN(4) == 0 {
		// A client retrying at once on another replica: both answers are
		// the one order.
		var codes [2]int
		var outs [2][]byte
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { codes[i], outs[i] = l.call(first+i, "POST", "/v1/vehicles/"+vin+"/orders", tok, body, idem) })
		}
		wg.Wait()
		l.note("order replay", codes[1], outs[1], l.ownerStatuses(vin, owner, http.StatusCreated)...)
		if codes[0] == http.StatusCreated && codes[1] == http.StatusCreated && !bytes.Equal(outs[0], outs[1]) {
			l.recordUnexpected(fmt.Sprintf("one order request sent at once to two replicas: %s and %s", outs[0], outs[1]))
		}
		code, out = codes[0], outs[0]
		if code != http.StatusCreated {
			code, out = codes[1], outs[1]
		}
	} else {
		code, out = l.call(first, "POST", "/v1/vehicles/"+vin+"/orders", tok, body, idem)
	}
	if !l.note("order", code, out, l.ownerStatuses(vin, owner, http.StatusCreated)...) || code != http.StatusCreated {
		return
	}
	var o struct {
		ID        string `json:"id"`
		AmountFen int64  `json:"amount_fen"`
	}
	if err := json.Unmarshal(out, &o); err != nil {
		l.t.Errorf("order response %s: %v", out, err)
		return
	}
	ack := ackOrder{ID: o.ID, VIN: vin, Owner: owner, AmountFen: o.AmountFen, Created: time.Now()}
	l.mu.Lock()
	l.orders[o.ID] = ack
	l.mu.Unlock()
	if r.IntN(4) == 0 {
		code, again := l.call(first+1, "POST", "/v1/vehicles/"+vin+"/orders", tok, body, idem)
		// A transfer may have taken the car from this owner since: then the
		// replay is the stranger's 404, like any request of theirs.
		if l.note("order replay", code, again, l.ownerStatuses(vin, owner, http.StatusCreated)...) && code == http.StatusCreated && !bytes.Equal(again, out) {
			l.recordUnexpected(fmt.Sprintf("order replay on another replica: %s, first %s", again, out))
		}
	}
	if r.IntN(5) == 0 {
		l.mu.Lock()
		l.unpaid = append(l.unpaid, ack)
		l.mu.Unlock()
		return
	}
	if !l.pay(r, first+1, ack, "evt-"+o.ID, "pay") {
		return
	}
	if r.IntN(5) == 0 {
		l.pay(r, first+2, ack, "evt2-"+o.ID, "pay again")
	}
	// Another replica's snapshot cache learns of the payment by its
	// notification, about a millisecond after the commit: it may answer
	// from the snapshot before it until then, never after.
	read := func() (int, []byte) {
		return l.call(first+2, "GET", "/v1/vehicles/"+vin+"/entitlement", l.ops, nil, nil)
	}
	code, view := read()
	for try := 0; try < 20 && code == http.StatusOK && !bytes.Contains(view, []byte(`"order_id":"`+o.ID+`"`)); try++ {
		time.Sleep(5 * time.Millisecond)
		code, view = read()
	}
	if l.note("read", code, view, http.StatusOK) && !bytes.Contains(view, []byte(`"order_id":"`+o.ID+`"`)) {
		l.recordUnexpected(fmt.Sprintf("order %s paid, but a read on another replica shows no period of it 100 ms later: %s", o.ID, view))
	}
	ack.Paid = true
	l.mu.Lock()
	l.orders[o.ID] = ack
	l.paid = append(l.paid, ack)
	l.mu.Unlock()
}

// pay sends one signed notification to replicas first and first+1 at once.
// It reports whether either acknowledged it.
func (l *load) pay(r *rand.Rand, first int, o ackOrder, event, scenario string) bool {
	note, _ := json.Marshal(map[string]any{
		"event_id": event, "order_id": o.ID, "status": "succeeded",
		"amount_fen": o.AmountFen, "currency": "CNY",
		"paid_at": time.Now().UTC().Format(time.RFC3339), "transaction_id": "tx-" + event,
	})
	sig := map[string]string{"Payment-Signature": billing.SignPayment([]byte("dev-only"), note, time.Now())}
	acked := make([]bool, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			code, out := l.call(first+i, "POST", "/v1/payments/notifications", "", note, sig)
			acked[i] = l.note(scenario, code, out, http.StatusOK)
		})
	}
	wg.Wait()
	if !slices.Contains(acked, true) {
		return false
	}
	l.mu.Lock()
	l.events[event] = o.ID
	l.mu.Unlock()
	return true
}

// payLate pays orders left unpaid for longer than orders.unpaid_ttl, which
// the cancel_unpaid job may have cancelled meanwhile: the money was taken,
// so the order becomes paid all the same.
func (l *load) payLate(r *rand.Rand) {
	l.mu.Lock()
	var due []ackOrder
	keep := l.unpaid[:0]
	for _, o := range l.unpaid {
		if time.Since(o.Created) > 17*time.Second && r.IntN(2) == 0 {
			due = append(due, o)
		} else {
			keep = append(keep, o)
		}
	}
	l.unpaid = keep
	l.mu.Unlock()
	for _, o := range due {
		if l.pay(r, r.IntN(3), o, "evt-"+o.ID, "pay late") {
			o.Paid = true
			l.mu.Lock()
			l.orders[o.ID] = o
			l.paid = append(l.paid, o)
			l.mu.Unlock()
		}
	}
}

// refundRace sends three refunds of one paid order, each with its own
// Idempotency-Key (now and then two with one key: a retry), to the three
// replicas at once: what is unused, or (a goodwill refund) the whole
// amount. Exactly one refund is made; the others are a clean 4xx (or, for
// the retry, the same answer).
func (l *load) refundRace(r *rand.Rand) {
	l.mu.Lock()
	if len(l.paid) == 0 {
		l.mu.Unlock()
		return
	}
	i := r.IntN(len(l.paid))
	o := l.paid[i]
	l.paid = append(l.paid[:i], l.paid[i+1:]...)
	l.mu.Unlock()
	body := []byte(`{"reason":"requested_by_customer","note":"race"}`)
	if r.IntN(2) == 0 {
		body = fmt.Appendf(nil, `{"reason":"service_issue","amount_fen":%d}`, o.AmountFen)
	}
	type result struct {
		code int
		out  []byte
	}
	var results [3]result
	retry := r.IntN(3) == 0 // the first two are one request, retried at once on another replica
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			k := i
			if retry && k == 1 {
				k = 0
			}
			idem := map[string]string{"Idempotency-Key": fmt.Sprintf("refund-%s-%d", o.ID, k)}
			code, out := l.call(i, "POST", "/v1/orders/"+o.ID+"/refunds", l.billing, body, idem)
			results[i] = result{code, out}
		})
	}
	wg.Wait()
	won := map[string]bool{}
	for _, res := range results {
		switch {
		case res.code == http.StatusCreated:
			var v struct {
				ID        string `json:"id"`
				AmountFen int64  `json:"amount_fen"`
			}
			json.Unmarshal(res.out, &v)
			won[v.ID] = true
			l.mu.Lock()
			l.refunds[o.ID] = ackRefund{ID: v.ID, AmountFen: v.AmountFen}
			l.mu.Unlock()
			l.note("refund", res.code, res.out, http.StatusCreated)
		case res.code == http.StatusConflict || res.code == http.StatusUnprocessableEntity:
			if !bytes.Contains(res.out, []byte(`"code":"`)) {
				l.recordUnexpected(fmt.Sprintf("refund refused without a problem code: %s", res.out))
			}
			l.note("refund", res.code, res.out, res.code)
		default:
			l.note("refund", res.code, res.out, http.StatusCreated, http.StatusConflict, http.StatusUnprocessableEntity)
		}
	}
	if len(won) != 1 {
		l.recordUnexpected(fmt.Sprintf("%d refunds of order %s made by 3 racing requests, want 1: %v", len(won), o.ID, results))
	}
}

// usageBatches sends two batches that share some records to two replicas
// at once, now and then a batch sent before again, for cars in their
// trial. Records are large, so some cars cross the quota thresholds.
func (l *load) usageBatches(r *rand.Rand) {
	started := time.Now().Add(-2 * time.Hour).UTC()
	recs := make([]usageRecord, 8)
	for i := range recs {
		vin, _ := l.pick(r, true)
		if vin == "" {
			return
		}
		cat := "entertainment"
		if i%4 == 3 {
			cat = "basic"
		}
		recs[i] = usageRecord{ID: fmt.Sprintf("u-%d", l.nextID.Add(1)), VIN: vin, Category: cat,
			Bytes: (1 + r.Int64N(1024)) << 20, StartedAt: started.Format(time.RFC3339), EndedAt: started.Add(10 * time.Minute).Format(time.RFC3339)}
	}
	batches := [][]usageRecord{recs[:6], recs[3:]}
	first := r.IntN(3)
	type result struct {
		Accepted   int               `json:"accepted"`
		Duplicates int               `json:"duplicates"`
		Rejected   []json.RawMessage `json:"rejected"`
	}
	var results [2]result
	var acked [2]bool
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{"records": b})
			code, out := l.call(first+i, "POST", "/v1/usage", l.carrier, body, nil)
			if acked[i] = l.note("usage", code, out, http.StatusOK); acked[i] {
				json.Unmarshal(out, &results[i])
				if len(results[i].Rejected) > 0 {
					l.recordUnexpected(fmt.Sprintf("usage batch rejected records: %s", out))
				}
			}
		})
	}
	wg.Wait()
	if acked[0] && acked[1] {
		// Six and five records, three of them in both: eight distinct.
		if got := results[0].Accepted + results[1].Accepted; got != len(recs) {
			l.recordUnexpected(fmt.Sprintf("two overlapping batches accepted %d records (%+v), want %d", got, results, len(recs)))
		}
	}
	l.mu.Lock()
	for i, b := range batches {
		if acked[i] {
			for _, rec := range b {
				l.usage[rec.ID] = rec
			}
		}
	}
	l.mu.Unlock()
	if r.IntN(4) == 0 && acked[0] {
		body, _ := json.Marshal(map[string]any{"records": batches[0]})
		code, out := l.call(first+2, "POST", "/v1/usage", l.carrier, body, nil)
		var res result
		if l.note("usage", code, out, http.StatusOK) && json.Unmarshal(out, &res) == nil && res.Accepted != 0 {
			l.recordUnexpected(fmt.Sprintf("a batch sent again accepted %d records: %s", res.Accepted, out))
		}
	}
}

// read asks for an entitlement or a feature, as the car, its owner or
// staff would.
func (l *load) read(r *rand.Rand) {
	vin, owner := l.pick(r, false)
	if vin == "" {
		return
	}
	var tok string
	switch r.IntN(3) {
	case 0:
		tok, _ = api.MintToken([]byte("dev-only"), api.RoleVehicle, vin, time.Hour, time.Now())
	case 1:
		tok, _ = api.MintToken([]byte("dev-only"), api.RoleOwner, owner, time.Hour, time.Now())
	default:
		tok = l.ops
	}
	path := "/v1/vehicles/" + vin + "/entitlement"
	if r.IntN(2) == 0 {
		path = "/v1/vehicles/" + vin + "/features/" + []string{"navigation", "music_streaming", "karaoke"}[r.IntN(3)]
	}
	code, out := l.call(r.IntN(3), "GET", path, tok, nil, nil)
	if tok == l.ops {
		l.note("read", code, out, http.StatusOK)
		return
	}
	// No lag here, unlike a payment's period (orderAndPay): an owner's
	// read turns on who owns the car, which every replica reads from the
	// database (billing.WithOwnershipCheck), so a transfer acknowledged by
	// one replica holds on all of them at once.
	l.note("read", code, out, l.ownerStatuses(vin, owner, http.StatusOK)...)
}

// ownerStatuses returns want, and 404 when the car changed hands since
// the request was made for owner, or is changing hands: a former owner's
// car is not theirs. Call it after the response.
func (l *load) ownerStatuses(vin, owner string, want ...int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owners[vin] != owner || l.moving[vin] {
		return append(want, http.StatusNotFound)
	}
	return want
}

// transfer hands a car to a new owner through one replica while the other
// workers order, pay and read for it: the previous owner's unpaid orders
// are cancelled, what was paid stays with the car. One worker transfers,
// so the last acknowledged owner is the car's.
//
// Right after the acknowledgement, on every replica, the former owner no
// longer sees the car and the new owner does: the replicas' snapshot
// caches learn of the transfer a moment later, but an owner's read does
// not use them.
func (l *load) transfer(r *rand.Rand) {
	vin, former := l.pick(r, false)
	if vin == "" {
		return
	}
	owner := fmt.Sprintf("owner-t%d", l.nextID.Add(1))
	l.mu.Lock()
	l.moving[vin] = true
	l.mu.Unlock()
	code, out := l.call(r.IntN(3), "PUT", "/v1/vehicles/"+vin+"/owner", l.ops, fmt.Appendf(nil, `{"owner_id":%q}`, owner), nil)
	ok := l.note("transfer", code, out, http.StatusOK)
	if ok {
		for i := range l.addrs {
			for who, want := range map[string]int{former: http.StatusNotFound, owner: http.StatusOK} {
				tok, _ := api.MintToken([]byte("dev-only"), api.RoleOwner, who, time.Hour, time.Now())
				if code, out := l.call(i, "GET", "/v1/vehicles/"+vin+"/entitlement", tok, nil, nil); code != want {
					l.recordUnexpected(fmt.Sprintf("replica %d, right after the transfer of %s from %s to %s: %s reads it %d, want %d: %s",
						i, vin, former, owner, who, code, want, out))
				}
			}
		}
	}
	l.mu.Lock()
	if ok {
		l.owners[vin] = owner
	}
	delete(l.moving, vin)
	l.mu.Unlock()
}

func (l *load) recordUnexpected(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unexpected) < 50 {
		l.unexpected = append(l.unexpected, s)
	}
}
