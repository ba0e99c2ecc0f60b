package billing

import "time"

// Vehicle is an activated car. It exists from its activation on.
type Vehicle struct {
	VIN         VIN
	OwnerID     string
	Model       string
	ActivatedAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Epoch increases whenever the vehicle's coverage shrinks (a refund
	// that cuts or removes a period, an ownership transfer): a car that
	// sees a higher epoch online discards certificates of a lower one.
	// It is read with the entitlement snapshot.
	Epoch int64
}

// Activation is a request from the delivery system to activate a car.
type Activation struct {
	ActivatedAt time.Time
	OwnerID     string
	Model       string
}

// Earliest activation the service accepts, and how far ahead of the clock
// an activation may be stamped (clock skew between systems).
var (
	EarliestActivation = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	ActivationSkew     = 5 * time.Minute
)

// Validate checks an activation against the rules of SPEC section 2: an
// owner id (OwnerIDField), a model (ModelField), and a time not in the future (beyond ActivationSkew)
// nor before EarliestActivation. now is the request's clock reading.
func (a Activation) Validate(now time.Time) error {
	var fields []FieldError
	if a.ActivatedAt.IsZero() {
		fields = append(fields, FieldError{"activated_at", "required"})
	} else if a.ActivatedAt.After(now.Add(ActivationSkew)) {
		fields = append(fields, FieldError{"activated_at", "in_future"})
	} else if a.ActivatedAt.Before(EarliestActivation) {
		fields = append(fields, FieldError{"activated_at", "too_early"})
	}
	fields = OwnerIDField.AppendCheck(fields, a.OwnerID)
	fields = ModelField.AppendCheck(fields, a.Model)
	if len(fields) > 0 {
		return Invalid("activation is not valid", fields...)
	}
	return nil
}

// ValidateOwnerID checks an owner id against OwnerIDField: 1 to 128
// visible characters without spaces.
func ValidateOwnerID(id string) error { return OwnerIDField.Error(id) }

// TrialTerms configure the free first year.
type TrialTerms struct {
	Months            int
	DataBytesPerMonth int64
}

// TrialPeriod returns the vehicle's free period: from local midnight of the
// activation day in loc to local midnight of the same date Months later,
// clamped at month end.
func (t TrialTerms) TrialPeriod(vin VIN, activatedAt time.Time, loc *time.Location) Period {
	return Period{
		VIN:               vin,
		Source:            SourceTrial,
		Product:           string(SourceTrial),
		DataBytesPerMonth: t.DataBytesPerMonth,
		StartsAt:          LocalMidnight(activatedAt, loc).UTC(),
		EndsAt:            AddMonthsClamped(activatedAt, t.Months, loc).UTC(),
		Seq:               0,
	}
}
