package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/store"
	"entitlements/store/storetest"
)

// checkWrites compares the database with what the replicas acknowledged:
// every acknowledged write is there, once.
func (l *load) checkWrites(db *store.DB) {
	t := l.t
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range l.unexpected {
		t.Errorf("during the run: %s", u)
	}
	for scenario, st := range l.statuses {
		for code, n := range st {
			if code == 0 || code >= 500 {
				t.Errorf("%s: %d responses with status %d", scenario, n, code)
			}
		}
	}

	var vehicles []struct{ VIN, OwnerID string }
	storetest.Query(db, &vehicles, `SELECT vin, owner_id FROM vehicles`)
	owner := map[string]string{}
	for _, v := range vehicles {
		owner[v.VIN] = v.OwnerID
	}
	for _, vin := range l.vins {
		if owner[vin] != l.owners[vin] {
			t.Errorf("activation of %s acknowledged, vehicle row has owner %q, want %q", vin, owner[vin], l.owners[vin])
		}
	}

	var orders []struct {
		ID, VIN, Status        string
		AmountFen, RefundedFen int64
	}
	storetest.Query(db, &orders, `SELECT id, vin, status, amount_fen, refunded_fen FROM orders`)
	type orderRow = struct {
		ID, VIN, Status        string
		AmountFen, RefundedFen int64
	}
	byID := map[string]orderRow{}
	for _, o := range orders {
		byID[o.ID] = o
	}
	applied := map[string]int{}
	events := map[string]bool{}
	var payments []struct{ EventID, OrderID, Outcome string }
	storetest.Query(db, &payments, `SELECT event_id, order_id, outcome FROM payments`)
	for _, p := range payments {
		events[p.EventID] = true
		if p.Outcome == "applied" {
			applied[p.OrderID]++
		}
	}
	periods := map[string]int{}
	var pr []struct {
		OrderID string
		N       int
	}
	storetest.Query(db, &pr, `SELECT order_id, COUNT(*) AS n FROM periods WHERE order_id IS NOT NULL GROUP BY order_id`)
	for _, p := range pr {
		periods[p.OrderID] = p.N
	}
	refunded := map[string]int64{}
	refundIDs := map[string][]string{}
	var refunds []struct {
		ID, OrderID string
		AmountFen   int64
	}
	storetest.Query(db, &refunds, `SELECT id, order_id, amount_fen FROM refunds`)
	for _, r := range refunds {
		refunded[r.OrderID] += r.AmountFen
		refundIDs[r.OrderID] = append(refundIDs[r.OrderID], r.ID)
	}
	for event := range l.events {
		if !events[event] {
			t.Errorf("payment %s acknowledged, not in payments", event)
		}
	}
	unpaid := map[string]bool{} // never sent a payment
	for _, o := range l.unpaid {
		unpaid[o.ID] = true
	}
	if len(orders) != len(l.orders) || len(refunds) != len(l.refunds) {
		t.Errorf("%d orders and %d refunds stored, %d and %d acknowledged", len(orders), len(refunds), len(l.orders), len(l.refunds))
	}
	for id, o := range l.orders {
		row, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("order %s acknowledged, not in orders", id)
			continue
		case row.VIN != o.VIN || row.AmountFen != o.AmountFen:
			t.Errorf("order %s is %+v, acknowledged for %s at %d fen", id, row, o.VIN, o.AmountFen)
		}
		if o.Paid && (applied[id] != 1 || periods[id] != 1 || row.Status == "pending" || row.Status == "cancelled") {
			t.Errorf("paid order %s: %d applied payments, %d periods, status %s; want 1, 1, paid or refunded", id, applied[id], periods[id], row.Status)
		}
		if unpaid[id] && (applied[id] != 0 || periods[id] != 0) {
			t.Errorf("unpaid order %s: %d applied payments, %d periods; want none", id, applied[id], periods[id])
		}
		if unpaid[id] && time.Since(o.Created) > 25*time.Second && row.Status != "cancelled" {
			t.Errorf("order %s unpaid since %v is %s, want cancelled by the cancel_unpaid job", id, time.Since(o.Created).Round(time.Second), row.Status)
		}
		if refunded[id] != row.RefundedFen || row.RefundedFen > row.AmountFen {
			t.Errorf("order %s: refunds add up to %d fen, refunded_fen %d, amount %d", id, refunded[id], row.RefundedFen, row.AmountFen)
		}
		if r, ok := l.refunds[id]; ok && (len(refundIDs[id]) != 1 || refundIDs[id][0] != r.ID || refunded[id] != r.AmountFen) {
			t.Errorf("order %s: refunds %v of %d fen, want the acknowledged %s of %d", id, refundIDs[id], refunded[id], r.ID, r.AmountFen)
		}
	}

	var recs []struct {
		ID, VIN, Category string
		Bytes             int64
	}
	storetest.Query(db, &recs, `SELECT id, vin, category, bytes FROM usage_records`)
	inDB := map[string]bool{}
	type sums struct{ Ent, Basic, Records int64 }
	fromRecords := map[string]sums{}
	for _, r := range recs {
		inDB[r.ID] = true
		s := fromRecords[r.VIN]
		s.Records++
		if r.Category == "basic" {
			s.Basic += r.Bytes
		} else {
			s.Ent += r.Bytes
		}
		fromRecords[r.VIN] = s
	}
	for id := range l.usage {
		if !inDB[id] {
			t.Errorf("usage record %s acknowledged, not in usage_records", id)
		}
	}
	if len(recs) != len(l.usage) {
		t.Errorf("%d usage records stored, %d distinct ones acknowledged", len(recs), len(l.usage))
	}
	var cycles []struct {
		VIN                 string
		Ent, Basic, Records int64
	}
	storetest.Query(db, &cycles, `SELECT vin, SUM(entertainment_bytes) AS ent, SUM(basic_bytes) AS basic, SUM(records) AS records FROM usage_cycles GROUP BY vin`)
	fromCycles := map[string]sums{}
	for _, c := range cycles {
		fromCycles[c.VIN] = sums{c.Ent, c.Basic, c.Records}
	}
	for vin, s := range fromRecords {
		if fromCycles[vin] != s {
			t.Errorf("usage of %s: usage_cycles say %+v, the records %+v", vin, fromCycles[vin], s)
		}
	}
	if len(fromCycles) != len(fromRecords) {
		t.Errorf("usage_cycles for %d vehicles, records for %d", len(fromCycles), len(fromRecords))
	}
	t.Logf("stored: %d vehicles, %d orders, %d payments, %d refunds, %d usage records", len(vehicles), len(orders), len(payments), len(refunds), len(recs))
}

