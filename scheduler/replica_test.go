package scheduler_test

import (
	"context"
	"net/http"
	"sync"
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
		var regs []*prometheus.Registry
		replica := func(db *store.DB) *scheduler.Scheduler {
			d := newDeliver(t, db, rcv.srv.URL, func(o *scheduler.DeliverOptions) { o.Parallel = 2 })
			reg := prometheus.NewRegistry()
			regs = append(regs, reg)
			return newScheduler(t, reg, func() time.Time { return t0 },
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
		// Two more completed runs of every job in both replicas, as their
		// metrics count them: nothing new may be sent.
		for _, reg := range regs {
			for _, job := range []string{"expire", "remind", "deliver"} {
				want := counterValue(t, reg, "scheduler_job_runs_total", job) + 2
				for i := 0; counterValue(t, reg, "scheduler_job_runs_total", job) < want; i++ {
					if i == 600 {
						t.Fatalf("job %s did not run twice more", job)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
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

// TestTwoReplicasCancelUnpaidOrdersOnce runs the job from two replicas at
// once over real orders: every stale order is cancelled, once, and the
// fresh one is left alone.
func TestTwoReplicasCancelUnpaidOrdersOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		ctx := context.Background()
		const stale = 10
		product := billing.Product{Code: "monthly", Name: "m", PriceFen: 1990, Days: 31}
		render := func(o billing.Order) (int, []byte, error) { return 201, []byte(o.ID), nil }
		for i := 0; i <= stale; i++ {
			created := t0.Add(-2 * time.Hour)
			if i == stale {
				created = t0.Add(-time.Minute) // still payable
			}
			vin := vinN(i)
			activateEndingAt(t, a, vin, "o1", t0.Add(30*24*time.Hour), created)
			o := billing.NewOrder(vin, "o1", product, created, time.Hour)
			if _, err := a.CreateOrder(ctx, o, billing.IdempotencyKey{Scope: "o1", Key: string(vin), RequestHash: "h"}, render); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i := range 6 {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Go(func() { runJob(t, scheduler.CancelUnpaid{Orders: db, TTL: 30 * time.Minute}, t0) })
		}
		wg.Wait()
		var cancelled, pending int
		storetest.Query(a, &cancelled, `SELECT COUNT(*) FROM orders WHERE status = 'cancelled'`)
		storetest.Query(a, &pending, `SELECT COUNT(*) FROM orders WHERE status = 'pending'`)
		if cancelled != stale || pending != 1 {
			t.Errorf("%d orders cancelled, %d pending; want %d and 1", cancelled, pending, stale)
		}
	})
}

// Two schedulers on one database, each claiming ticks as its replica,
// run each tick of a job once between them, start-up run included, and
// count the ticks they skipped.
func TestTwoReplicasRunEachTickOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		var mu sync.Mutex
		runs := map[string][]string{} // second → replicas that ran in it
		var regs []*prometheus.Registry
		replica := func(db *store.DB, name string) *scheduler.Scheduler {
			reg := prometheus.NewRegistry()
			regs = append(regs, reg)
			s, err := scheduler.New(scheduler.Options{Location: shanghai, Registerer: reg, Runs: db, Replica: name,
				Entries: []scheduler.Entry{{Name: "count", Spec: "@every 1s", Job: scheduler.JobFunc(func(_ context.Context, now time.Time) error {
					mu.Lock()
					defer mu.Unlock()
					sec := now.Truncate(time.Second).Format("15:04:05")
					runs[sec] = append(runs[sec], name)
					return nil
				})}}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		ra, rb := replica(a, "a"), replica(b, "b")
		ra.Start()
		rb.Start()
		// Wait for the start-up run and two ticks, and for a tick both
		// replicas fired (the one that lost the claim counts it skipped):
		// read from the runs and the metrics, not guessed from the clock.
		ran := func() int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, by := range runs {
				n += len(by)
			}
			return n
		}
		skippedYet := func() bool {
			for _, reg := range regs {
				if sumCounter(t, reg, "scheduler_job_skipped_total") > 0 {
					return true
				}
			}
			return false
		}
		deadline := time.Now().Add(30 * time.Second)
		for (ran() < 3 || !skippedYet()) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stop(t, ra)
		stop(t, rb)

		mu.Lock()
		defer mu.Unlock()
		total := 0
		for sec, by := range runs {
			total += len(by)
			if len(by) > 1 {
				t.Errorf("second %s ran in %v, want one replica", sec, by)
			}
		}
		var claimed int
		storetest.Query(a, &claimed, `SELECT COUNT(*) FROM job_runs WHERE job = 'count'`)
		if total < 3 || claimed != total {
			t.Errorf("%d runs, %d ticks claimed; want at least 3, one claim a run", total, claimed)
		}
		var fired, skipped float64
		for _, reg := range regs {
			fired += counterValue(t, reg, "scheduler_job_runs_total", "count")
			skipped += counterValue(t, reg, "scheduler_job_skipped_total", "count")
		}
		if fired-skipped != float64(total) || skipped == 0 {
			t.Errorf("metrics: %v runs, %v skipped; want %d run and some skipped", fired, skipped, total)
		}
	})
}

// sumCounter adds up every series of the counter name in g (0 before any
// is created).
func sumCounter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
