package store

import (
	"context"
	"fmt"

	"entitlements/billing"
)

// VehiclesOf returns a page of the vehicles ownerID owns, most recently
// activated first, and the cursor of the next page (nil on the last page).
// The cursor is the last vehicle's activation time and VIN.
func (db *DB) VehiclesOf(ctx context.Context, ownerID string, after *billing.Cursor, limit int) ([]billing.Vehicle, *billing.Cursor, error) {
	tx := db.read.WithContext(ctx).Where("owner_id = ?", ownerID)
	if after != nil {
		at := utc(after.At)
		tx = tx.Where("(activated_at < ? OR (activated_at = ? AND vin < ?))", at, at, after.ID)
	}
	var rows []vehicleRow
	if err := tx.Order("activated_at DESC, vin DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list vehicles of %s: %w", ownerID, err)
	}
	rows, next := page(rows, limit, func(r vehicleRow) billing.Cursor { return billing.Cursor{At: r.ActivatedAt.UTC(), ID: r.VIN} })
	out := make([]billing.Vehicle, len(rows))
	for i, r := range rows {
		out[i] = r.vehicle()
	}
	return out, next, nil
}
