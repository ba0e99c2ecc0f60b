package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"entitlements/billing"
)

// periodRow is the stored form of billing.Period.
type periodRow struct {
	ID                string `gorm:"primaryKey"`
	VIN               string `gorm:"column:vin"`
	Seq               int
	Source            string
	OrderID           *string
	Product           string
	Days              int
	DataBytesPerMonth int64
	PaidAt            *time.Time
	StartsAt          time.Time
	EndsAt            time.Time
	RefundedAt        *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

func (periodRow) TableName() string { return "periods" }

// period is the billing form of the row.
func (r periodRow) period() billing.Period {
	p := billing.Period{ID: r.ID, VIN: billing.VIN(r.VIN), Source: billing.Source(r.Source), Product: r.Product, Days: r.Days,
		DataBytesPerMonth: r.DataBytesPerMonth, StartsAt: utc(r.StartsAt), EndsAt: utc(r.EndsAt), RefundedAt: utcp(r.RefundedAt), Seq: r.Seq}
	if r.OrderID != nil {
		p.OrderID = *r.OrderID
	}
	if r.PaidAt != nil {
		p.PaidAt = utc(*r.PaidAt)
	}
	return p
}

func newPeriodRow(p billing.Period, now time.Time) periodRow {
	r := periodRow{
		ID:                p.ID,
		VIN:               string(p.VIN),
		Seq:               p.Seq,
		Source:            string(p.Source),
		Product:           p.Product,
		Days:              p.Days,
		DataBytesPerMonth: p.DataBytesPerMonth,
		StartsAt:          utc(p.StartsAt),
		EndsAt:            utc(p.EndsAt),
		RefundedAt:        utcp(p.RefundedAt),
		CreatedAt:         utc(now),
		UpdatedAt:         utc(now),
	}
	if r.ID == "" {
		r.ID = newID("per", now)
	}
	if p.OrderID != "" {
		r.OrderID = &p.OrderID
	}
	if !p.PaidAt.IsZero() {
		t := utc(p.PaidAt)
		r.PaidAt = &t
	}
	return r
}

// Timeline returns the vehicle's periods, refunded ones included.
// It returns EVehicleNotFound only through Vehicle; an unknown VIN simply
// has an empty timeline here.
func (db *DB) Timeline(ctx context.Context, vin billing.VIN) (billing.Timeline, error) {
	return db.timeline(db.onReader(ctx), vin)
}

// savePeriodTimes writes new start and end times of laid-out periods.
func savePeriodTimes(tx *Tx, ps []billing.Period, now time.Time) error {
	for _, p := range ps {
		tx.touch(p.VIN)
		if err := tx.periodWritten(p, false); err != nil {
			return err
		}
		_, err := tx.exec(periodTimesStmt, tx.db.timeArg(p.StartsAt), tx.db.timeArg(p.EndsAt), tx.db.timeArg(now), p.ID)
		if err != nil {
			return fmt.Errorf("save period %s: %w", p.ID, err)
		}
	}
	return nil
}

// setCoverageEnd keeps vehicles.coverage_ends_at equal to the end of the
// vehicle's last non-refunded period, and covered_since to the start of
// the stretch of coverage that ends there (billing.Timeline's End and
// CoveredSince; NULL when there is none); set-based jobs (reminders)
// query them.
func setCoverageEnd(tx *Tx, vin billing.VIN, end, since, now time.Time) error {
	tx.touch(vin)
	if err := tx.timelineChanged(vin); err != nil {
		return err
	}
	_, err := tx.exec(coverageEndStmt, tx.db.timeArg(end), tx.db.timeOrNull(since), tx.db.timeArg(now), string(vin))
	return err
}

var periodTimesStmt = statement{"period/times", func() string {
	return `UPDATE periods SET starts_at = ?, ends_at = ?, updated_at = ? WHERE id = ?`
}}

// newID returns a unique, roughly time-ordered identifier such as
// "ord_0192f0c1a2b3c4d5e6f7a8b9c0d1e2f3": a prefix, 48 bits of
// milliseconds and 80 random bits, hex encoded.
func newID(prefix string, now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}

// page keeps the first limit of rows fetched with LIMIT limit+1 and, when
// there were more, returns the cursor of the last row kept.
func page[R any](rows []R, limit int, cursor func(R) billing.Cursor) ([]R, *billing.Cursor) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	c := cursor(rows[limit-1])
	return rows, &c
}
