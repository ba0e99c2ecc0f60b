package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
)

// noticeRow is the stored form of billing.Notice (the outbox).
type noticeRow struct {
	ID            string `gorm:"primaryKey"`
	VIN           string `gorm:"column:vin"`
	OwnerID       string
	Kind          string
	DedupeKey     string
	Stage         int
	CoveredUntil  *time.Time
	Data          string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SentAt        *time.Time
}

func (noticeRow) TableName() string { return "notices" }

func (r noticeRow) notice() (billing.Notice, error) {
	n := billing.Notice{
		ID:            r.ID,
		VIN:           billing.VIN(r.VIN),
		OwnerID:       r.OwnerID,
		Kind:          billing.NoticeKind(r.Kind),
		DedupeKey:     r.DedupeKey,
		Stage:         r.Stage,
		Status:        billing.NoticeStatus(r.Status),
		Attempts:      r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(),
		LastError:     r.LastError,
		CreatedAt:     r.CreatedAt.UTC(),
	}
	if r.SentAt != nil {
		t := r.SentAt.UTC()
		n.SentAt = &t
	}
	if r.CoveredUntil != nil {
		t := r.CoveredUntil.UTC()
		n.CoveredUntil = &t
	}
	if err := json.Unmarshal([]byte(r.Data), &n.Data); err != nil {
		return n, fmt.Errorf("notice %s: decode data: %w", r.ID, err)
	}
	return n, nil
}

// insertNotice adds n to the outbox inside tx unless it exists (see
// insertNotices). It reports whether it was created. Callers pass the
// transaction of the change that caused the notice, so that the change and
// its notice commit or roll back together.
func (db *DB) insertNotice(tx *gorm.DB, n billing.Notice, now time.Time) (bool, error) {
	created, err := db.insertNotices(tx, []billing.Notice{n}, now)
	return created == 1, err
}

// insertNotices adds ns to the outbox, skipping those that exist, and
// returns how many it created. A coverage notice exists when one has the
// same (kind, covered_until, vin, stage), any other when one has its
// dedupe key (migration 32): for a coverage notice both say the same, and
// the first is cheaper to index. It sends multi-row INSERTs of statements
// prepared once (prepareNotices): the jobs insert thousands of
// notices a run, and gorm's reflection over each row cost more than
// SQLite's insert.
func (db *DB) insertNotices(tx *gorm.DB, ns []billing.Notice, now time.Time) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	args := make([]any, 0, noticeShared+len(ns)*noticeCols)
	at := db.timeArg(now)
	args = append(args, string(billing.NoticePending), at, at, at)
	for _, n := range ns {
		data, err := json.Marshal(n.Data)
		if err != nil {
			return 0, fmt.Errorf("encode notice data: %w", err)
		}
		id := n.ID
		if id == "" {
			id = newID("ntc", now)
		}
		var covered any
		if n.CoveredUntil != nil {
			covered = db.timeArg(*n.CoveredUntil)
		}
		args = append(args, id, string(n.VIN), n.OwnerID, string(n.Kind), n.DedupeKey, n.Stage, covered, string(data))
	}
	shared, rows := args[:noticeShared], args[noticeShared:]
	created := 0
	for _, size := range chunkSizes(len(ns), noticeRowsPerStatement) {
		part := append(append(make([]any, 0, noticeShared+size*noticeCols), shared...), rows[:size*noticeCols]...)
		rows = rows[size*noticeCols:]
		res, err := db.txExec(tx, db.insertNoticesSQL(size), part...)
		if err != nil {
			return created, fmt.Errorf("insert notices (%s, ...): %w", ns[0].DedupeKey, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return created, err
		}
		created += int(n)
	}
	return created, nil
}

const (
	noticeRowsPerStatement = 256
	noticeCols             = 8 // id, vin, owner_id, kind, dedupe_key, stage, covered_until, data
	noticeShared           = 4 // status, next_attempt_at, created_at, updated_at: the same for every row
)

// insertNoticesSQL inserts rows notices; the shared variables come first.
func (db *DB) insertNoticesSQL(rows int) statement {
	return statement{key: "notices/insert/" + strconv.Itoa(rows), query: func() string {
		return `INSERT INTO notices (id, vin, owner_id, kind, dedupe_key, stage, covered_until, data,
			status, next_attempt_at, created_at, updated_at) VALUES ` + db.valuesList(rows, noticeCols, noticeShared) +
			` ON CONFLICT DO NOTHING`
	}}
}

// prepareNotices prepares the outbox inserts on the writer pool, once
// (Migrate calls it, when the table exists). Until then they are prepared
// in each transaction.
func (db *DB) prepareNotices(ctx context.Context) error {
	return db.prepareWrites(ctx, "notices", func() []statement {
		var qs []statement
		for n := noticeRowsPerStatement; n > 0; n /= 2 {
			qs = append(qs, db.insertNoticesSQL(n))
		}
		return qs
	})
}

// Notices returns the vehicle's notices, newest first, at most limit.
func (db *DB) Notices(ctx context.Context, vin billing.VIN, limit int) ([]billing.Notice, error) {
	return db.QueryNotices(ctx, billing.NoticeQuery{VIN: vin, Limit: limit})
}

// QueryNotices returns the notices q selects, newest first: the filter is
// in the query, so that the limit counts only notices the caller may see.
func (db *DB) QueryNotices(ctx context.Context, q billing.NoticeQuery) ([]billing.Notice, error) {
	tx := db.read.WithContext(ctx).Where("vin = ?", string(q.VIN))
	if q.OwnerID != "" {
		tx = tx.Where("owner_id = ?", q.OwnerID)
	}
	var rows []noticeRow
	if err := tx.Order("created_at DESC, id DESC").Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list notices %s: %w", q.VIN, err)
	}
	out := make([]billing.Notice, 0, len(rows))
	for _, r := range rows {
		n, err := r.notice()
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// noticesAddressedToPayer addresses the money notices stored before they
// were addressed to the owner who placed the order (billing.OrderPaidNotice):
// an order.paid or refund.issued written after the car changed hands named
// the new owner, who would see the previous owner's payment. The order is
// found through the dedupe key ("order.paid:<order id>",
// "refund.issued:<refund id>"); a notice whose order is gone is left as it
// is. It reads the notices once.
var noticesAddressedToPayer = migration{Version: 33, Name: "notices: money notices addressed to the owner who placed the order", Up: []string{
	`UPDATE notices SET owner_id = (SELECT o.owner_id FROM orders o WHERE o.id = substr(notices.dedupe_key, 12))
	WHERE kind = 'order.paid' AND owner_id <> (SELECT o.owner_id FROM orders o WHERE o.id = substr(notices.dedupe_key, 12))`,
	`UPDATE notices SET owner_id = (SELECT o.owner_id FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = substr(notices.dedupe_key, 15))
	WHERE kind = 'refund.issued' AND owner_id <> (SELECT o.owner_id FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = substr(notices.dedupe_key, 15))`,
}}
