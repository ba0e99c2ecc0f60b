package billing

import "time"

// Entitlement is everything a car or its owner may ask about at once.
type Entitlement struct {
	Vehicle  Vehicle
	Now      time.Time
	Timeline Timeline
	Coverage Coverage
	Data     DataStatus
	Features []Decision
}

// Evaluate builds the entitlement of v at now from its timeline and the
// usage of the cycle containing now. It is pure: the same inputs give the
// same answer, whatever the scheduler has or has not done.
func Evaluate(v Vehicle, tl Timeline, u Usage, c Catalog, now time.Time, loc *time.Location) Entitlement {
	cov := tl.At(now)
	data := Quota(cov, CycleAt(now, loc), u)
	sit := Situation{Activated: true, Covered: cov.Covered, QuotaExceeded: data.Throttled, Connection: ConnCellular}
	return Entitlement{
		Vehicle:  v,
		Now:      now,
		Timeline: tl,
		Coverage: cov,
		Data:     data,
		Features: c.Features.DecideAll(sit),
	}
}

// Feature decides one feature for the entitlement's situation over conn.
func (e Entitlement) Feature(code string, tier Tier, conn Connection) Decision {
	return Decide(code, tier, Situation{
		Activated:     true,
		Covered:       e.Coverage.Covered,
		QuotaExceeded: e.Data.Throttled,
		Connection:    conn,
	})
}
