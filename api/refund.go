package api

import (
	"encoding/csv"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

type refundRequest struct {
	Reason    *string `json:"reason"`
	Note      *string `json:"note"`
	AmountFen *int64  `json:"amount_fen"`
	EndAccess *bool   `json:"end_access"`
}

type refundView struct {
	ID            string               `json:"id"`
	OrderID       string               `json:"order_id"`
	VIN           string               `json:"vin"`
	AmountFen     int64                `json:"amount_fen"`
	Currency      string               `json:"currency"`
	Reason        billing.RefundReason `json:"reason"`
	Note          string               `json:"note"`
	EndAccess     bool                 `json:"end_access"`
	PeriodAction  billing.PeriodAction `json:"period_action"`
	TransactionID *string              `json:"transaction_id"`
	CreatedBy     string               `json:"created_by"`
	CreatedAt     string               `json:"created_at"`
}

type refundListView struct {
	Refunds    []refundView `json:"refunds"`
	NextCursor *string      `json:"next_cursor"`
}

func (s *Server) refundView(r billing.Refund) refundView {
	return refundView{
		ID: r.ID, OrderID: r.OrderID, VIN: string(r.VIN), AmountFen: r.AmountFen, Currency: r.Currency,
		Reason: r.Reason, Note: r.Note, EndAccess: r.EndAccess, PeriodAction: r.PeriodAction,
		TransactionID: strPtr(r.TransactionID), CreatedBy: r.CreatedBy, CreatedAt: stamp(r.CreatedAt, s.loc),
	}
}

// createRefund handles POST /v1/orders/{id}/refunds (billing,
// Idempotency-Key required): 201 with the refund; the operator is the
// token's subject.
func (s *Server) createRefund(c *gin.Context) {
	if err := billing.PathIDField.Error(c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	var body refundRequest
	if err := bindJSON(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	req := billing.RefundRequest{Reason: billing.RefundReason(deref(body.Reason)), Note: deref(body.Note), AmountFen: body.AmountFen}
	if body.EndAccess != nil {
		req.EndAccess = *body.EndAccess
	}
	if err := req.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	k, err := idempotencyKey(c, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	res, err := s.store.RefundOrder(c.Request.Context(), c.Param("id"), req, principal(c).Subject, k,
		renderJSON(http.StatusCreated, func(r billing.Refund) any { return s.refundView(r) }), s.loc, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeStored(c, res)
}

// refundQuery reads the filters of GET /v1/refunds.
func refundQuery(c *gin.Context) (billing.RefundQuery, error) {
	var q billing.RefundQuery
	var fields []billing.FieldError
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if raw := c.Query(b.name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				fields = append(fields, billing.FieldError{Field: b.name, Code: "invalid_time"})
			}
			*b.t = t
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		fields = append(fields, billing.FieldError{Field: "to", Code: "not_after_from"})
	}
	if raw := c.Query("vin"); raw != "" {
		vin, err := billing.ParseVIN(raw)
		if err != nil {
			fields = append(fields, billing.FieldError{Field: "vin", Code: "invalid_vin"})
		}
		q.VIN = vin
	}
	if raw := c.Query("reason"); raw != "" {
		q.Reason = billing.RefundReason(raw)
		if !q.Reason.Valid() {
			fields = append(fields, billing.FieldError{Field: "reason", Code: "invalid"})
		}
	}
	if f := c.Query("format"); f != "" && f != "json" && f != "csv" {
		fields = append(fields, billing.FieldError{Field: "format", Code: "invalid"})
	}
	limit, cur, err := pageParams(c)
	var be *billing.Error
	if errors.As(err, &be) {
		fields = append(fields, be.Fields...)
	}
	q.Limit, q.After = limit, cur
	if len(fields) > 0 {
		return q, billing.Invalid("refund query is not valid", fields...)
	}
	return q, nil
}

// listRefunds handles GET /v1/refunds (billing): JSON a page at a time,
// or with ?format=csv every matching refund as one CSV download.
func (s *Server) listRefunds(c *gin.Context) {
	q, err := refundQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if c.Query("format") == "csv" {
		s.exportRefunds(c, q)
		return
	}
	refunds, next, err := s.store.Refunds(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := refundListView{Refunds: make([]refundView, len(refunds)), NextCursor: encodeCursor(next)}
	for i, r := range refunds {
		out.Refunds[i] = s.refundView(r)
	}
	c.JSON(http.StatusOK, out)
}

// refundCSVHeader is the header row of the export (SPEC section 4).
var refundCSVHeader = []string{"id", "order_id", "vin", "amount_fen", "amount_yuan", "currency", "reason", "note", "created_by", "created_at"}

// exportPage is how many refunds the export reads at a time.
const exportPage = 500

// exportRefunds streams q's refunds as CSV (RFC 4180, UTF-8, CRLF), reading
// the database a page at a time so that memory stays flat. Starting at
// the cursor q.After if given, it ignores q.Limit: the export is complete.
// An error after the first byte can only be logged and the download cut
// short (the status is already sent).
func (s *Server) exportRefunds(c *gin.Context, q billing.RefundQuery) {
	q.Limit = exportPage
	first, next, err := s.store.Refunds(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="refunds.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	w.UseCRLF = true
	w.Write(refundCSVHeader)
	page := first
	for {
		for _, r := range page {
			w.Write(s.refundCSV(r))
		}
		w.Flush()
		c.Writer.Flush()
		if next == nil || w.Error() != nil {
			break
		}
		q.After = next
		if page, next, err = s.store.Refunds(c.Request.Context(), q); err != nil {
			s.log.ErrorContext(c.Request.Context(), "refund export cut short",
				slog.String("request_id", c.GetString(ctxRequestID)), slog.String("error", err.Error()))
			return
		}
	}
	if err := w.Error(); err != nil {
		s.log.WarnContext(c.Request.Context(), "refund export not delivered", slog.String("error", err.Error()))
	}
}

func (s *Server) refundCSV(r billing.Refund) []string {
	return []string{
		r.ID, r.OrderID, string(r.VIN), strconv.FormatInt(r.AmountFen, 10), Yuan(r.AmountFen), r.Currency,
		string(r.Reason), spreadsheetSafe(r.Note), spreadsheetSafe(r.CreatedBy), stamp(r.CreatedAt, s.loc),
	}
}

// Yuan formats fen as yuan with two decimals, from integers only
// (1990 -> "19.90", -5 -> "-0.05").
func Yuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign, u = "-", uint64(-(fen+1))+1
	}
	return sign + strconv.FormatUint(u/100, 10) + "." + strconv.FormatUint(u%100/10, 10) + strconv.FormatUint(u%10, 10)
}

// spreadsheetSafe defuses free text that a spreadsheet would run as a
// formula (OWASP "CSV injection"): a leading = + - @ tab or carriage
// return gets a leading apostrophe, which spreadsheets show as text.
func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