// checkNotices checks that every notice was created once (one order.paid
// per paid order, one refund.issued per refund, one per threshold crossed,
// one per seeded car and kind) and delivered at least once with a valid
// signature.
func (l *load) checkNotices(db *store.DB, rcv *crashReceiver, seeded int) {
	t := l.t
	t.Helper()
	var rows []struct{ ID, VIN, Kind, Status, Data string }
	storetest.Query(db, &rows, `SELECT id, vin, kind, status, data FROM notices`)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	ids := map[string]bool{}
	perOrder, perRefund, perVIN := map[string]int{}, map[string]int{}, map[string]int{}
	kinds := map[string]int{}
	for _, r := range rows {
		ids[r.ID] = true
		kinds[r.Kind]++
		if r.Status != "sent" || rcv.perID[r.ID] == 0 {
			t.Errorf("notice %s (%s %s) is %s and was delivered %d times, want sent", r.ID, r.VIN, r.Kind, r.Status, rcv.perID[r.ID])
		}
		var data struct {
			OrderID  string `json:"order_id"`
			RefundID string `json:"refund_id"`
		}
		json.Unmarshal([]byte(r.Data), &data)
		switch r.Kind {
		case "order.paid":
			perOrder[data.OrderID]++
		case "refund.issued":
			perRefund[data.RefundID]++
		case "quota.threshold":
			perVIN[r.VIN]++
		default:
			if strings.HasPrefix(r.VIN, "LSVAX4E1") && r.VIN[9] == 'P' { // seeded: LSVAX4E1?P, check digit ninth
				perVIN[r.VIN]++
			}
		}
	}
	for id := range rcv.perID {
		if !ids[id] {
			t.Errorf("receiver got notice %s, not in notices", id)
		}
	}
	if rcv.badSig != 0 {
		t.Errorf("%d deliveries with a bad signature", rcv.badSig)
	}
	var applied, refunds []string
	storetest.Query(db, &applied, `SELECT order_id FROM payments WHERE outcome = 'applied'`)
	storetest.Query(db, &refunds, `SELECT id FROM refunds`)
	for _, id := range applied {
		if perOrder[id] != 1 {
			t.Errorf("order %s paid: %d order.paid notices, want 1", id, perOrder[id])
		}
	}
	for _, id := range refunds {
		if perRefund[id] != 1 {
			t.Errorf("refund %s: %d refund.issued notices, want 1", id, perRefund[id])
		}
	}
	if len(perOrder) != len(applied) || len(perRefund) != len(refunds) {
		t.Errorf("order.paid notices for %d orders (%d paid), refund.issued for %d refunds (%d made)", len(perOrder), len(applied), len(perRefund), len(refunds))
	}
	// Seeded cars: one reminder or one expiry notice each.
	var seededVINs []string
	storetest.Query(db, &seededVINs, `SELECT vin FROM vehicles WHERE vin LIKE 'LSVAX4E1_P%'`)
	for _, vin := range seededVINs {
		if perVIN[vin] != 1 {
			t.Errorf("seeded car %s: %d notices, want 1", vin, perVIN[vin])
		}
	}
	if len(seededVINs) != 2*seeded {
		t.Errorf("%d seeded cars, want %d", len(seededVINs), 2*seeded)
	}
	// Quota: one notice per threshold crossed (80 and 100 % of 15 GiB).
	var used []struct {
		VIN string
		Ent int64
	}
	storetest.Query(db, &used, `SELECT vin, SUM(entertainment_bytes) AS ent FROM usage_cycles GROUP BY vin`)
	const allowance = 16106127360
	crossedAny := 0
	for _, u := range used {
		want := 0
		for _, pct := range []int64{80, 100} {
			if u.Ent >= allowance*pct/100 {
				want++
			}
		}
		crossedAny += want
		if perVIN[u.VIN] != want {
			t.Errorf("%s used %d entertainment bytes: %d quota.threshold notices, want %d", u.VIN, u.Ent, perVIN[u.VIN], want)
		}
	}
	if crossedAny == 0 {
		t.Errorf("no car crossed a quota threshold: the test proves nothing about them")
	}
	t.Logf("notices: %v; %d delivered", kinds, len(rcv.perID))
}

