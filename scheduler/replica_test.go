package scheduler_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store"
	"entitlements/store/storetest"

	"github.com/prometheus/client_golang/prometheus"
)

// Two scheduler instances on one database (two replicas) create each
// notice once and send it once.
func TestTwoReplicasNotifyOncePerStage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		const cars = 8
		for i := range cars {
			activateEndingAt(t, a, vinN(200+i), "owner", t0.Add(5*24*time.Hour), t0)                       // stage 7 due
			activateEndingAt(t, a, vinN(300+i), "owner", t0.Add(-24*time.Hour), t0.Add(-400*24*time.Hour)) // lapsed yesterday
		}
		rcv := newReceiver(t, always(http.StatusOK))
		rcv.delay = 5 * time.Millisecond
		replica := func(db *store.DB) *scheduler.Scheduler {
			d := newDeliver(t, db, rcv.srv.URL, func(o *scheduler.DeliverOptions) { o.Parallel = 2 })
			return newScheduler(t, prometheus.NewRegistry(), func() time.Time { return t0 },
				scheduler.Entry{Name: "expire", Spec: "@every 1s", Job: scheduler.Expire{Store: db, MaxAge: maxAge, Location: shanghai, Batch: 3}},
				scheduler.Entry{Name: "remind", Spec: "@every 1s", Job: scheduler.Remind{Store: db, Stages: stages, Location: shanghai, Batch: 3}},
				scheduler.Entry{Name: "deliver", Spec: "@every 1s", Job: d},
			)
		}
		ra, rb := replica(a), replica(b)
		ra.Start()
		rb.Start()
		deadline := time.Now().Add(15 * time.Second)
		for len(rcv.deliveries()) < 2*cars && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(2200 * time.Millisecond) // more ticks of both replicas
		stop(t, ra)
		stop(t, rb)

		perID := map[string]int{}
		for _, d := range rcv.deliveries() {
			perID[d.ID]++
		}
		for i := range cars {
			for _, c := range []struct {
				vin  billing.VIN
				kind billing.NoticeKind
			}{{vinN(200 + i), billing.NoticeExpiring}, {vinN(300 + i), billing.NoticeExpired}} {
				ns := listNotices(t, a, c.vin)
				if len(ns) != 1 || ns[0].Kind != c.kind {
					t.Errorf("%s: notices %+v, want one %s", c.vin, ns, c.kind)
					continue
				}
				if ns[0].Status != billing.NoticeSent || perID[ns[0].ID] != 1 {
					t.Errorf("%s: %s, sent %d times; want sent once", c.vin, ns[0].Status, perID[ns[0].ID])
				}
			}
		}
		if len(perID) != 2*cars {
			t.Errorf("receiver got %d distinct notices, want %d", len(perID), 2*cars)
		}
	})
}

// fakeOrders stands in for the orders store (built elsewhere): it records
// calls and how many run at once.
type fakeOrders struct {
	mu      sync.Mutex // protects calls
	calls   []time.Time
	ttl     time.Duration
	running atomic.Int32
	most    atomic.Int32
}

func (f *fakeOrders) CancelStaleOrders(_ context.Context, now time.Time, ttl time.Duration) (int, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
	f.mu.Lock()
	f.calls, f.ttl = append(f.calls, now), ttl
	f.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	return 2, nil
}

func TestCancelUnpaidCallsTheOrdersStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		orders := &fakeOrders{}
		var wg sync.WaitGroup
		for i := range 6 {
			lock := a
			if i%2 == 1 {
				lock = b
			}
			wg.Go(func() { runJob(t, scheduler.CancelUnpaid{Orders: orders, Lock: lock, TTL: 30 * time.Minute}, t0) })
		}
		wg.Wait()
		orders.mu.Lock()
		defer orders.mu.Unlock()
		if len(orders.calls) == 0 || !orders.calls[0].Equal(t0) || orders.ttl != 30*time.Minute {
			t.Fatalf("calls = %v with ttl %s, want at t0 with 30m", orders.calls, orders.ttl)
		}
		// On PostgreSQL the advisory lock lets one replica in at a time;
		// the others skip. On SQLite the orders store's own write
		// transaction serialises (the fake has none, so nothing to check).
		if dialect == store.Postgres && (orders.most.Load() != 1 || len(orders.calls) == 6) {
			t.Errorf("%d calls, at most %d at once; want one at a time and some skipped", len(orders.calls), orders.most.Load())
		}
	})
}
