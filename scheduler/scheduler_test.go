package scheduler_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"

	"github.com/prometheus/client_golang/prometheus"
)

func newScheduler(t *testing.T, reg prometheus.Registerer, now func() time.Time, entries ...scheduler.Entry) *scheduler.Scheduler {
	t.Helper()
	s, err := scheduler.New(scheduler.Options{Entries: entries, Location: shanghai, Now: now, Registerer: reg})
	if err != nil {
		t.Fatalf("scheduler.New: %v", err)
	}
	return s
}

func stop(t *testing.T, s *scheduler.Scheduler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestSchedulerRejectsBadSchedules(t *testing.T) {
	job := scheduler.JobFunc(func(context.Context, time.Time) error { return nil })
	_, err := scheduler.New(scheduler.Options{Location: shanghai, Entries: []scheduler.Entry{
		{Name: "expire", Spec: "@every 1m", Job: job},
		{Name: "remind", Spec: "every ten minutes", Job: job},
	}})
	if err == nil || !strings.Contains(err.Error(), "remind") {
		t.Errorf("New with a bad spec = %v, want an error naming remind", err)
	}
}

// The tests below run the real cron in a synctest bubble: its timers and
// the jobs' sleeps run on the bubble's clock, which moves only when every
// goroutine of the bubble is blocked, so seconds of schedule take no time
// and the outcome does not depend on the machine's load.

// A job that panics on every run keeps being run (Recover sits inside
// SkipIfStillRunning, so the panic does not leave the job marked running),
// and every job runs once at start-up with the injected clock.
func TestSchedulerRecoversPanicsAndRunsAtStart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		var panics, runs atomic.Int32
		var seen atomic.Value
		s := newScheduler(t, reg, func() time.Time { return t0 },
			scheduler.Entry{Name: "boom", Spec: "@every 1s", Job: scheduler.JobFunc(func(context.Context, time.Time) error {
				panics.Add(1)
				panic("boom")
			})},
			scheduler.Entry{Name: "count", Spec: "@every 1h", Job: scheduler.JobFunc(func(_ context.Context, now time.Time) error {
				runs.Add(1)
				seen.Store(now)
				return nil
			})},
		)
		s.Start()
		synctest.Wait() // the start-up runs are done; cron waits for its next tick
		if runs.Load() != 1 || panics.Load() != 1 {
			t.Fatalf("at start-up: hourly job ran %d times, panicking job %d; want once each", runs.Load(), panics.Load())
		}
		if now, _ := seen.Load().(time.Time); !now.Equal(t0) {
			t.Errorf("job saw now = %s, want the injected %s", now, t0)
		}
		time.Sleep(3500 * time.Millisecond)
		stop(t, s)
		if n := panics.Load(); n != 4 {
			t.Errorf("panicking job ran %d times in 3.5 s at @every 1s, want 4 (start-up and 3 ticks)", n)
		}
		if got, want := counterValue(t, reg, "scheduler_job_failures_total", "boom"), float64(panics.Load()); got != want {
			t.Errorf("scheduler_job_failures_total{job=boom} = %v, want %v", got, want)
		}
	})
}

func TestSchedulerNeverOverlapsARun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var running, most, runs atomic.Int32
		s := newScheduler(t, nil, nil, scheduler.Entry{Name: "slow", Spec: "@every 1s",
			Job: scheduler.JobFunc(func(context.Context, time.Time) error {
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				runs.Add(1)
				time.Sleep(1500 * time.Millisecond)
				return nil
			})})
		s.Start()
		time.Sleep(3500 * time.Millisecond)
		stop(t, s)
		if most.Load() != 1 || runs.Load() < 2 {
			t.Errorf("%d runs, at most %d at once; want at least 2, never more than 1 at once", runs.Load(), most.Load())
		}
	})
}

func TestSchedulerStopWaitsThenCancels(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		grace     time.Duration
		wantErr   bool
		wantState string
	}{
		{"a run that ends within the grace period finishes", 5 * time.Second, false, "finished"},
		{"a run still going at the end of the grace period is cancelled", 200 * time.Millisecond, true, "cancelled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				state := ""
				started := make(chan struct{})
				s := newScheduler(t, nil, nil, scheduler.Entry{Name: "work", Spec: "@every 1h",
					Job: scheduler.JobFunc(func(ctx context.Context, _ time.Time) error {
						close(started)
						select {
						case <-time.After(time.Second):
							mu.Lock()
							state = "finished"
							mu.Unlock()
						case <-ctx.Done():
							mu.Lock()
							state = "cancelled"
							mu.Unlock()
						}
						return nil
					})})
				s.Start()
				<-started
				ctx, cancel := context.WithTimeout(context.Background(), c.grace)
				defer cancel()
				err := s.Stop(ctx)
				mu.Lock()
				defer mu.Unlock()
				if (err != nil) != c.wantErr || state != c.wantState {
					t.Errorf("Stop = %v with the run %q; want error %v, run %q", err, state, c.wantErr, c.wantState)
				}
			})
		})
	}
}

// counterValue reads the counter name{job=job} from g.
func counterValue(t *testing.T, g prometheus.Gatherer, name, job string) float64 {
	return metricValue(t, g, name, "job", job)
}

// metricValue reads the counter or gauge name{label=value} from g.
func metricValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}

// TestSchedulerRunsJobsAsThemselves: a job run by the scheduler acts as
// system:<its name>, which the audit trail records for what it changes.
func TestSchedulerRunsJobsAsThemselves(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var seen atomic.Value
		s := newScheduler(t, prometheus.NewRegistry(), func() time.Time { return t0 },
			scheduler.Entry{Name: "cancel_unpaid", Spec: "@every 1h", Job: scheduler.JobFunc(func(ctx context.Context, _ time.Time) error {
				a, _ := billing.ActorFrom(ctx)
				seen.Store(a.String())
				return nil
			})},
		)
		s.Start()
		synctest.Wait()
		stop(t, s)
		if got, _ := seen.Load().(string); got != "system:cancel_unpaid" {
			t.Errorf("job ran as %q, want system:cancel_unpaid", got)
		}
	})
}
