package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
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

// insertNotice adds n to the outbox inside tx unless a notice with the same
// dedupe key exists. It reports whether it was created. Callers pass the
// transaction of the change that caused the notice, so that the change and
// its notice commit or roll back together.
func insertNotice(tx *gorm.DB, n billing.Notice, now time.Time) (bool, error) {
	created, err := insertNotices(tx, []billing.Notice{n}, now)
	return created == 1, err
}

// insertNotices adds ns to the outbox in one statement, skipping those
// whose dedupe key exists, and returns how many it created.
func insertNotices(tx *gorm.DB, ns []billing.Notice, now time.Time) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	rows := make([]noticeRow, len(ns))
	for i, n := range ns {
		r, err := newNoticeRow(n, now)
		if err != nil {
			return 0, err
		}
		rows[i] = r
	}
	res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "dedupe_key"}}, DoNothing: true}).Create(&rows)
	if res.Error != nil {
		return 0, fmt.Errorf("insert notices (%s, ...): %w", ns[0].DedupeKey, res.Error)
	}
	return int(res.RowsAffected), nil
}

func newNoticeRow(n billing.Notice, now time.Time) (noticeRow, error) {
	data, err := json.Marshal(n.Data)
	if err != nil {
		return noticeRow{}, fmt.Errorf("encode notice data: %w", err)
	}
	row := noticeRow{
		ID:            n.ID,
		VIN:           string(n.VIN),
		OwnerID:       n.OwnerID,
		Kind:          string(n.Kind),
		DedupeKey:     n.DedupeKey,
		Stage:         n.Stage,
		CoveredUntil:  utcp(n.CoveredUntil),
		Data:          string(data),
		Status:        string(billing.NoticePending),
		NextAttemptAt: utc(now),
		CreatedAt:     utc(now),
		UpdatedAt:     utc(now),
	}
	if row.ID == "" {
		row.ID = newID("ntc", now)
	}
	return row, nil
}

// Notices returns the vehicle's notices, newest first, at most limit.
func (db *DB) Notices(ctx context.Context, vin billing.VIN, limit int) ([]billing.Notice, error) {
	var rows []noticeRow
	err := db.read.WithContext(ctx).Where("vin = ?", string(vin)).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list notices %s: %w", vin, err)
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
