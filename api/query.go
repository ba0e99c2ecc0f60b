package api

import (
	"net/url"
	"strings"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// queryProblems checks that every parameter of the request's query string
// decodes. gin's c.Query (url.ParseQuery underneath) silently drops a
// pair it cannot decode, so ?cursor=%%% would read as no cursor at all
// and answer page 1. Each bad pair is named by its key (or "(query)" when
// the key itself does not decode) with the code invalid_encoding. Every
// handler that reads the query calls it.
func queryProblems(c *gin.Context) []billing.FieldError {
	var fields []billing.FieldError
	for rest := c.Request.URL.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		_, verr := url.QueryUnescape(rawValue)
		if kerr == nil && verr == nil && !strings.Contains(pair, ";") {
			continue
		}
		if kerr != nil || key == "" {
			key = "(query)"
		}
		fields = append(fields, billing.FieldError{Field: key, Code: "invalid_encoding"})
	}
	return fields
}

// checkQuery is queryProblems as a validation error, or nil.
func checkQuery(c *gin.Context) error {
	if fields := queryProblems(c); len(fields) > 0 {
		return billing.Invalid("the query string has a parameter that is not URL-encoded correctly", fields...)
	}
	return nil
}
