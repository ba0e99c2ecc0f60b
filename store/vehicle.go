package store

import (
	"context"
	"fmt"
	"time"

	"entitlements/billing"
)

// vehicleRow is the stored form of billing.Vehicle.
type vehicleRow struct {
	VIN            string `gorm:"column:vin;primaryKey"`
	OwnerID        string
	Model          string
	ActivatedAt    time.Time
	CoverageEndsAt time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (vehicleRow) TableName() string { return "vehicles" }

func (r vehicleRow) vehicle() billing.Vehicle {
	return billing.Vehicle{
		VIN:         billing.VIN(r.VIN),
		OwnerID:     r.OwnerID,
		Model:       r.Model,
		ActivatedAt: r.ActivatedAt.UTC(),
		CreatedAt:   r.CreatedAt.UTC(),
		UpdatedAt:   r.UpdatedAt.UTC(),
	}
}

// Vehicle returns the vehicle, or EVehicleNotFound.
func (db *DB) Vehicle(ctx context.Context, vin billing.VIN) (billing.Vehicle, error) {
	return db.vehicle(db.onReader(ctx), vin, false)
}

// Activate activates vin with its free trial. Activating again with the
// same activated_at changes nothing and returns created=false; another
// activated_at is EAlreadyActivated. Concurrent calls for one VIN create
// the vehicle once.
func (db *DB) Activate(ctx context.Context, vin billing.VIN, a billing.Activation, trial billing.TrialTerms, loc *time.Location, now time.Time) (v billing.Vehicle, created bool, err error) {
	err = db.write(ctx, []billing.VIN{vin}, func(tx *Tx) error {
		tp := trial.TrialPeriod(vin, a.ActivatedAt, loc)
		row := vehicleRow{
			VIN:            string(vin),
			OwnerID:        a.OwnerID,
			Model:          a.Model,
			ActivatedAt:    utc(a.ActivatedAt),
			CoverageEndsAt: utc(tp.EndsAt),
			CreatedAt:      utc(now),
			UpdatedAt:      utc(now),
		}
		if err := tx.timelineChanged(vin); err != nil {
			return err
		}
		since := billing.NewTimeline([]billing.Period{tp}).CoveredSince()
		n, err := tx.update(insertVehicleStmt, row.VIN, row.OwnerID, row.Model, db.timeArg(row.ActivatedAt),
			db.timeArg(row.CoverageEndsAt), db.timeOrNull(since), db.timeArg(now), db.timeArg(now))
		if err != nil {
			return fmt.Errorf("insert vehicle: %w", err)
		}
		if n == 0 {
			existing, err := db.vehicle(tx.query, vin, false)
			if err != nil {
				return err
			}
			if !existing.ActivatedAt.Equal(utc(a.ActivatedAt)) {
				return billing.Errorf(billing.EAlreadyActivated, "vehicle %s was activated at %s", vin, billing.Stamp(existing.ActivatedAt, loc))
			}
			v = existing
			return nil
		}
		if err := db.txInsertPeriod(tx, newPeriodRow(tp, now)); err != nil {
			return fmt.Errorf("insert trial period: %w", err)
		}
		tx.audit(billing.AuditEntry{At: now, Action: billing.AuditVehicleActivated, VIN: vin, After: billing.Fields{
			"owner_id": a.OwnerID, "model": a.Model, "activated_at": a.ActivatedAt, "coverage_ends_at": tp.EndsAt,
		}})
		v, created = row.vehicle(), true
		return nil
	})
	return v, created, err
}

var (
	insertVehicleStmt = statement{"vehicle/insert", func() string {
		return `INSERT INTO vehicles (vin, owner_id, model, activated_at, coverage_ends_at, covered_since, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	}}
	transferStmt = statement{"vehicle/transfer", func() string {
		return `UPDATE vehicles SET owner_id = ?, updated_at = ?, epoch = epoch + 1 WHERE vin = ?`
	}}
)

// TransferOwner makes ownerID the vehicle's owner. Every period stays: the
// benefit belongs to the car. The previous owner's unpaid orders for it are
// cancelled in the same transaction (a payment that still arrives makes
// its order paid: the money was taken). Transferring to the current owner
// is a no-op. A transfer raises the vehicle's epoch: the previous owner's
// car app may hold certificates that must no longer count.
func (db *DB) TransferOwner(ctx context.Context, vin billing.VIN, ownerID string, now time.Time) (billing.Vehicle, error) {
	var v billing.Vehicle
	err := db.write(ctx, []billing.VIN{vin}, func(tx *Tx) error {
		cur, err := db.vehicle(tx.query, vin, true)
		if err != nil {
			return err
		}
		v = cur
		if cur.OwnerID == ownerID {
			return nil
		}
		if err := tx.timelineChanged(vin); err != nil {
			return err
		}
		if _, err := tx.exec(transferStmt, ownerID, db.timeArg(now), string(vin)); err != nil {
			return fmt.Errorf("transfer %s: %w", vin, err)
		}
		cancelled, err := cancelPendingOrders(tx, vin, cur.OwnerID, now)
		if err != nil {
			return err
		}
		after := billing.Fields{"owner_id": ownerID}
		if len(cancelled) > 0 {
			after["cancelled_orders"] = cancelled
		}
		tx.audit(billing.AuditEntry{At: now, Action: billing.AuditOwnerTransferred, VIN: vin,
			Before: billing.Fields{"owner_id": cur.OwnerID}, After: after})
		v.OwnerID, v.UpdatedAt = ownerID, utc(now)
		return nil
	})
	return v, err
}
