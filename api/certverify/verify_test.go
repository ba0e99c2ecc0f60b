package certverify_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"entitlements/api/certverify"
	"entitlements/billing"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyRefuses: every way a certificate can be wrong for this car at
// this instant is refused with its own error.
func TestVerifyRefuses(t *testing.T) {
	jwks, token := issue()
	otherJWKS, otherToken := issue() // another service's key
	vin := billing.FixCheckDigit("LSVAX4E10P2000900")
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 6, 16, 8, 0, 0, 0, loc)
	v, err := certverify.NewVerifier(jwks, "entitlements")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"epoch":0`, `"epoch":9`, 1))) + "." + parts[2]
	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": vin}).SignedString([]byte("k"))
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	untyped := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(header), certverify.Type, "JWT", 1))) + "." + parts[1] + "." + parts[2]
	strict, _ := certverify.NewVerifier(jwks, "someone-else")

	for _, tc := range []struct {
		name  string
		v     *certverify.Verifier
		token string
		vin   string
		at    time.Time
		min   int64
		want  error
	}{
		{"another key", v, otherToken, vin, now, 0, certverify.ErrUnknownKey},
		{"a tampered payload", v, tampered, vin, now, 0, certverify.ErrBadSignature},
		{"HS256", v, hs256, vin, now, 0, certverify.ErrMalformed},
		{"another typ", v, untyped, vin, now, 0, certverify.ErrMalformed},
		{"not a JWS", v, "a.b", vin, now, 0, certverify.ErrMalformed},
		{"another car", v, token, billing.FixCheckDigit("LSVAX4E10P2000901"), now, 0, certverify.ErrWrongVehicle},
		{"another issuer", strict, token, vin, now, 0, certverify.ErrWrongIssuer},
		{"before nbf", v, token, vin, time.Date(2026, 6, 15, 11, 0, 0, 0, loc), 0, certverify.ErrNotYetValid},
		{"after exp", v, token, vin, time.Date(2026, 6, 22, 12, 0, 0, 0, loc), 0, certverify.ErrExpired},
		{"a newer epoch seen online", v, token, vin, now, 1, certverify.ErrSuperseded},
	} {
		if _, err := tc.v.Verify(tc.token, tc.vin, tc.at, tc.min); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify() = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := certverify.NewVerifier(otherJWKS, ""); err != nil {
		t.Errorf("NewVerifier(another JWKS): %v", err)
	}
	if _, err := certverify.NewVerifier([]byte(`{"keys":[]}`), ""); err == nil {
		t.Error("NewVerifier(no keys): no error")
	}
	cert, err := v.Verify(token, vin, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Decide("karaoke", "satellite", now); !billing.IsCode(err, billing.EInvalid) {
		t.Errorf("Decide(connection satellite) = %v, want a validation error", err)
	}
	if _, err := cert.Decide("teleport", "", now); !errors.Is(err, certverify.ErrUnknownFeature) {
		t.Errorf("Decide(unknown) = %v, want ErrUnknownFeature", err)
	}
}
