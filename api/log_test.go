package api_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"entitlements/api"
)

// syncBuffer is a bytes.Buffer safe for the server's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestLinesAtWarn: at log.level warn the request line of a
// successful request is not logged, and that of a server error is, at
// warn, with its route and status.
func TestRequestLinesAtWarn(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, "sqlite", func(o *api.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	if res := h.get("/v1/products", h.token(api.RoleOps, "ops")); res.Code != http.StatusOK {
		t.Fatalf("products = %d %s", res.Code, res.Body)
	}
	if strings.Contains(logs.String(), `"msg":"request"`) {
		t.Errorf("a 200 was logged at warn:\n%s", logs.String())
	}
	h.db.Close() // every store call now fails: a server error
	// Straight to the handler: openapi.yaml (which the harness checks
	// responses against) documents no 500s.
	req := httptest.NewRequest(http.MethodGet, "/v1/vehicles/"+vin("LSVAX4E10P2100009")+"/entitlement", nil)
	req.Header.Set("Authorization", "Bearer "+h.token(api.RoleOps, "ops"))
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("entitlement with the store closed = %d %s, want 500", rec.Code, rec.Body)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			line = l
		}
	}
	for _, want := range []string{`"level":"WARN"`, `"status":500`, `"route":"/v1/vehicles/:vin/entitlement"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the 500's request line %q lacks %s", line, want)
		}
	}
}

// TestRequestLineOfForbiddenNamesTheCaller: a 403's request line carries
// the role and subject of the valid token that was refused, and every
// request line gives its duration in milliseconds.
func TestRequestLineOfForbiddenNamesTheCaller(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, "sqlite", func(o *api.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	if res := h.get("/v1/refunds", h.token(api.RoleCarrier, "carrier-feed")); res.Code != http.StatusForbidden {
		t.Fatalf("refunds as carrier = %d %s, want 403", res.Code, res.Body)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"status":403`) {
			line = l
		}
	}
	for _, want := range []string{`"role":"carrier"`, `"sub":"carrier-feed"`, `"duration_ms":`} {
		if !strings.Contains(line, want) {
			t.Errorf("the 403's request line %q lacks %s", line, want)
		}
	}
}
