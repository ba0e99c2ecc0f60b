package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"entitlements/billing"

	"github.com/prometheus/client_golang/prometheus"
)

// Outbox is what Deliver needs from the store.
type Outbox interface {
	ClaimNotices(ctx context.Context, now time.Time, limit int, lease time.Duration) (claimed []billing.Notice, superseded int, err error)
	MarkNoticeSent(ctx context.Context, id string, now time.Time) error
	MarkNoticeFailed(ctx context.Context, id string, attempts int, now, next time.Time, dead bool, reason string) error
	NoticeBacklog(ctx context.Context) (map[billing.NoticeStatus]int, error)
}

// DeliverOptions configure Deliver. Outbox and Location are required; URL
// and Secret (whsec_<base64 key>) come from notices.webhook_url/_secret.
type DeliverOptions struct {
	Outbox     Outbox
	URL        string // empty: notices stay pending and readable through the API
	Secret     string
	Location   *time.Location
	Timeout    time.Duration  // per request, connection to last body byte; defaults to 10s
	Batch      int            // notices sent per run at most; defaults to 100
	Parallel   int            // requests in flight at once; defaults to 4
	Client     *http.Client   // defaults to one with Timeout that does not follow redirects
	Jitter     func() float64 // in [0, 1); defaults to math/rand/v2
	Logger     *slog.Logger
	Registerer prometheus.Registerer // outbox metrics; defaults to a private registry
}

// Deliver sends pending outbox notices to the webhook, following Standard
// Webhooks: at least once, webhook-id = the notice id on every attempt, a
// 2xx marks it sent, anything else (timeouts and redirects included) is
// retried with backoff and jitter until 24 hours after its creation, then
// it is dead (see billing.NextAttempt).
type Deliver struct {
	o        DeliverOptions
	key      []byte
	client   *http.Client
	log      *slog.Logger
	backlog  *prometheus.GaugeVec
	attempts *prometheus.CounterVec
}

// NewDeliver checks the options and registers the outbox metrics.
func NewDeliver(o DeliverOptions) (*Deliver, error) {
	if o.Outbox == nil || o.Location == nil {
		return nil, errors.New("deliver: outbox and location are required")
	}
	d := &Deliver{o: o, log: logger(o.Logger), client: o.Client}
	if o.URL != "" {
		key, err := ParseSecret(o.Secret)
		if err != nil {
			return nil, fmt.Errorf("deliver: %w", err)
		}
		d.key = key
	}
	if d.o.Timeout <= 0 {
		d.o.Timeout = 10 * time.Second
	}
	d.o.Batch = or(d.o.Batch, 100)
	d.o.Parallel = or(d.o.Parallel, 4)
	if d.o.Jitter == nil {
		d.o.Jitter = rand.Float64
	}
	if d.client == nil {
		d.client = &http.Client{
			Timeout:       d.o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	d.backlog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "notice_outbox_backlog", Help: "Outbox notices waiting (pending) or given up (dead), as of the last deliver run.",
	}, []string{"status"})
	d.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "notice_delivery_attempts_total", Help: "Webhook delivery attempts by outcome: sent, retry or dead.",
	}, []string{"outcome"})
	for _, c := range []prometheus.Collector{d.backlog, d.attempts} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// lease is how long a claimed notice is reserved for this run: the
// request's timeout plus room to record the outcome. A process killed
// mid-send leaves the notice to be retried when it runs out.
func (d *Deliver) lease() time.Duration { return 2*d.o.Timeout + 5*time.Second }

// Run sends up to Batch due notices, Parallel at a time. Failures to reach
// the receiver are outcomes, not errors of the run; errors are the
// store's.
func (d *Deliver) Run(ctx context.Context, now time.Time) error {
	start := time.Now()
	clock := func() time.Time { return now.Add(time.Since(start)) } // now, moved on by the run's own time
	defer d.updateBacklog(ctx)
	if d.o.URL == "" {
		return nil // notices stay pending, readable through the API
	}
	var errs []error
	for done := 0; done < d.o.Batch && ctx.Err() == nil; {
		ns, superseded, err := d.o.Outbox.ClaimNotices(ctx, clock(), min(d.o.Parallel, d.o.Batch-done), d.lease())
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if len(ns) == 0 && superseded == 0 {
			break
		}
		done += len(ns) + superseded
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range ns {
			wg.Go(func() {
				if err := d.deliver(ctx, n, clock); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// deliver makes one attempt and records its outcome.
func (d *Deliver) deliver(ctx context.Context, n billing.Notice, clock func() time.Time) error {
	err := d.send(ctx, n, clock())
	now := clock()
	if err != nil && ctx.Err() != nil {
		return nil // shutting down: not the receiver's failure; the lease runs out and it is sent again
	}
	if err == nil {
		d.attempts.WithLabelValues("sent").Inc()
		return d.o.Outbox.MarkNoticeSent(context.WithoutCancel(ctx), n.ID, now)
	}
	next, dead := billing.NextAttempt(n.CreatedAt, now, n.Attempts, d.o.Jitter())
	outcome := "retry"
	if !dead {
		d.log.Warn("notice delivery failed", slog.String("notice", n.ID), slog.String("kind", string(n.Kind)),
			slog.Int("attempt", n.Attempts), slog.Time("next_retry", next), slog.String("error", err.Error()))
	}
	if dead {
		outcome = "dead"
		d.log.Warn("notice dead: undeliverable for 24 hours", slog.String("notice", n.ID),
			slog.String("kind", string(n.Kind)), slog.String("error", err.Error()))
	}
	d.attempts.WithLabelValues(outcome).Inc()
	return d.o.Outbox.MarkNoticeFailed(context.WithoutCancel(ctx), n.ID, n.Attempts, now, next, dead, err.Error())
}

// body is the webhook payload (SPEC "Notices").
type body struct {
	Type      billing.NoticeKind `json:"type"`
	Timestamp string             `json:"timestamp"`
	Data      map[string]any     `json:"data"`
}

// Payload returns the JSON body sent for n at now: the kind, the time of
// sending, and the kind's fields with vin and owner_id.
func Payload(n billing.Notice, now time.Time, loc *time.Location) ([]byte, error) {
	return json.Marshal(body{Type: n.Kind, Timestamp: billing.Stamp(now, loc), Data: n.Payload()})
}

// send posts n once; nil means the receiver answered 2xx.
func (d *Deliver) send(ctx context.Context, n billing.Notice, now time.Time) error {
	payload, err := Payload(n, now, d.o.Location)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.o.URL, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "entitlements-notices/1")
	req.Header.Set(HeaderID, n.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(d.key, n.ID, ts, payload))
	res, err := d.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", res.Status)
	}
	return nil
}

func (d *Deliver) updateBacklog(ctx context.Context) {
	counts, err := d.o.Outbox.NoticeBacklog(context.WithoutCancel(ctx))
	if err != nil {
		d.log.Warn("count outbox backlog", slog.String("error", err.Error()))
		return
	}
	for status, n := range counts {
		d.backlog.WithLabelValues(string(status)).Set(float64(n))
	}
}
