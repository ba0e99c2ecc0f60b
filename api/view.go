package api

import (
	"time"

	"entitlements/billing"
)

// Response shapes of SPEC section 4. Times are RFC 3339 in the configured
// zone; absent times are null.

type entitlementView struct {
	VIN          string         `json:"vin"`
	OwnerID      string         `json:"owner_id"`
	Model        string         `json:"model"`
	ActivatedAt  string         `json:"activated_at"`
	State        billing.State  `json:"state"`
	Covered      bool           `json:"covered"`
	CoveredUntil *string        `json:"covered_until"`
	DaysLeft     int            `json:"days_left"`
	Periods      []periodView   `json:"periods"`
	Data         dataView       `json:"data"`
	Features     []decisionView `json:"features"`
	AsOf         string         `json:"evaluated_at"`
	Epoch        int64          `json:"epoch"`
	Point        *pointView     `json:"point_in_time,omitempty"`
}

type periodView struct {
	ID         string               `json:"id"`
	Source     billing.Source       `json:"source"`
	OrderID    *string              `json:"order_id"`
	Product    string               `json:"product"`
	StartsAt   string               `json:"starts_at"`
	EndsAt     string               `json:"ends_at"`
	Status     billing.PeriodStatus `json:"status"`
	RefundedAt *string              `json:"refunded_at"`
}

type dataView struct {
	CycleStart     string  `json:"cycle_start"`
	CycleEnd       string  `json:"cycle_end"`
	AllowanceBytes int64   `json:"allowance_bytes"`
	Unlimited      bool    `json:"unlimited"`
	UsedBytes      int64   `json:"used_bytes"`
	RemainingBytes int64   `json:"remaining_bytes"`
	Throttled      bool    `json:"throttled"`
	AsOf           *string `json:"as_of"`
}

type decisionView struct {
	Code      string         `json:"code"`
	Tier      billing.Tier   `json:"tier"`
	Allowed   bool           `json:"allowed"`
	Throttled bool           `json:"throttled"`
	Reason    billing.Reason `json:"reason"`
}

type featureListView struct {
	VIN          string         `json:"vin"`
	Covered      bool           `json:"covered"`
	CoveredUntil *string        `json:"covered_until"`
	Features     []decisionView `json:"features"`
	Epoch        int64          `json:"epoch"`
	Point        *pointView     `json:"point_in_time,omitempty"`
}

type featureDecisionView struct {
	Feature      string         `json:"feature"`
	Tier         billing.Tier   `json:"tier"`
	Allowed      bool           `json:"allowed"`
	Throttled    bool           `json:"throttled"`
	Reason       billing.Reason `json:"reason"`
	CoveredUntil *string        `json:"covered_until"`
	Epoch        int64          `json:"epoch"`
	Point        *pointView     `json:"point_in_time,omitempty"`
}

func stamp(t time.Time, loc *time.Location) string { return billing.Stamp(t, loc) }

func stampPtr(t time.Time, loc *time.Location) *string {
	if t.IsZero() {
		return nil
	}
	s := stamp(t, loc)
	return &s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) entitlementView(e billing.Entitlement) entitlementView {
	loc := s.loc
	v := entitlementView{
		VIN:          string(e.Vehicle.VIN),
		OwnerID:      e.Vehicle.OwnerID,
		Model:        e.Vehicle.Model,
		ActivatedAt:  stamp(e.Vehicle.ActivatedAt, loc),
		State:        e.Coverage.State(),
		Covered:      e.Coverage.Covered,
		CoveredUntil: stampPtr(e.Coverage.CoveredUntil, loc),
		DaysLeft:     e.Coverage.DaysLeft(e.Now),
		Periods:      periodViews(e.Timeline, e.Now, loc),
		Data: dataView{
			CycleStart:     stamp(e.Data.Cycle.Start, loc),
			CycleEnd:       stamp(e.Data.Cycle.End, loc),
			AllowanceBytes: e.Data.AllowanceBytes,
			Unlimited:      e.Data.Unlimited,
			UsedBytes:      e.Data.UsedBytes,
			RemainingBytes: e.Data.RemainingBytes,
			Throttled:      e.Data.Throttled,
			AsOf:           stampPtr(e.Data.AsOf, loc),
		},
		Features: decisionViews(e.Features),
		AsOf:     stamp(e.Now, loc),
		Epoch:    e.Vehicle.Epoch,
	}
	return v
}

func decisionViews(ds []billing.Decision) []decisionView {
	out := make([]decisionView, len(ds))
	for i, d := range ds {
		out[i] = decisionView{Code: d.Feature, Tier: d.Tier, Allowed: d.Allowed, Throttled: d.Throttled, Reason: d.Reason}
	}
	return out
}

// featureListView: e is nil for a vehicle that is not activated.
func featureListViewOf(vin billing.VIN, ds []billing.Decision, e *billing.Entitlement, loc *time.Location) featureListView {
	v := featureListView{VIN: string(vin), Features: decisionViews(ds)}
	if e != nil {
		v.Covered = e.Coverage.Covered
		v.CoveredUntil = stampPtr(e.Coverage.CoveredUntil, loc)
		v.Epoch = e.Vehicle.Epoch
	}
	return v
}

func featureView(d billing.Decision, e *billing.Entitlement, loc *time.Location) featureDecisionView {
	v := featureDecisionView{Feature: d.Feature, Tier: d.Tier, Allowed: d.Allowed, Throttled: d.Throttled, Reason: d.Reason}
	if e != nil {
		v.CoveredUntil = stampPtr(e.Coverage.CoveredUntil, loc)
		v.Epoch = e.Vehicle.Epoch
	}
	return v
}
