package api_test

import (
	"net/http"
	"testing"
	"time"

	"entitlements/api"
)

// A verified token is remembered (api/tokencache.go); the cache must never
// extend a token's life or let through one that fails verification.
func TestCachedTokenStillExpires(t *testing.T) {
	h := newHarness(t, "sqlite")
	tok, err := api.MintToken(tokenSecret, api.RoleOps, "delivery", time.Minute, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the first verifies and caches, the others hit the cache
		if res := h.get("/v1/products", tok); res.Code != http.StatusOK {
			t.Fatalf("GET /v1/products with a fresh token (request %d) = %d %s, want 200", i, res.Code, res.Body)
		}
	}
	// Within the 30 s leeway past exp the token is still good, as when parsed.
	h.clock.Advance(time.Minute + 20*time.Second)
	if res := h.get("/v1/products", tok); res.Code != http.StatusOK {
		t.Fatalf("GET /v1/products 20 s past exp (in the leeway) = %d %s, want 200", res.Code, res.Body)
	}
	h.clock.Advance(15 * time.Second)
	res := h.get("/v1/products", tok)
	wantProblem(t, "GET /v1/products with a cached token 35 s past exp", res, http.StatusUnauthorized, "unauthorized")
}

func TestCachedTokenDoesNotVouchForBadOnes(t *testing.T) {
	h := newHarness(t, "sqlite")
	for _, bt := range badTokens(h) {
		// The valid token with the same subject and role is verified, and
		// cached, just before each bad one.
		if res := h.get("/v1/products", h.token(api.RoleOps, "delivery")); res.Code != http.StatusOK {
			t.Fatalf("GET /v1/products with a valid token = %d %s", res.Code, res.Body)
		}
		req := request{Method: http.MethodGet, Path: "/v1/products"}
		if bt.header != "" {
			req.Headers = map[string]string{"Authorization": bt.header}
		}
		wantProblem(t, "GET /v1/products with "+bt.name+" after a valid token", h.do(req), http.StatusUnauthorized, "unauthorized")
	}
}
