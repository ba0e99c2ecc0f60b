package store

import (
	"context"
	"fmt"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
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
	defer db.forget(vin)
	err = db.tx(ctx, func(tx *gorm.DB) error {
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
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("insert vehicle: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			existing, err := db.vehicle(db.inTx(tx), vin, false)
			if err != nil {
				return err
			}
			if !existing.ActivatedAt.Equal(utc(a.ActivatedAt)) {
				return billing.Errorf(billing.EAlreadyActivated, "vehicle %s was activated at %s", vin, billing.Stamp(existing.ActivatedAt, loc))
			}
			v = existing
			return nil
		}
		pr := newPeriodRow(tp, now)
		if err := tx.Create(&pr).Error; err != nil {
			return fmt.Errorf("insert trial period: %w", err)
		}
		v, created = row.vehicle(), true
		return nil
	})
	return v, created, err
}

// TransferOwner makes ownerID the vehicle's owner. Every period stays: the
// benefit belongs to the car. The previous owner's unpaid orders for it are
// cancelled in the same transaction (a payment that still arrives makes
// its order paid: the money was taken). Transferring to the current owner
// is a no-op. A transfer raises the vehicle's epoch: the previous owner's
// car app may hold certificates that must no longer count.
func (db *DB) TransferOwner(ctx context.Context, vin billing.VIN, ownerID string, now time.Time) (billing.Vehicle, error) {
	defer db.forget(vin)
	var v billing.Vehicle
	err := db.tx(ctx, func(tx *gorm.DB) error {
		cur, err := db.vehicle(db.inTx(tx), vin, true)
		if err != nil {
			return err
		}
		v = cur
		if cur.OwnerID == ownerID {
			return nil
		}
		err = tx.Model(&vehicleRow{}).Where("vin = ?", string(vin)).
			Updates(map[string]any{"owner_id": ownerID, "updated_at": utc(now), "epoch": gorm.Expr("epoch + 1")}).Error
		if err != nil {
			return fmt.Errorf("transfer %s: %w", vin, err)
		}
		if err := cancelPendingOrders(tx, vin, cur.OwnerID, now); err != nil {
			return err
		}
		v.OwnerID, v.UpdatedAt = ownerID, utc(now)
		return nil
	})
	return v, err
}
