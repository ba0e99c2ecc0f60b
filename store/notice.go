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
	data, err := json.Marshal(n.Data)
	if err != nil {
		return false, fmt.Errorf("encode notice data: %w", err)
	}
	row := noticeRow{
		ID:            n.ID,
		VIN:           string(n.VIN),
		OwnerID:       n.OwnerID,
		Kind:          string(n.Kind),
		DedupeKey:     n.DedupeKey,
		Data:          string(data),
		Status:        string(billing.NoticePending),
		NextAttemptAt: utc(now),
		CreatedAt:     utc(now),
		UpdatedAt:     utc(now),
	}
	if row.ID == "" {
		row.ID = newID("ntc", now)
	}
	res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "dedupe_key"}}, DoNothing: true}).Create(&row)
	if res.Error != nil {
		return false, fmt.Errorf("insert notice %s: %w", n.DedupeKey, res.Error)
	}
	return res.RowsAffected == 1, nil
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
