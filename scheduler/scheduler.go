package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"entitlements/billing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// Job is one background job. Run does whatever is due at now and returns;
// it is state-driven (it looks at the database, not at when it last ran),
// so the first run after downtime catches up on everything missed, and
// running it twice in a row changes nothing the second time.
type Job interface {
	Run(ctx context.Context, now time.Time) error
}

// JobFunc adapts a function to Job.
type JobFunc func(ctx context.Context, now time.Time) error

// Run calls f.
func (f JobFunc) Run(ctx context.Context, now time.Time) error { return f(ctx, now) }

// Entry is a job and its cron schedule ("@every 1m", "*/5 * * * *", ...).
type Entry struct {
	Name string // label of logs and metrics: expire, remind, deliver, cancel_unpaid
	Spec string
	Job  Job
}

// Options configure a Scheduler. Entries and Location are required.
type Options struct {
	Entries    []Entry
	Location   *time.Location        // the zone cron specs are read in
	Now        func() time.Time      // the clock handed to every run; defaults to time.Now
	Logger     *slog.Logger          // defaults to discarding
	Registerer prometheus.Registerer // job metrics; defaults to a private registry
	RunTimeout time.Duration         // bound of one run; defaults to 5 minutes

	// Runs, when set, decides which replica runs each tick: before a run
	// the scheduler claims the job's tick as Replica, and skips the tick
	// when another replica has claimed it. Without it every tick runs.
	Runs    RunClaimer
	Replica string // this process, as the claims record it
}

// RunClaimer records which replica runs each tick of a job (store.DB does,
// in its job_runs table). ClaimJobRun returns false when the tick was
// claimed already; it must be safe for replicas to call at once.
type RunClaimer interface {
	ClaimJobRun(ctx context.Context, job string, tick time.Time, replica string, now time.Time) (bool, error)
}

// Scheduler runs jobs on their cron schedules. Each run is wrapped so that
// a run never overlaps the previous one of the same job
// (SkipIfStillRunning) and a panic is recovered and logged (Recover). The
// order matters: Recover is inside SkipIfStillRunning, otherwise a panic
// would skip the "done" signal and the job would be skipped forever.
type Scheduler struct {
	cron    *cron.Cron
	entries []Entry
	wrapped []cron.Job // entries' jobs wrapped by the chain, in order
	now     func() time.Time
	log     *slog.Logger
	metrics *jobMetrics
	timeout time.Duration
	runs    RunClaimer
	replica string

	ctx    context.Context // parent of every run; cancelled when Stop gives up waiting
	cancel context.CancelFunc

	mu      sync.Mutex     // protects stopped and running's Add
	stopped bool           // no run starts once set
	running sync.WaitGroup // runs in progress, scheduled or at start-up
}

// New validates the schedules and builds the scheduler; Start runs it.
func New(o Options) (*Scheduler, error) {
	if o.Location == nil {
		return nil, errors.New("scheduler: a time zone is required")
	}
	s := &Scheduler{now: o.Now, log: o.Logger, timeout: o.RunTimeout, entries: o.Entries, runs: o.Runs, replica: o.Replica}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.timeout <= 0 {
		s.timeout = 5 * time.Minute
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	m, err := newJobMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.ctx, s.cancel = context.WithCancel(context.Background())
	clog := cronLogger{s.log}
	s.cron = cron.New(
		cron.WithLocation(o.Location),
		cron.WithLogger(clog),
		cron.WithChain(cron.SkipIfStillRunning(clog), cron.Recover(clog)),
	)
	var errs []error
	for _, e := range o.Entries {
		if e.Job == nil {
			errs = append(errs, fmt.Errorf("scheduler: job %s is nil", e.Name))
			continue
		}
		sched, err := parseSchedule(e.Spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("scheduler: job %s: schedule %q: %w", e.Name, e.Spec, err))
			continue
		}
		// Every job's counters exist from the start at zero, so that a
		// replica that has not yet skipped or failed a run exports the
		// series (an alert on a rate needs it; an absent one reads as "no
		// data", not as zero).
		s.metrics.runs.WithLabelValues(e.Name)
		s.metrics.skipped.WithLabelValues(e.Name)
		s.metrics.failures.WithLabelValues(e.Name)
		var id cron.EntryID // set below, before any run
		id = s.cron.Schedule(sched, s.job(e, func() time.Time { return s.cron.Entry(id).Prev }))
		s.wrapped = append(s.wrapped, s.cron.Entry(id).WrappedJob)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the schedules and runs every job once now, one after the
// other in the order of Options.Entries, in the background, so that work
// missed while the service was down is done at once. A start-up run goes
// through the same wrappers as scheduled ones: a tick that comes while it
// is still running is skipped.
func (s *Scheduler) Start() {
	s.cron.Start()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.running.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.running.Done()
		for _, j := range s.wrapped {
			if s.ctx.Err() != nil {
				return
			}
			j.Run()
		}
	}()
}

// Stop stops scheduling and waits for the runs in progress. When ctx ends
// first, the runs' context is cancelled (a delivery in flight is abandoned
// and retried later: delivery is at least once) and Stop waits for them to
// return before reporting ctx's error. Call it before closing the database.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cron.Stop()
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	<-done
	return fmt.Errorf("scheduler: jobs still running at shutdown were cancelled: %w", ctx.Err())
}

