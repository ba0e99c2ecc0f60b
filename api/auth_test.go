package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"entitlements/api"
)

// handToken signs a token whose payload is exactly payload (JSON as
// written), with the test secret, so that claim types can be chosen.
func handToken(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(payload))
	m := hmac.New(sha256.New, tokenSecret)
	m.Write([]byte(signing))
	return signing + "." + enc(m.Sum(nil))
}

// TestTimeClaimsMustBeNumbers: exp, nbf and iat are RFC 7519 NumericDate,
// JSON numbers (fractions allowed). Given as strings the token is 401,
// also when asked again (a refused token is never cached).
func TestTimeClaimsMustBeNumbers(t *testing.T) {
	h := newHarness(t, "sqlite")
	now := h.clock.Now().Unix()
	exp, past := now+3600, now-60
	tests := []struct {
		name    string
		payload string
		status  int
	}{
		{"numbers", fmt.Sprintf(`{"sub":"ops","role":"ops","iat":%d,"nbf":%d,"exp":%d}`, now, past, exp), 200},
		{"fractional exp", fmt.Sprintf(`{"sub":"ops","role":"ops","exp":%d.5}`, exp), 200},
		{"exponent exp", fmt.Sprintf(`{"sub":"ops","role":"ops","exp":%.6e}`, float64(exp)), 200},
		{"string exp", fmt.Sprintf(`{"sub":"ops","role":"ops","exp":"%d"}`, exp), 401},
		{"string nbf", fmt.Sprintf(`{"sub":"ops","role":"ops","nbf":"%d","exp":%d}`, past, exp), 401},
		{"string iat", fmt.Sprintf(`{"sub":"ops","role":"ops","iat":"%d","exp":%d}`, now, exp), 401},
		{"null nbf", fmt.Sprintf(`{"sub":"ops","role":"ops","nbf":null,"exp":%d}`, exp), 401},
		{"boolean iat", fmt.Sprintf(`{"sub":"ops","role":"ops","iat":true,"exp":%d}`, exp), 401},
		{"control character in sub", fmt.Sprintf(`{"sub":"o\u0000ps","role":"ops","exp":%d}`, exp), 401},
		{"sub of 129 characters", fmt.Sprintf(`{"sub":"%0129d","role":"ops","exp":%d}`, 0, exp), 401},
	}
	for _, tc := range tests {
		tok := handToken(tc.payload)
		for i := range 2 { // the second would be answered from the cache
			res := h.get("/v1/products", tok)
			if res.Code != tc.status {
				t.Errorf("%s (request %d): GET /v1/products = %d %s, want %d", tc.name, i+1, res.Code, res.Body, tc.status)
			}
			if tc.status == http.StatusUnauthorized {
				wantProblem(t, tc.name, res, http.StatusUnauthorized, "unauthorized")
			}
		}
	}
}

// TestMintTokenRefusesBadSubjects: the token command cannot mint a token
// that the service would refuse.
func TestMintTokenRefusesBadSubjects(t *testing.T) {
	h := newHarness(t, "sqlite")
	for _, sub := range []string{"", "o\x00ps", "o\u202eps", strings.Repeat("x", 129)} {
		if tok, err := api.MintToken(tokenSecret, api.RoleOps, sub, 3600e9, h.clock.Now()); err == nil {
			t.Errorf("MintToken(sub %q) = %s, want an error", sub, tok)
		}
	}
}
