package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/store"
	"entitlements/store/storetest"
)

// A job's tick is claimed once, by the first replica to ask, also when
// replicas on two pools ask at once; other jobs and other ticks are free,
// and claims a week older than a new one are deleted.
func TestClaimJobRunOncePerTick(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		ctx := context.Background()
		tick := time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)
		claim := func(db *store.DB, job string, at time.Time, replica string) bool {
			t.Helper()
			ok, err := db.ClaimJobRun(ctx, job, at, replica, at.Add(3*time.Millisecond))
			if err != nil {
				t.Fatalf("ClaimJobRun(%s, %s, %s): %v", job, at, replica, err)
			}
			return ok
		}
		for _, c := range []struct {
			name    string
			db      *store.DB
			job     string
			at      time.Time
			replica string
			want    bool
		}{
			{"first claim", a, store.JobExpire, tick, "a", true},
			{"another replica, same tick", b, store.JobExpire, tick, "b", false},
			{"the same replica again", a, store.JobExpire, tick, "a", false},
			{"next tick", b, store.JobExpire, tick.Add(time.Second), "b", true},
			{"another job, same tick", b, store.JobRemind, tick, "b", true},
		} {
			if got := claim(c.db, c.job, c.at, c.replica); got != c.want {
				t.Errorf("%s: ClaimJobRun = %v, want %v", c.name, got, c.want)
			}
		}

		var won atomic.Int32
		var wg sync.WaitGroup
		race := tick.Add(time.Minute)
		for i := range 8 {
			db := []*store.DB{a, b}[i%2]
			wg.Go(func() {
				if claim(db, store.JobDeliver, race, "r") {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Errorf("8 replicas racing for one tick: %d claimed it, want 1", won.Load())
		}

		claim(a, store.JobExpire, tick.Add(store.JobRunRetention+time.Hour), "a")
		var left []time.Time
		storetest.Query(a, &left, `SELECT tick FROM job_runs WHERE job = ? ORDER BY tick`, store.JobExpire)
		if len(left) != 1 {
			t.Errorf("expire runs kept after a claim a week later: %v, want the new one only", left)
		}
		var remind int
		storetest.Query(a, &remind, `SELECT COUNT(*) FROM job_runs WHERE job = ?`, store.JobRemind)
		if remind != 1 {
			t.Errorf("%d remind runs kept, want 1: pruning one job keeps the others", remind)
		}
	})
}