// parseSchedule reads a cron spec as cron.New's parser does, except that
// "@every d" fires at the multiples of d (since the zero time, so on the
// clock's minutes and hours in any zone of whole-hour offset) rather than
// d after the process started: replicas started at different moments then
// share their ticks, and a tick claimed by one is skipped by the others.
func parseSchedule(spec string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return alignedEvery(every.Delay), nil
	}
	return sched, nil
}

// alignedEvery is a schedule firing at every multiple of its duration.
type alignedEvery time.Duration

// Next returns the first multiple of the duration after t.
func (d alignedEvery) Next(t time.Time) time.Time {
	return t.Truncate(time.Duration(d)).Add(time.Duration(d))
}

// job is the innermost wrapper of an entry: it claims the tick (when
// replicas share the work), reads the clock once, bounds the run, and
// records its outcome in logs and metrics. tick returns the instant the
// cron scheduled the run for; it is zero for the start-up run, whose tick
// is the current second.
func (s *Scheduler) job(e Entry, tick func() time.Time) cron.Job {
	return cron.FuncJob(func() {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		s.running.Add(1)
		s.mu.Unlock()
		defer s.running.Done()

		now := s.now()
		start := time.Now()
		// What the job changes is audited as system:<job>.
		ctx, cancel := context.WithTimeout(billing.WithActor(s.ctx, billing.SystemActor(e.Name)), s.timeout)
		defer cancel()
		defer s.metrics.runs.WithLabelValues(e.Name).Inc()
		if s.runs != nil {
			at := tick()
			if at.IsZero() {
				at = time.Now().Truncate(time.Second)
			}
			ok, err := s.runs.ClaimJobRun(ctx, e.Name, at, s.replica, now)
			if err != nil {
				s.metrics.failures.WithLabelValues(e.Name).Inc()
				s.log.Error("job failed", slog.String("job", e.Name), slog.String("error", err.Error()))
				return
			}
			if !ok {
				s.metrics.skipped.WithLabelValues(e.Name).Inc()
				s.log.Debug("job tick claimed by another replica", slog.String("job", e.Name), slog.Time("tick", at))
				return
			}
		}
		defer func() {
			s.metrics.duration.WithLabelValues(e.Name).Observe(time.Since(start).Seconds())
			if v := recover(); v != nil {
				s.metrics.failures.WithLabelValues(e.Name).Inc()
				panic(v) // cron.Recover logs it with the stack
			}
		}()
		if err := e.Job.Run(ctx, now); err != nil {
			s.metrics.failures.WithLabelValues(e.Name).Inc()
			s.log.Error("job failed", slog.String("job", e.Name), slog.String("error", err.Error()))
			return
		}
		s.metrics.lastSuccess.WithLabelValues(e.Name).Set(float64(now.Unix()))
	})
}

// cronLogger adapts slog to cron's logger: its chatter (wake, run, skip)
// at debug level, errors (recovered panics) at error level.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "error", err.Error())...)
}

type jobMetrics struct {
	runs        *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	failures    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
}

func newJobMetrics(reg prometheus.Registerer) (*jobMetrics, error) {
	m := &jobMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scheduler_job_runs_total", Help: "Runs of each scheduler job, failed ones and skipped ones included.",
		}, []string{"job"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scheduler_job_skipped_total", Help: "Runs of each scheduler job skipped because another replica had claimed their tick.",
		}, []string{"job"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scheduler_job_failures_total", Help: "Runs of each scheduler job that returned an error or panicked.",
		}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scheduler_job_duration_seconds", Help: "Duration of scheduler job runs.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 15, 60, 300},
		}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scheduler_job_last_success_timestamp_seconds", Help: "Clock reading (Unix seconds) of each job's last successful run.",
		}, []string{"job"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.skipped, m.failures, m.duration, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
