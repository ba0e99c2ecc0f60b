// Package certverify verifies an offline coverage certificate (GET
// /v1/vehicles/{vin}/certificate) on the car, without the network, and
// decides features from it as the online feature check does. It is the
// head-unit team's reference: it needs only the published JWKS
// (GET /.well-known/jwks.json), the certificate and the car's clock. See
// docs/certificate.md.
//
// It imports the standard library, go-jose (JWS and JWK) and package
// billing (the feature rules, standard library only): never the service.
package certverify

import (
	"errors"
	"fmt"
	"time"

	"entitlements/billing"
)

// Type is the JWS "typ" header of a certificate.
const Type = "entitlement+jwt"

// Claims is the certificate's payload. Instants of the coverage and the
// cycle are RFC 3339 with the offset of the service's time zone (TimeZone);
// iat, nbf and exp are NumericDate (Unix seconds), as in a JWT.
type Claims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"` // the VIN
	IssuedAt  int64          `json:"iat"`
	NotBefore int64          `json:"nbf"`
	Expires   int64          `json:"exp"`
	Epoch     int64          `json:"epoch"`
	TimeZone  string         `json:"tz"`
	Features  FeatureClaims  `json:"features"`
	Coverage  []WindowClaims `json:"coverage"`
	Data      DataClaims     `json:"data"`
}

// FeatureClaims are the configured feature codes by tier.
type FeatureClaims struct {
	Basic   []string `json:"basic"`
	Premium []string `json:"premium"`
}

// WindowClaims is one coverage window, half-open [from, to).
type WindowClaims struct {
	From              string `json:"from"`
	To                string `json:"to"`
	DataBytesPerMonth int64  `json:"data_bytes_per_month"` // 0 = unlimited
}

// DataClaims is the data status of the cycle the certificate was issued in.
// AllowanceBytes, Unlimited and Throttled describe the instant of issue;
// the verifier recomputes them at any instant from UsedBytes and the
// allowance of the window containing it.
type DataClaims struct {
	CycleStart     string  `json:"cycle_start"`
	CycleEnd       string  `json:"cycle_end"`
	AllowanceBytes int64   `json:"allowance_bytes"`
	Unlimited      bool    `json:"unlimited"`
	UsedBytes      int64   `json:"used_bytes"`
	Throttled      bool    `json:"throttled"`
	AsOf           *string `json:"as_of"`
}

// ClaimsOf is the wire form of c, issued by iss, with instants in loc.
func ClaimsOf(c billing.Certificate, iss string, loc *time.Location) Claims {
	stamp := func(t time.Time) string { return billing.Stamp(t, loc) }
	out := Claims{
		Issuer: iss, Subject: string(c.VIN), Epoch: c.Epoch, TimeZone: loc.String(),
		IssuedAt: c.IssuedAt.Unix(), NotBefore: c.NotBefore.Unix(), Expires: c.Expires.Unix(),
		Features: FeatureClaims{Basic: nonNil(c.Features.Basic), Premium: nonNil(c.Features.Premium)},
		Coverage: make([]WindowClaims, len(c.Windows)),
		Data: DataClaims{
			CycleStart: stamp(c.Data.Cycle.Start), CycleEnd: stamp(c.Data.Cycle.End), UsedBytes: c.Data.UsedBytes,
		},
	}
	for i, w := range c.Windows {
		out.Coverage[i] = WindowClaims{From: stamp(w.From), To: stamp(w.To), DataBytesPerMonth: w.DataBytesPerMonth}
	}
	if w, ok := c.Window(c.IssuedAt); ok {
		out.Data.AllowanceBytes = w.DataBytesPerMonth
		out.Data.Unlimited = w.DataBytesPerMonth == 0
		out.Data.Throttled = c.Situation(c.IssuedAt, billing.ConnCellular).QuotaExceeded
	}
	if !c.Data.AsOf.IsZero() {
		s := stamp(c.Data.AsOf)
		out.Data.AsOf = &s
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ErrMalformed says the certificate is not one this package can read.
var ErrMalformed = errors.New("certificate is malformed")

// Certificate returns the domain form of the claims.
func (c Claims) Certificate() (billing.Certificate, error) {
	var errs []error
	parse := func(field, s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return t
	}
	out := billing.Certificate{
		VIN: billing.VIN(c.Subject), Epoch: c.Epoch,
		IssuedAt: time.Unix(c.IssuedAt, 0), NotBefore: time.Unix(c.NotBefore, 0), Expires: time.Unix(c.Expires, 0),
		Features: billing.Features{Basic: c.Features.Basic, Premium: c.Features.Premium},
		Data: billing.CertificateData{
			Cycle:     billing.Cycle{Start: parse("data.cycle_start", c.Data.CycleStart), End: parse("data.cycle_end", c.Data.CycleEnd)},
			UsedBytes: c.Data.UsedBytes,
		},
	}
	if c.Data.AsOf != nil {
		out.Data.AsOf = parse("data.as_of", *c.Data.AsOf)
	}
	for i, w := range c.Coverage {
		from, to := parse(fmt.Sprintf("coverage[%d].from", i), w.From), parse(fmt.Sprintf("coverage[%d].to", i), w.To)
		out.Windows = append(out.Windows, billing.CoverageWindow{From: from, To: to, DataBytesPerMonth: w.DataBytesPerMonth})
	}
	if c.Subject == "" || c.Expires == 0 {
		errs = append(errs, errors.New("sub and exp are required"))
	}
	if len(errs) > 0 {
		return billing.Certificate{}, fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	return out, nil
}
