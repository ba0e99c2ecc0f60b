package api

import (
	"net/http"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// Endpoints the console reads besides the ones every client uses: the
// vehicles of an owner and the dry run of a refund.

type vehicleSummaryView struct {
	VIN         string `json:"vin"`
	OwnerID     string `json:"owner_id"`
	Model       string `json:"model"`
	ActivatedAt string `json:"activated_at"`
}

type vehicleListView struct {
	Vehicles   []vehicleSummaryView `json:"vehicles"`
	NextCursor *string              `json:"next_cursor"`
}

// listVehicles handles GET /v1/vehicles?owner_id= (billing, ops): the
// owner's vehicles, most recently activated first, a page at a time.
func (s *Server) listVehicles(c *gin.Context) {
	limit, cur, err := pageParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	owner := c.Query("owner_id")
	if err := billing.OwnerIDField.Error(owner); err != nil {
		s.fail(c, err)
		return
	}
	vs, next, err := s.store.VehiclesOf(c.Request.Context(), owner, cur, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := vehicleListView{Vehicles: make([]vehicleSummaryView, len(vs)), NextCursor: encodeCursor(next)}
	for i, v := range vs {
		out.Vehicles[i] = vehicleSummaryView{VIN: string(v.VIN), OwnerID: v.OwnerID, Model: v.Model, ActivatedAt: stamp(v.ActivatedAt, s.loc)}
	}
	c.JSON(http.StatusOK, out)
}

// refundPreviewView is the answer of POST /v1/orders/{id}/refunds?dry_run=true.
type refundPreviewView struct {
	DryRun       bool                 `json:"dry_run"`
	OrderID      string               `json:"order_id"`
	VIN          string               `json:"vin"`
	AmountFen    int64                `json:"amount_fen"`
	Currency     string               `json:"currency"`
	Reason       billing.RefundReason `json:"reason"`
	Note         string               `json:"note"`
	EndAccess    bool                 `json:"end_access"`
	PeriodAction billing.PeriodAction `json:"period_action"`
	CoveredUntil *string              `json:"covered_until"`
	Periods      []periodView         `json:"periods"`
	EvaluatedAt  string               `json:"evaluated_at"`
}

// dryRun reads ?dry_run= of POST /v1/orders/{id}/refunds: absent or
// "false" is a real refund, "true" a dry run.
func dryRun(c *gin.Context) (bool, error) {
	fields := queryProblems(c)
	dry := false
	switch raw, ok := c.GetQuery("dry_run"); {
	case !ok, raw == "false":
	case raw == "true":
		dry = true
	default:
		fields = append(fields, billing.FieldError{Field: "dry_run", Code: "invalid"})
	}
	if len(fields) > 0 {
		return false, billing.Invalid("dry_run must be true or false", fields...)
	}
	return dry, nil
}

// previewRefund answers what the refund req of the path's order would do,
// without doing it (store PreviewRefund: the same transaction, rolled
// back): 200 with the amount and the vehicle's periods after it.
func (s *Server) previewRefund(c *gin.Context, req billing.RefundRequest) {
	now := s.now()
	r, tl, err := s.store.PreviewRefund(c.Request.Context(), c.Param("id"), req, principal(c).Subject, s.loc, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, refundPreviewView{
		DryRun: true, OrderID: r.OrderID, VIN: string(r.VIN), AmountFen: r.AmountFen, Currency: r.Currency,
		Reason: r.Reason, Note: r.Note, EndAccess: r.EndAccess, PeriodAction: r.PeriodAction,
		CoveredUntil: stampPtr(tl.At(now).CoveredUntil, s.loc),
		Periods:      periodViews(tl, now, s.loc),
		EvaluatedAt:  stamp(now, s.loc),
	})
}

// periodViews shows the timeline's periods with their status at now.
func periodViews(tl billing.Timeline, now time.Time, loc *time.Location) []periodView {
	out := make([]periodView, 0, len(tl.Periods))
	for _, p := range tl.Periods {
		pv := periodView{
			ID: p.ID, Source: p.Source, OrderID: strPtr(p.OrderID), Product: p.Product,
			StartsAt: stamp(p.StartsAt, loc), EndsAt: stamp(p.EndsAt, loc), Status: p.Status(now),
		}
		if p.RefundedAt != nil {
			pv.RefundedAt = stampPtr(*p.RefundedAt, loc)
		}
		out = append(out, pv)
	}
	return out
}
