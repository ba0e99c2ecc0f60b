package api

import (
	"encoding/json"
	"strconv"

	"entitlements/api/certverify"
)

// appendClaims appends the JSON of c, byte for byte what json.Marshal
// writes (TestAppendClaimsIsJSONMarshal checks every field, so a claim
// added to certverify.Claims and not here fails it), without reflection:
// every certificate request encodes its claims once to hash them, and the
// encoding was the largest part of a request answered from the cache or
// with a 304 after the snapshot read.
func appendClaims(b []byte, c *certverify.Claims) []byte {
	b = appendStringField(b, `{"iss":`, c.Issuer)
	b = appendStringField(b, `,"sub":`, c.Subject)
	b = strconv.AppendInt(append(b, `,"iat":`...), c.IssuedAt, 10)
	b = strconv.AppendInt(append(b, `,"nbf":`...), c.NotBefore, 10)
	b = strconv.AppendInt(append(b, `,"exp":`...), c.Expires, 10)
	b = strconv.AppendInt(append(b, `,"epoch":`...), c.Epoch, 10)
	b = appendStringField(b, `,"tz":`, c.TimeZone)
	b = appendStrings(append(b, `,"features":{"basic":`...), c.Features.Basic)
	b = appendStrings(append(b, `,"premium":`...), c.Features.Premium)
	b = append(b, `},"coverage":`...)
	if c.Coverage == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, w := range c.Coverage {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringField(b, `{"from":`, w.From)
			b = appendStringField(b, `,"to":`, w.To)
			b = strconv.AppendInt(append(b, `,"data_bytes_per_month":`...), w.DataBytesPerMonth, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	d := &c.Data
	b = appendStringField(b, `,"data":{"cycle_start":`, d.CycleStart)
	b = appendStringField(b, `,"cycle_end":`, d.CycleEnd)
	b = strconv.AppendInt(append(b, `,"allowance_bytes":`...), d.AllowanceBytes, 10)
	b = strconv.AppendBool(append(b, `,"unlimited":`...), d.Unlimited)
	b = strconv.AppendInt(append(b, `,"used_bytes":`...), d.UsedBytes, 10)
	b = strconv.AppendBool(append(b, `,"throttled":`...), d.Throttled)
	b = append(b, `,"as_of":`...)
	if d.AsOf == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *d.AsOf)
	}
	return append(b, "}}"...)
}

func appendStringField(b []byte, name, s string) []byte {
	return appendString(append(b, name...), s)
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString quotes s as json.Marshal does: as is when it is printable
// ASCII that needs no escape (VINs, feature codes, zone names, RFC 3339
// instants), through json.Marshal otherwise.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
