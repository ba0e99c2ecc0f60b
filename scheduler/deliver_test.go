package scheduler_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store"
	"entitlements/store/storetest"

	"github.com/prometheus/client_golang/prometheus"
)

var webhookKey = []byte("0123456789abcdef0123456789abcdef")
var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString(webhookKey)

// delivery is one request the receiver got.
type delivery struct {
	ID, Timestamp string
	SignatureOK   bool
	Body          map[string]any
}

// receiver is a webhook endpoint that verifies Standard Webhooks
// signatures on its own (not with package scheduler's code) and answers
// what status says for the n-th request (1-based).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	status func(n int) int
	delay  time.Duration

	mu  sync.Mutex // protects got
	got []delivery
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	r := &receiver{t: t, status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	d := delivery{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp")}
	mac := hmac.New(sha256.New, webhookKey)
	mac.Write([]byte(d.ID + "." + d.Timestamp + "." + string(raw)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(req.Header.Get("webhook-signature")) {
		if v, ok := strings.CutPrefix(sig, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			d.SignatureOK = true
		}
	}
	if err := json.Unmarshal(raw, &d.Body); err != nil {
		r.t.Errorf("webhook body %q: %v", raw, err)
	}
	r.mu.Lock()
	r.got = append(r.got, d)
	n := len(r.got)
	r.mu.Unlock()
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	w.WriteHeader(r.status(n))
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func always(code int) func(int) int { return func(int) int { return code } }

func newDeliver(t testing.TB, db *store.DB, url string, mod ...func(*scheduler.DeliverOptions)) *scheduler.Deliver {
	t.Helper()
	o := scheduler.DeliverOptions{Outbox: db, URL: url, Secret: webhookSecret, Location: shanghai,
		Jitter: func() float64 { return 0.5 }}
	for _, m := range mod {
		m(&o)
	}
	d, err := scheduler.NewDeliver(o)
	if err != nil {
		t.Fatalf("NewDeliver: %v", err)
	}
	return d
}

// reminderFor activates a car whose trial ends in 5 days and creates its
// stage 7 reminder at t0.
func reminderFor(t testing.TB, db *store.DB, vin billing.VIN) billing.Notice {
	t.Helper()
	activateEndingAt(t, db, vin, "owner-"+string(vin[12:]), t0.Add(5*24*time.Hour), t0)
	runJob(t, scheduler.Remind{Store: db, Stages: stages, Location: shanghai}, t0)
	ns := listNotices(t, db, vin)
	if len(ns) != 1 {
		t.Fatalf("notices = %+v, want 1", ns)
	}
	return ns[0]
}

func TestDeliverSignedWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		n := reminderFor(t, db, vinN(30))
		rcv := newReceiver(t, always(http.StatusNoContent))
		runJob(t, newDeliver(t, db, rcv.srv.URL), t0.Add(time.Minute))

		got := rcv.deliveries()
		if len(got) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(got))
		}
		d := got[0]
		if d.ID != n.ID || !d.SignatureOK {
			t.Errorf("webhook-id = %q (want %q), signature valid = %v", d.ID, n.ID, d.SignatureOK)
		}
		if want := "1781496060"; d.Timestamp != want { // t0 + 1m in Unix seconds
			t.Errorf("webhook-timestamp = %s, want %s", d.Timestamp, want)
		}
		data, _ := d.Body["data"].(map[string]any)
		if d.Body["type"] != "coverage.expiring" || d.Body["timestamp"] != "2026-06-15T12:01:00+08:00" ||
			data["vin"] != string(n.VIN) || data["owner_id"] != n.OwnerID || data["stage"] != float64(7) ||
			data["covered_until"] != n.Data["covered_until"] {
			t.Errorf("body = %v", d.Body)
		}
		after := listNotices(t, db, n.VIN)[0]
		if after.Status != billing.NoticeSent || after.Attempts != 1 || after.SentAt == nil {
			t.Errorf("notice after delivery = %+v, want sent after 1 attempt", after)
		}
		// Sent notices are not sent again.
		runJob(t, newDeliver(t, db, rcv.srv.URL), t0.Add(time.Hour))
		if len(rcv.deliveries()) != 1 {
			t.Errorf("receiver got %d requests after a second run, want 1", len(rcv.deliveries()))
		}
	})
}

