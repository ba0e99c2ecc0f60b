package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"entitlements/billing"
)

// Delivery of the outbox (SPEC "Notices") is at least once: a notice is
// claimed by moving its next_attempt_at a lease into the future in a short
// transaction, then sent outside any transaction, then marked. A process
// killed at any point leaves the notice pending, and it is claimed again
// when the lease runs out. Two replicas never claim the same notice at the
// same time: claims are exclusive (the job lock; on PostgreSQL also FOR
// UPDATE SKIP LOCKED) and a claimed notice is not due until its lease ends.

// supersedeStmt marks the given pending coverage.expiring notices
// superseded when the vehicle's coverage end has moved since they were
// created (a purchase or a refund), or when a nearer stage exists for the
// same coverage end (only the nearest due stage is sent). It is applied to
// the notices being claimed (n ids), so its cost is bounded by the batch.
// It returns the (id, vin) of each notice it marks, for the audit trail.
func supersedeStmt(n int) statement {
	return statement{"outbox/supersede/" + strconv.Itoa(n), func() string {
		return `UPDATE notices SET status = ?, updated_at = ?
	WHERE id IN (` + placeholders(n) + `) AND status = ? AND kind = ? AND (
		covered_until <> (SELECT v.coverage_ends_at FROM vehicles v WHERE v.vin = notices.vin)
		OR EXISTS (SELECT 1 FROM notices n2 WHERE n2.vin = notices.vin AND n2.kind = notices.kind
			AND n2.covered_until = notices.covered_until AND n2.stage < notices.stage))
	RETURNING id, vin`
	}}
}

// pickNoticesStmt selects the ids of the pending notices due at a time,
// oldest due first, up to a limit; on PostgreSQL it skips the rows another
// transaction has locked.
func (db *DB) pickNoticesStmt() statement {
	return statement{"outbox/pick", func() string {
		q := `SELECT id FROM notices WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`
		if db.dialect == Postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		return q
	}}
}

// claimNoticesStmt leases n pending notices.
func claimNoticesStmt(n int) statement {
	return statement{"outbox/claim/" + strconv.Itoa(n), func() string {
		return `UPDATE notices SET next_attempt_at = ?, attempts = attempts + 1, updated_at = ?
	WHERE id IN (` + placeholders(n) + `) AND status = ?`
	}}
}

// claimedNoticesStmt reads n pending notices in the order they are sent.
func (db *DB) claimedNoticesStmt(n int) statement {
	return statement{"outbox/claimed/" + strconv.Itoa(n), func() string {
		return `SELECT id, vin, owner_id, kind, dedupe_key, stage, ` + db.timeCol("covered_until") + `, data, status, attempts, ` +
			db.timeCol("next_attempt_at") + `, last_error, ` + db.timeCol("created_at") + `, ` + db.timeCol("updated_at") + `, ` +
			db.timeCol("sent_at") + ` FROM notices WHERE id IN (` + placeholders(n) + `) AND status = ? ORDER BY next_attempt_at, id`
	}}
}

// idList is ids as statement arguments, padded with the last id to the
// next power of two, so that the statements over an id list come in a
// few sizes (the statement cache keeps one per size). A repeated id
// changes nothing in an IN list.
func idList(ids []string) []any {
	n := 1
	for n < len(ids) {
		n *= 2
	}
	out := make([]any, n)
	for i := range out {
		out[i] = ids[min(i, len(ids)-1)]
	}
	return out
}