// checkJobRuns checks the record of job runs (table job_runs, one row per
// job and tick, naming the replica that claimed it) against each
// replica's own count of the times it ran a job's code (the count of
// scheduler_job_duration_seconds, observed around the job's Run only) at
// /metrics: no replica ran a tick it had not claimed, so no tick ran on
// two, and every tick it fired was either run or skipped
// (scheduler_job_skipped_total). And the ticks of the workload's window
// were run, not all skipped. replicas[i] is the name of the process at
// addrs[i] in job_runs.
func (l *load) checkJobRuns(db *store.DB, replicas []string, from, to time.Time) {
	t := l.t
	t.Helper()
	jobs := []string{store.JobExpire, store.JobRemind, store.JobDeliver, store.JobCancelUnpaid, "prune_usage", "purge_keys"}
	claimed := func() map[string]int {
		var rows []struct {
			Job, Replica string
			N            int
		}
		storetest.Query(db, &rows, `SELECT job, replica, COUNT(*) AS n FROM job_runs GROUP BY job, replica`)
		out := map[string]int{}
		for _, r := range rows {
			out[r.Job+" "+r.Replica] = r.N
		}
		return out
	}
	before := claimed()
	ran := map[string]int{}
	for i, addr := range l.addrs {
		m := scrapeMetrics(t, addr)
		for _, job := range jobs {
			fired, skipped := m[`scheduler_job_runs_total{job="`+job+`"}`], m[`scheduler_job_skipped_total{job="`+job+`"}`]
			did := m[`scheduler_job_duration_seconds_count{job="`+job+`"}`]
			ran[job+" "+replicas[i]] = int(did)
			// The two counts of a run are raised one after the other.
			if d := fired - skipped - did; d < 0 || d > 1 {
				t.Errorf("replica %d: %s fired %v times, skipped %v, ran %v", i, job, fired, skipped, did)
			}
		}
	}
	after := claimed()
	for i := range l.addrs {
		for _, job := range jobs {
			k := job + " " + replicas[i]
			// A run is claimed when it starts and counted when it ends:
			// one run of a job may be in progress in each replica.
			if ran[k] > after[k] || ran[k] < before[k]-1 {
				t.Errorf("replica %d ran %s %d times, claimed %d ticks (%d a moment before): it ran ticks it had not claimed", i, job, ran[k], after[k], before[k])
			}
		}
	}
	var ticks []struct {
		Job     string
		Ticks   int
		Runners int
	}
	storetest.Query(db, &ticks, `SELECT job, COUNT(*) AS ticks, COUNT(DISTINCT replica) AS runners FROM job_runs WHERE tick >= ? AND tick < ? GROUP BY job`,
		from.UTC(), to.UTC())
	window := int(to.Sub(from) / time.Second)
	got := map[string]string{}
	for _, tk := range ticks {
		got[tk.Job] = fmt.Sprintf("%d ticks by %d replicas", tk.Ticks, tk.Runners)
		if tk.Ticks < window/2 {
			t.Errorf("job %s ran %d ticks of %d in the workload's window, want most", tk.Job, tk.Ticks, window)
		}
	}
	if len(ticks) != len(jobs) {
		t.Errorf("job runs recorded for %v, want %v", got, jobs)
	}
	// Each stale order was cancelled once (an audit entry per cancellation).
	var twice int
	storetest.Query(db, &twice, `SELECT COUNT(*) FROM (SELECT order_id FROM audit_log WHERE action = 'order.cancelled_stale' GROUP BY order_id HAVING COUNT(*) > 1) x`)
	if twice != 0 {
		t.Errorf("%d orders cancelled as stale more than once", twice)
	}
	t.Logf("job runs in the %d s window: %v", window, got)
}