func TestDeliverRetriesWithTheSameID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		n := reminderFor(t, db, vinN(31))
		rcv := newReceiver(t, func(i int) int {
			if i <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		deliver := newDeliver(t, db, rcv.srv.URL)
		now := t0
		for i := range 3 {
			runJob(t, deliver, now)
			cur := listNotices(t, db, n.VIN)[0]
			if i < 2 {
				// Equal jitter 0.5 of 10s·2^i: 7.5s, then 15s.
				// (plus the run's own few milliseconds)
				want := now.Add(time.Duration(7500<<i) * time.Millisecond)
				if d := cur.NextAttemptAt.Sub(want); d < 0 || d > time.Second || cur.Status != billing.NoticePending {
					t.Fatalf("after failure %d: %s next at %s, want pending next at %s", i+1, cur.Status, cur.NextAttemptAt, want)
				}
				// Not due yet: a run before next_attempt_at sends nothing.
				runJob(t, deliver, cur.NextAttemptAt.Add(-time.Second))
			}
			now = cur.NextAttemptAt
		}
		got := rcv.deliveries()
		if len(got) != 3 {
			t.Fatalf("receiver got %d requests, want 3", len(got))
		}
		for i, d := range got {
			if d.ID != n.ID || !d.SignatureOK {
				t.Errorf("request %d: webhook-id %q signature valid %v, want %q and valid", i+1, d.ID, d.SignatureOK, n.ID)
			}
		}
		if cur := listNotices(t, db, n.VIN)[0]; cur.Status != billing.NoticeSent || cur.Attempts != 3 {
			t.Errorf("notice = %s after %d attempts, want sent after 3", cur.Status, cur.Attempts)
		}
	})
}

func TestDeliverDeadAfter24Hours(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		n := reminderFor(t, db, vinN(32))
		rcv := newReceiver(t, always(http.StatusBadGateway))
		reg := prometheus.NewRegistry()
		deliver := newDeliver(t, db, rcv.srv.URL, func(o *scheduler.DeliverOptions) { o.Registerer = reg })
		now, runs := t0, 0
		for ; runs < 100; runs++ {
			runJob(t, deliver, now)
			cur := listNotices(t, db, n.VIN)[0]
			if cur.Status != billing.NoticePending {
				break
			}
			if cur.NextAttemptAt.After(n.CreatedAt.Add(24 * time.Hour)) {
				t.Fatalf("next attempt %s is past the 24-hour window", cur.NextAttemptAt)
			}
			now = cur.NextAttemptAt
		}
		cur := listNotices(t, db, n.VIN)[0]
		if cur.Status != billing.NoticeDead {
			t.Fatalf("after %d runs: status %s, want dead", runs, cur.Status)
		}
		if want := n.CreatedAt.Add(24 * time.Hour); now.Sub(want) < 0 || now.Sub(want) > time.Second {
			t.Errorf("last attempt at %s, want at the 24-hour mark %s", now, want)
		}
		// 10s doubling to the 1h cap, jitter 0.5: 9 attempts in the first
		// 64 minutes, then one every 45 minutes.
		if got := len(rcv.deliveries()); got != cur.Attempts || got < 35 || got > 45 {
			t.Errorf("receiver got %d requests for %d attempts, want equal and about 41", got, cur.Attempts)
		}
		if !strings.Contains(cur.LastError, "502") {
			t.Errorf("last_error = %q, want the receiver's status", cur.LastError)
		}
		if dead, pending := metricValue(t, reg, "notice_outbox_backlog", "status", "dead"),
			metricValue(t, reg, "notice_outbox_backlog", "status", "pending"); dead != 1 || pending != 0 {
			t.Errorf("notice_outbox_backlog dead = %v, pending = %v; want 1, 0", dead, pending)
		}
		if got := metricValue(t, reg, "notice_delivery_attempts_total", "outcome", "retry"); got != float64(cur.Attempts-1) {
			t.Errorf("notice_delivery_attempts_total{outcome=retry} = %v, want %d", got, cur.Attempts-1)
		}
		runJob(t, deliver, now.Add(48*time.Hour))
		if got := len(rcv.deliveries()); got != cur.Attempts {
			t.Errorf("a dead notice was sent again: %d requests", got)
		}
		e := onlyAudit(t, db, n.VIN, billing.AuditNoticeDead)
		if e.Actor != "system:deliver" || e.After["notice_id"] != n.ID || e.After["status"] != "dead" || e.Before["status"] != "pending" {
			t.Errorf("notice.dead entry = %+v, want system:deliver moving %s from pending to dead", e, n.ID)
		}
	})
}

