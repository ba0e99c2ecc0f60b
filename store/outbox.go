package store

import (
	"context"
	"errors"
	"fmt"
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

// supersedeSQL marks the given pending coverage.expiring notices
// superseded when the vehicle's coverage end has moved since they were
// created (a purchase or a refund), or when a nearer stage exists for the
// same coverage end (only the nearest due stage is sent). It is applied to
// the notices being claimed, so its cost is bounded by the batch. It
// returns the (id, vin) of each notice it marks, for the audit trail.
const supersedeSQL = `UPDATE notices SET status = ?, updated_at = ?
	WHERE id IN ? AND status = ? AND kind = ? AND (
		covered_until <> (SELECT v.coverage_ends_at FROM vehicles v WHERE v.vin = notices.vin)
		OR EXISTS (SELECT 1 FROM notices n2 WHERE n2.vin = notices.vin AND n2.kind = notices.kind
			AND n2.covered_until = notices.covered_until AND n2.stage < notices.stage))
	RETURNING id, vin`

// ClaimNotices takes up to limit pending notices due at now, oldest due
// first. Reminders among them that are moot are marked superseded (and
// counted); the others are claimed: their attempts are counted and their
// next_attempt_at set to now+lease, so that no other run sends them until
// the lease ends. The caller must then mark each claimed notice sent or
// failed; if it never does (a crash), the notice is due again after the
// lease. It takes nothing when another replica is claiming at the moment.
func (db *DB) ClaimNotices(ctx context.Context, now time.Time, limit int, lease time.Duration) (claimed []billing.Notice, superseded int, err error) {
	pick := `SELECT id FROM notices WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`
	if db.dialect == Postgres {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	pending := string(billing.NoticePending)
	var rows []noticeRow
	err = db.jobWrite(ctx, JobDeliver, func(tx *Tx) error {
		var ids []string
		if err := tx.g.Raw(pick, pending, utc(now), limit).Scan(&ids).Error; err != nil {
			return fmt.Errorf("pick due notices: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		var moot []struct{ ID, VIN string }
		err := tx.g.Raw(supersedeSQL, string(billing.NoticeSuperseded), utc(now), ids, pending, string(billing.NoticeExpiring)).
			Scan(&moot).Error
		if err != nil {
			return fmt.Errorf("supersede notices: %w", err)
		}
		superseded = len(moot)
		for _, m := range moot {
			tx.audit(billing.AuditEntry{At: now, Action: billing.AuditNoticeSuperseded, VIN: billing.VIN(m.VIN),
				Before: billing.Fields{"notice_id": m.ID, "status": pending},
				After:  billing.Fields{"notice_id": m.ID, "status": string(billing.NoticeSuperseded)}})
		}
		err = tx.g.Exec(`UPDATE notices SET next_attempt_at = ?, attempts = attempts + 1, updated_at = ? WHERE id IN ? AND status = ?`,
			utc(now.Add(lease)), utc(now), ids, pending).Error
		if err != nil {
			return fmt.Errorf("claim notices: %w", err)
		}
		return tx.g.Where("id IN ? AND status = ?", ids, pending).Order("next_attempt_at, id").Find(&rows).Error
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
