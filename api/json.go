package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 1 << 20

// readBody reads the whole request body, at most MaxBodyBytes; a larger
// body is ETooLarge, one that does not arrive within the server's read
// timeout (http.Server.ReadTimeout, http.read_timeout) ERequestTimeout.
func readBody(c *gin.Context) ([]byte, error) { return readBodyMax(c, MaxBodyBytes) }

// readBodyMax is readBody with another limit, for endpoints that take bulk
// data (POST /v1/usage).
func readBodyMax(c *gin.Context, max int64) ([]byte, error) {
	r := http.MaxBytesReader(c.Writer, c.Request.Body, max)
	var body []byte
	var err error
	if n := c.Request.ContentLength; n > 0 && n <= max {
		// Read into a buffer of the announced size at once rather than
		// growing one by doubling (a usage batch is megabytes).
		buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
		_, err = buf.ReadFrom(r)
		body = buf.Bytes()
	} else {
		body, err = io.ReadAll(r)
	}
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooBig):
		return nil, billing.Errorf(billing.ETooLarge, "request body is larger than %d bytes", max)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return nil, billing.Errorf(billing.ERequestTimeout, "request body did not arrive within the server's read timeout")
	}
	if err != nil {
		return nil, billing.Errorf(billing.EMalformed, "could not read request body")
	}
	return body, nil
}

// decodeStrict decodes one JSON value from body into v: unknown fields,
// wrong types, trailing data and an empty body are EMalformed, with the
// offending field named where known.
func decodeStrict(body []byte, v any) error {
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return billing.Errorf(billing.EMalformed, "request body is null; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return billing.Errorf(billing.EMalformed, "request body has data after the JSON value")
	}
	return nil
}

// bindJSON reads and strictly decodes the request body into v.
func bindJSON(c *gin.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

func malformed(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return billing.Errorf(billing.EMalformed, "request body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return billing.Errorf(billing.EMalformed, "request body is truncated JSON")
	case errors.As(err, &syn):
		return billing.Errorf(billing.EMalformed, "request body is not valid JSON (offset %d)", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return &billing.Error{Code: billing.EMalformed,
			Message: "field " + field + " must be " + jsonType(typ.Type.Kind(), field) + ", got " + typ.Value,
			Fields:  []billing.FieldError{{Field: field, Code: "wrong_type"}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &billing.Error{Code: billing.EMalformed, Message: "unknown field " + field,
			Fields: []billing.FieldError{{Field: field, Code: "unknown_field"}}}
	}
	return billing.Errorf(billing.EMalformed, "request body is not valid JSON")
}

// jsonType names the JSON value a Go kind takes, for the field named
// field (its last path element picks the unit of an integer).
func jsonType(kind reflect.Kind, field string) string {
	switch kind {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if unit, ok := integerUnits[field[strings.LastIndexByte(field, '.')+1:]]; ok {
			return "an integer number of " + unit
		}
		return "an integer"
	}
	return "a JSON value of another type"
}

// integerUnits are the units of the integer fields of request bodies.
var integerUnits = map[string]string{
	"amount_fen": "fen",
	"bytes":      "bytes",
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