// ClaimNotices takes up to limit pending notices due at now, oldest due
// first. Reminders among them that are moot are marked superseded (and
// counted); the others are claimed: their attempts are counted and their
// next_attempt_at set to now+lease, so that no other run sends them until
// the lease ends. The caller must then mark each claimed notice sent or
// failed; if it never does (a crash), the notice is due again after the
// lease. It takes nothing when another replica is claiming at the moment.
func (db *DB) ClaimNotices(ctx context.Context, now time.Time, limit int, lease time.Duration) (claimed []billing.Notice, superseded int, err error) {
	pending := string(billing.NoticePending)
	var rows []noticeRow
	err = db.jobWrite(ctx, JobDeliver, writeSingle, func(tx *Tx) error {
		ids, err := db.pickNotices(tx, now, limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		list := idList(ids)
		moot, err := db.supersedeNotices(tx, list, now)
		if err != nil {
			return err
		}
		superseded = len(moot)
		for _, m := range moot {
			tx.audit(billing.AuditEntry{At: now, Action: billing.AuditNoticeSuperseded, VIN: billing.VIN(m.vin),
				Before: billing.Fields{"notice_id": m.id, "status": pending},
				After:  billing.Fields{"notice_id": m.id, "status": string(billing.NoticeSuperseded)}})
		}
		args := append([]any{db.timeArg(now.Add(lease)), db.timeArg(now)}, list...)
		if _, err := tx.exec(claimNoticesStmt(len(list)), append(args, pending)...); err != nil {
			return fmt.Errorf("claim notices: %w", err)
		}
		rows, err = db.claimedNotices(tx, list)
		return err
	})
	if errors.Is(err, errJobBusy) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	claimed = make([]billing.Notice, 0, len(rows))
	for _, r := range rows {
		n, err := r.notice()
		if err != nil {
			return nil, 0, err
		}
		claimed = append(claimed, n)
	}
	return claimed, superseded, nil
}

// MarkNoticeSent records a delivery the receiver acknowledged. A delivery
// that succeeded is the truth whatever happened to the notice meanwhile
// (superseded, or failed by a slower claim), so only "sent" is final here.
func (db *DB) MarkNoticeSent(ctx context.Context, id string, now time.Time) error {
	err := db.write(ctx, nil, func(tx *Tx) error {
		at := db.timeArg(now)
		_, err := tx.exec(noticeSentStmt, string(billing.NoticeSent), at, at, id, string(billing.NoticeSent))
		return err
	})
	if err != nil {
		return fmt.Errorf("mark notice %s sent: %w", id, err)
	}
	return nil
}

// MarkNoticeFailed records a failed attempt: the notice is due again at
// next, or dead. attempts is the count the claim returned; when it no
// longer matches (the lease ran out and another run claimed the notice
// again) the newer claim decides and this call changes nothing.
func (db *DB) MarkNoticeFailed(ctx context.Context, id string, attempts int, now, next time.Time, dead bool, reason string) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	status, nextAt := billing.NoticePending, db.timeArg(next)
	if dead {
		status, nextAt = billing.NoticeDead, nil // next_attempt_at stays
	}
	err := db.write(ctx, nil, func(tx *Tx) error {
		var vin string
		found, err := tx.queryRow(noticeFailedStmt, []any{reason, db.timeArg(now), string(status), nextAt,
			id, string(billing.NoticePending), attempts}, &vin)
		if err != nil || !found || !dead {
			return err
		}
		tx.audit(billing.AuditEntry{At: now, Action: billing.AuditNoticeDead, VIN: billing.VIN(vin),
			Before: billing.Fields{"notice_id": id, "status": string(billing.NoticePending)},
			After:  billing.Fields{"notice_id": id, "status": string(billing.NoticeDead), "attempts": attempts, "last_error": reason}})
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark notice %s failed: %w", id, err)
	}
	return nil
}

var (
	noticeSentStmt = statement{"notice/sent", func() string {
		return `UPDATE notices SET status = ?, sent_at = ?, last_error = '', updated_at = ? WHERE id = ? AND status <> ?`
	}}
	noticeFailedStmt = statement{"notice/failed", func() string {
		return `UPDATE notices SET last_error = ?, updated_at = ?, status = ?, next_attempt_at = COALESCE(?, next_attempt_at)
			WHERE id = ? AND status = ? AND attempts = ?
			RETURNING vin`
	}}
)

// NoticeBacklog counts the notices still waiting (pending) and given up
// (dead), by status.
func (db *DB) NoticeBacklog(ctx context.Context) (map[billing.NoticeStatus]int, error) {
	var rows []struct {
		Status string
		N      int
	}
	err := db.read.WithContext(ctx).Raw(`SELECT status, COUNT(*) AS n FROM notices WHERE status IN ? GROUP BY status`,
		[]string{string(billing.NoticePending), string(billing.NoticeDead)}).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count notices: %w", err)
	}
	out := map[billing.NoticeStatus]int{billing.NoticePending: 0, billing.NoticeDead: 0}
	for _, r := range rows {
		out[billing.NoticeStatus(r.Status)] = r.N
	}
	return out, nil
}

// pickNotices returns the ids of up to limit pending notices due at now.
func (db *DB) pickNotices(tx *Tx, now time.Time, limit int) ([]string, error) {
	rows, err := tx.query(db.pickNoticesStmt(), string(billing.NoticePending), db.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("pick due notices: %w", err)
	}
	var ids []string
	err = eachRow(rows, func() error {
		var id string
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pick due notices: %w", err)
	}
	return ids, nil
}

// mootNotice is a reminder supersedeNotices marked.
type mootNotice struct{ id, vin string }

// supersedeNotices marks the moot reminders among list (idList) superseded
// and returns them.
func (db *DB) supersedeNotices(tx *Tx, list []any, now time.Time) ([]mootNotice, error) {
	args := append([]any{string(billing.NoticeSuperseded), db.timeArg(now)}, list...)
	rows, err := tx.query(supersedeStmt(len(list)), append(args, string(billing.NoticePending), string(billing.NoticeExpiring))...)
	if err != nil {
		return nil, fmt.Errorf("supersede notices: %w", err)
	}
	var moot []mootNotice
	err = eachRow(rows, func() error {
		var m mootNotice
		err := rows.Scan(&m.id, &m.vin)
		moot = append(moot, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("supersede notices: %w", err)
	}
	return moot, nil
}

// claimedNotices reads the pending notices of list (idList), in the order
// they are sent.
func (db *DB) claimedNotices(tx *Tx, list []any) ([]noticeRow, error) {
	rows, err := tx.query(db.claimedNoticesStmt(len(list)), append(list, string(billing.NoticePending))...)
	if err != nil {
		return nil, fmt.Errorf("read claimed notices: %w", err)
	}
	var out []noticeRow
	err = eachRow(rows, func() error {
		var r noticeRow
		var covered, next, created, updated, sent dbTime
		err := rows.Scan(&r.ID, &r.VIN, &r.OwnerID, &r.Kind, &r.DedupeKey, &r.Stage, &covered, &r.Data, &r.Status,
			&r.Attempts, &next, &r.LastError, &created, &updated, &sent)
		r.CoveredUntil, r.SentAt = covered.ptr(), sent.ptr()
		r.NextAttemptAt, r.CreatedAt, r.UpdatedAt = next.T, created.T, updated.T
		out = append(out, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read claimed notices: %w", err)
	}
	return out, nil
}
