package api

import (
	"errors"
	"log/slog"
	"net/http"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// statusOf maps every billing error code to its HTTP status. It is the only
// place that does; a code missing here is a 500.
var statusOf = map[string]int{
	billing.EInvalid:                http.StatusBadRequest,
	billing.EInvalidVIN:             http.StatusBadRequest,
	billing.EMalformed:              http.StatusBadRequest,
	billing.EUnknownProduct:         http.StatusBadRequest,
	billing.EIdempotencyKeyNeeded:   http.StatusBadRequest,
	billing.EUnauthorized:           http.StatusUnauthorized,
	billing.EBadSignature:           http.StatusUnauthorized,
	billing.EForbidden:              http.StatusForbidden,
	billing.ENotFound:               http.StatusNotFound,
	billing.EVehicleNotFound:        http.StatusNotFound,
	billing.EUnknownFeature:         http.StatusNotFound,
	billing.EOrderNotFound:          http.StatusNotFound,
	billing.EAlreadyActivated:       http.StatusConflict,
	billing.ENotActivated:           http.StatusConflict,
	billing.EOrderNotPaid:           http.StatusConflict,
	billing.EIdempotencyInFlight:    http.StatusConflict,
	billing.EConflict:               http.StatusConflict,
	billing.EEventIDReused:          http.StatusConflict,
	billing.ERequestTimeout:         http.StatusRequestTimeout,
	billing.ETooLarge:               http.StatusRequestEntityTooLarge,
	billing.ETooManyRecords:         http.StatusRequestEntityTooLarge,
	billing.EIdempotencyKeyReused:   http.StatusUnprocessableEntity,
	billing.EAmountMismatch:         http.StatusUnprocessableEntity,
	billing.EUsageHistoryPruned:     http.StatusUnprocessableEntity,
	billing.EHistoryUnavailable:     http.StatusUnprocessableEntity,
	billing.ENothingRefundable:      http.StatusUnprocessableEntity,
	billing.ERefundExceedsBalance:   http.StatusUnprocessableEntity,
	"method_not_allowed":            http.StatusMethodNotAllowed,
	codeOverloaded:                  http.StatusServiceUnavailable,
	billing.ECertificateUnavailable: http.StatusServiceUnavailable,
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail"`
	Code      string         `json:"code"`
	Errors    []ProblemField `json:"errors,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
}

// ProblemField names one invalid field of a request.
type ProblemField struct {
	Field string `json:"field"`
	Code  string `json:"code"`
}

const problemContentType = "application/problem+json"

// fail writes err as problem+json and aborts the request. Errors that are
// not *billing.Error are 500 "internal error"; their text is only logged.
func (s *Server) fail(c *gin.Context, err error) {
	code := billing.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status, code = http.StatusInternalServerError, billing.EInternal
	}
	p := Problem{
		Type:      "urn:entitlements:problem:" + code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    billing.ErrorMessage(err),
		Code:      code,
		RequestID: c.GetString(ctxRequestID),
	}
	var be *billing.Error
	if errors.As(err, &be) {
		for _, f := range be.Fields {
			p.Errors = append(p.Errors, ProblemField{Field: f.Field, Code: f.Code})
		}
	}
	if status >= 500 {
		s.log.ErrorContext(c.Request.Context(), "request failed",
			slog.String("request_id", p.RequestID), slog.String("error", err.Error()))
	}
	if status == http.StatusUnauthorized && code == billing.EUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="entitlements"`)
	}
	if code == codeOverloaded {
		c.Header("Retry-After", s.limits.retryAfter)
	}
	c.Abort()
	c.Render(status, problemRender{p})
}

// problemRender writes JSON with the problem+json content type.
type problemRender struct{ p Problem }

func (r problemRender) Render(w http.ResponseWriter) error {
	r.WriteContentType(w)
	return jsonEncode(w, r.p)
}

func (r problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", problemContentType)
}