// onlyAudit returns the one audit entry of vin with action, failing the
// test unless there is exactly one.
func onlyAudit(t testing.TB, db *store.DB, vin billing.VIN, action billing.AuditAction) billing.AuditEntry {
	t.Helper()
	es, _, err := db.AuditEntries(ctx, billing.AuditQuery{VIN: vin, Action: action, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Fatalf("%s entries of %s = %d (%+v), want 1", action, vin, len(es), es)
	}
	return es[0]
}

func TestDeliverTimeoutIsRetried(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		n := reminderFor(t, db, vinN(33))
		rcv := newReceiver(t, always(http.StatusOK))
		rcv.delay = 500 * time.Millisecond
		deliver := newDeliver(t, db, rcv.srv.URL, func(o *scheduler.DeliverOptions) { o.Timeout = 100 * time.Millisecond })
		runJob(t, deliver, t0)
		cur := listNotices(t, db, n.VIN)[0]
		if cur.Status != billing.NoticePending || cur.Attempts != 1 || !strings.Contains(cur.LastError, "Timeout") {
			t.Errorf("after a timeout: %s, %d attempts, last_error %q; want pending, 1, a timeout", cur.Status, cur.Attempts, cur.LastError)
		}
	})
}

func TestDeliverWithoutURLKeepsNoticesPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		n := reminderFor(t, db, vinN(34))
		deliver := newDeliver(t, db, "", func(o *scheduler.DeliverOptions) { o.Secret = "" })
		runJob(t, deliver, t0.Add(time.Hour))
		if cur := listNotices(t, db, n.VIN)[0]; cur.Status != billing.NoticePending || cur.Attempts != 0 {
			t.Errorf("without a webhook: %s after %d attempts, want pending after 0", cur.Status, cur.Attempts)
		}
	})
}

func TestDeliverSupersedesMovedReminders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}
		rcv := newReceiver(t, always(http.StatusOK))
		deliver := newDeliver(t, db, rcv.srv.URL)

		// Moved: a purchase after the reminder was created.
		moved := reminderFor(t, db, vinN(35))
		addPaidPeriod(t, db, moved.VIN, t0.Add(time.Minute), 31)
		// Several stages pending for one end (e.g. the webhook was down):
		// only the nearest is sent.
		both := vinN(36)
		end := activateEndingAt(t, db, both, "owner-36", t0.Add(20*24*time.Hour), t0)
		runJob(t, remind, t0)
		runJob(t, remind, end.Add(-3*24*time.Hour))

		runJob(t, deliver, end.Add(-3*24*time.Hour))
		status := map[string]billing.NoticeStatus{}
		for _, n := range append(listNotices(t, db, moved.VIN), listNotices(t, db, both)...) {
			status[n.ID] = n.Status
		}
		if status[moved.ID] != billing.NoticeSuperseded {
			t.Errorf("moved reminder: %s, want superseded", status[moved.ID])
		}
		ns := ofKind(listNotices(t, db, both), billing.NoticeExpiring)
		if len(ns) != 2 || ns[0].Stage != 30 || ns[0].Status != billing.NoticeSuperseded || ns[1].Stage != 7 || ns[1].Status != billing.NoticeSent {
			t.Fatalf("two stages for one end: %+v, want 30 superseded and 7 sent", ns)
		}
		for _, d := range rcv.deliveries() {
			if d.ID == moved.ID || d.ID == ns[0].ID {
				t.Errorf("receiver got superseded notice %s", d.ID)
			}
		}
		for vin, id := range map[billing.VIN]string{moved.VIN: moved.ID, both: ns[0].ID} {
			e := onlyAudit(t, db, vin, billing.AuditNoticeSuperseded)
			if e.Actor != "system:deliver" || e.After["notice_id"] != id || e.After["status"] != "superseded" {
				t.Errorf("notice.superseded entry of %s = %+v, want system:deliver superseding %s", vin, e, id)
			}
		}
		// The moved car's new end (36 days out) is reminded and sent anew.
		if n := listNotices(t, db, moved.VIN)[0]; n.ID == moved.ID || n.Stage != 30 || n.Status != billing.NoticeSent {
			t.Errorf("moved car's newest notice = %+v, want a sent stage 30 reminder", n)
		}
	})
}