// scrapeMetrics returns the samples at addr's /metrics by name with labels.
func scrapeMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		var f float64
		fmt.Sscan(v, &f)
		out[name] = f
	}
	return out
}

// checkCachedReads: every replica serves each acknowledged vehicle's
// entitlement as the database holds it (coverage end and epoch) once the
// workload has stopped, although each keeps a snapshot cache that only
// the other replicas' notifications keep current; and each replica
// listened and was notified.
func (l *load) checkCachedReads(db *store.DB) {
	t := l.t
	t.Helper()
	l.mu.Lock()
	vins := append([]string(nil), l.vins...)
	l.mu.Unlock()
	type truth struct {
		CoverageEndsAt time.Time
		Epoch          int64
	}
	stale := func(i int, vin string) string {
		var want truth
		if err := storetest.Query(db, &want, `SELECT coverage_ends_at, epoch FROM vehicles WHERE vin = ?`, vin); err != nil {
			t.Fatal(err)
		}
		status, body := l.call(i, http.MethodGet, "/v1/vehicles/"+vin+"/entitlement", l.billing, nil, nil)
		var got struct {
			CoveredUntil *time.Time `json:"covered_until"`
			Epoch        int64      `json:"epoch"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			return fmt.Sprintf("entitlement = %d %s", status, body)
		}
		// The API writes instants to the second, and no covered_until
		// for a car whose coverage has ended.
		end := want.CoverageEndsAt.Truncate(time.Second)
		sameEnd := got.CoveredUntil != nil && got.CoveredUntil.Equal(end) ||
			got.CoveredUntil == nil && !want.CoverageEndsAt.After(time.Now())
		if !sameEnd || got.Epoch != want.Epoch {
			return fmt.Sprintf("covered_until %v epoch %d, the database has %v and %d", got.CoveredUntil, got.Epoch, want.CoverageEndsAt, want.Epoch)
		}
		return ""
	}
	for i, addr := range l.addrs {
		m := scrapeMetrics(t, addr)
		if m["snapshot_cache_listener_up"] != 1 || m["snapshot_cache_invalidations_total"] == 0 {
			t.Errorf("replica %d: listener up %v, %v invalidations: its cache was not kept by notifications",
				i, m["snapshot_cache_listener_up"], m["snapshot_cache_invalidations_total"])
		}
		for _, vin := range vins {
			if msg := stale(i, vin); msg != "" {
				// A notification takes about a millisecond: give it far more.
				time.Sleep(time.Second)
				if msg := stale(i, vin); msg != "" {
					t.Errorf("replica %d serves a stale %s: %s", i, vin, msg)
				}
			}
		}
	}
}
