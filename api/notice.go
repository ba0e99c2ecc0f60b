package api

import (
	"net/http"
	"strconv"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// noticeView is one outbox notice as GET /v1/vehicles/{vin}/notices shows
// it. last_error is shown to staff only: it can name internal hosts.
type noticeView struct {
	ID            string               `json:"id"`
	Kind          billing.NoticeKind   `json:"kind"`
	Status        billing.NoticeStatus `json:"status"`
	Attempts      int                  `json:"attempts"`
	NextAttemptAt string               `json:"next_attempt_at"`
	CreatedAt     string               `json:"created_at"`
	SentAt        *string              `json:"sent_at"`
	LastError     string               `json:"last_error,omitempty"`
	Data          map[string]any       `json:"data"`
}

const (
	defaultNoticeLimit = 100
	maxNoticeLimit     = 500
)

// listNotices handles GET /v1/vehicles/{vin}/notices: the vehicle's
// notices the caller may see (billing.Viewer.NoticeQuery), newest first,
// at most ?limit= (1-500, default 100).
func (s *Server) listNotices(c *gin.Context) {
	if err := checkQuery(c); err != nil {
		s.fail(c, err)
		return
	}
	limit := defaultNoticeLimit
	if q, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > maxNoticeLimit {
			s.fail(c, billing.Invalid("limit must be an integer from 1 to 500", billing.FieldError{Field: "limit", Code: "out_of_range"}))
			return
		}
		limit = n
	}
	vin, _, err := s.vehicleFor(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ns, err := s.store.QueryNotices(c.Request.Context(), viewer(c).NoticeQuery(vin, limit))
	if err != nil {
		s.fail(c, err)
		return
	}
	staff := viewer(c).Audience == billing.AudienceStaff
	out := make([]noticeView, len(ns))
	for i, n := range ns {
		out[i] = noticeView{
			ID: n.ID, Kind: n.Kind, Status: n.Status, Attempts: n.Attempts,
			NextAttemptAt: stamp(n.NextAttemptAt, s.loc),
			CreatedAt:     stamp(n.CreatedAt, s.loc),
			Data:          n.Payload(),
		}
		if n.SentAt != nil {
			out[i].SentAt = stampPtr(*n.SentAt, s.loc)
		}
		if staff {
			out[i].LastError = n.LastError
		}
	}
	c.JSON(http.StatusOK, out)
}
