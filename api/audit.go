package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// auditView is one entry of GET /v1/audit. The shape is the console's
// contract: keep it.
type auditView struct {
	ID        string         `json:"id"`
	At        string         `json:"at"`
	Actor     string         `json:"actor"`
	RequestID *string        `json:"request_id"`
	Action    string         `json:"action"`
	VIN       *string        `json:"vin"`
	OrderID   *string        `json:"order_id"`
	RefundID  *string        `json:"refund_id"`
	Before    map[string]any `json:"before"`
	After     map[string]any `json:"after"`
}

type auditListView struct {
	Entries    []auditView `json:"entries"`
	NextCursor *string     `json:"next_cursor"`
}

func (s *Server) auditView(e billing.AuditEntry) auditView {
	return auditView{
		ID: e.ID, At: stamp(e.At, s.loc), Actor: e.Actor, RequestID: strPtr(e.RequestID), Action: string(e.Action),
		VIN: strPtr(string(e.VIN)), OrderID: strPtr(e.OrderID), RefundID: strPtr(e.RefundID),
		Before: s.auditFields(e.Before), After: s.auditFields(e.After),
	}
}

// auditFields is f as the API shows it: always an object, and the
// instants (fields named *_at or *_until) with the configured offset.
func (s *Server) auditFields(f billing.Fields) map[string]any {
	out := make(map[string]any, len(f))
	for k, v := range f {
		if str, ok := v.(string); ok && (strings.HasSuffix(k, "_at") || strings.HasSuffix(k, "_until")) {
			if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
				v = stamp(t, s.loc)
			}
		}
		out[k] = v
	}
	return out
}

// auditQuery reads the filters of GET /v1/audit.
func auditQuery(c *gin.Context) (billing.AuditQuery, error) {
	var q billing.AuditQuery
	var fields []billing.FieldError
	q.From, q.To, fields = timeRange(c, fields)
	q.VIN, fields = vinFilter(c, fields)
	q.OrderID = c.Query("order_id")
	fields = billing.AuditOrderIDField.AppendCheck(fields, q.OrderID)
	q.Actor = c.Query("actor")
	fields = billing.AuditActorField.AppendCheck(fields, q.Actor)
	if raw := c.Query("action"); raw != "" {
		q.Action = billing.AuditAction(raw)
		if !q.Action.Valid() {
			fields = append(fields, billing.FieldError{Field: "action", Code: "invalid"})
		}
	}
	if f := c.Query("format"); f != "" && f != "json" && f != "csv" {
		fields = append(fields, billing.FieldError{Field: "format", Code: "invalid"})
	}
	limit, cur, err := pageParams(c)
	if be := (*billing.Error)(nil); errors.As(err, &be) {
		fields = append(fields, be.Fields...)
	}
	q.Limit, q.Before = limit, cur
	if len(fields) > 0 {
		return q, billing.Invalid("audit query is not valid", fields...)
	}
	return q, nil
}

// listAudit handles GET /v1/audit (billing, ops): JSON a page at a time,
// newest first, or with ?format=csv every matching entry as one CSV
// download.
func (s *Server) listAudit(c *gin.Context) {
	q, err := auditQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if c.Query("format") == "csv" {
		s.exportAudit(c, q)
		return
	}
	entries, next, err := s.store.AuditEntries(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := auditListView{Entries: make([]auditView, len(entries)), NextCursor: encodeCursor(next)}
	for i, e := range entries {
		out.Entries[i] = s.auditView(e)
	}
	c.JSON(http.StatusOK, out)
}

// auditCSVHeader is the header row of the audit export.
var auditCSVHeader = []string{"id", "at", "actor", "request_id", "action", "vin", "order_id", "refund_id", "before", "after"}

// exportAudit streams q's entries as CSV like exportRefunds: a page at a
// time from the cursor q.Before if given, ignoring q.Limit.
func (s *Server) exportAudit(c *gin.Context, q billing.AuditQuery) {
	q.Limit = exportPage
	page, next, err := s.store.AuditEntries(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="audit.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	w.UseCRLF = true
	w.Write(auditCSVHeader)
	for {
		for _, e := range page {
			w.Write(s.auditCSV(e))
		}
		w.Flush()
		c.Writer.Flush()
		if next == nil || w.Error() != nil {
			break
		}
		q.Before = next
		if page, next, err = s.store.AuditEntries(c.Request.Context(), q); err != nil {
			s.log.ErrorContext(c.Request.Context(), "audit export cut short",
				slog.String("request_id", c.GetString(ctxRequestID)), slog.String("error", err.Error()))
			return
		}
	}
	if err := w.Error(); err != nil {
		s.log.WarnContext(c.Request.Context(), "audit export not delivered", slog.String("error", err.Error()))
	}
}

func (s *Server) auditCSV(e billing.AuditEntry) []string {
	return []string{
		e.ID, stamp(e.At, s.loc), spreadsheetSafe(e.Actor), spreadsheetSafe(e.RequestID), string(e.Action),
		string(e.VIN), e.OrderID, e.RefundID, s.fieldsJSON(e.Before), s.fieldsJSON(e.After),
	}
}

// fieldsJSON is the JSON object of f as the API shows it ({} when empty).
func (s *Server) fieldsJSON(f billing.Fields) string {
	b, err := json.Marshal(s.auditFields(f))
	if err != nil {
		return "{}"
	}
	return string(b)
}
