package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// idempotencyKey reads the required Idempotency-Key header and binds it to
// the caller (role and subject) and to what is asked: the method, the
// path and req re-encoded as JSON, so that formatting of the body does
// not matter but any change of meaning does.
func idempotencyKey(c *gin.Context, req any) (billing.IdempotencyKey, error) {
	key := c.GetHeader("Idempotency-Key")
	if err := billing.ValidateIdempotencyKey(key); err != nil {
		return billing.IdempotencyKey{}, err
	}
	canon, err := json.Marshal(req)
	if err != nil {
		return billing.IdempotencyKey{}, err
	}
	h := sha256.New()
	h.Write([]byte(c.Request.Method + " " + c.Request.URL.Path + "\n"))
	h.Write(canon)
	p := principal(c)
	return billing.IdempotencyKey{Scope: string(p.Role) + ":" + p.Subject, Key: key, RequestHash: hex.EncodeToString(h.Sum(nil))}, nil
}

// renderJSON returns a Render that encodes the view of a result with
// status, as the handler would have written it.
func renderJSON[T any](status int, view func(T) any) billing.Render[T] {
	return func(v T) (int, []byte, error) {
		var b strings.Builder
		if err := jsonEncode(&b, view(v)); err != nil {
			return 0, nil, err
		}
		return status, []byte(b.String()), nil
	}
}

// writeStored writes a response kept under an idempotency key; a replay
// says so in Idempotent-Replayed.
func writeStored(c *gin.Context, r billing.StoredResponse) {
	if r.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Data(r.Status, "application/json; charset=utf-8", r.Body)
}

// Page size bounds of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// pageParams reads ?limit= and ?cursor=; a query string that does not
// decode is refused with the rest (see queryProblems).
func pageParams(c *gin.Context) (int, *billing.Cursor, error) {
	limit := defaultPageSize
	fields := queryProblems(c)
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageSize {
			fields = append(fields, billing.FieldError{Field: "limit", Code: "out_of_range"})
		} else {
			limit = n
		}
	}
	var cur *billing.Cursor
	if raw := c.Query("cursor"); raw != "" {
		var ok bool
		if cur, ok = decodeCursor(raw); !ok {
			fields = append(fields, billing.FieldError{Field: "cursor", Code: "invalid"})
		}
	}
	if len(fields) > 0 {
		return 0, nil, billing.Invalid("paging parameters are not valid", fields...)
	}
	return limit, cur, nil
}

// encodeCursor makes an opaque cursor: base64url of "<unix micros>.<id>".
func encodeCursor(c *billing.Cursor) *string {
	if c == nil {
		return nil
	}
	s := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.At.UnixMicro(), 10) + "." + c.ID))
	return &s
}

// maxCursor bounds a cursor's length: base64 of a 20-digit time, a dot
// and an id of at most billing.CursorIDField.Max characters.
const maxCursor = 4 * (22 + 4*64) / 3

// decodeCursor reads a cursor made by encodeCursor; its id must follow
// billing.CursorIDField, as every id the service makes does.
func decodeCursor(s string) (*billing.Cursor, bool) {
	if len(s) > maxCursor {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	us, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || billing.CursorIDField.Check(id) != "" {
		return nil, false
	}
	return &billing.Cursor{At: time.UnixMicro(n).UTC(), ID: id}, true
}
