package billing

import "time"

// Usage is a vehicle's recorded data use in one cycle.
type Usage struct {
	EntertainmentBytes int64
	BasicBytes         int64
	AsOf               time.Time // latest usage record time seen for the vehicle; zero if none
}

// DataStatus is the data block of the entitlement view.
type DataStatus struct {
	Cycle          Cycle
	AllowanceBytes int64 // 0 with Unlimited=true means no cap; 0 with Unlimited=false means nothing granted
	Unlimited      bool
	UsedBytes      int64 // entertainment bytes in the cycle; basic traffic never counts
	RemainingBytes int64 // 0 when unlimited or not covered
	Throttled      bool
	AsOf           time.Time
}

// Quota computes the data status for the cycle containing now. The
// allowance comes from the period covering now; an uncovered car has none.
func Quota(cov Coverage, cycle Cycle, u Usage) DataStatus {
	ds := DataStatus{Cycle: cycle, UsedBytes: u.EntertainmentBytes, AsOf: u.AsOf}
	if !cov.Covered {
		return ds
	}
	ds.AllowanceBytes = cov.Current.DataBytesPerMonth
	if ds.AllowanceBytes == 0 {
		ds.Unlimited = true
		return ds
	}
	if rem := ds.AllowanceBytes - ds.UsedBytes; rem > 0 {
		ds.RemainingBytes = rem
	} else {
		ds.Throttled = true
	}
	return ds
}
