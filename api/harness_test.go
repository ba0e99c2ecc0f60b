package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// clock is a settable time source shared by the server and the test.
type clock struct {
	mu sync.Mutex // protects t
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// testCatalog is the configuration of SPEC section 5.
func testCatalog() billing.Catalog {
	const gib15 = 15 << 30
	return billing.Catalog{
		Trial: billing.TrialTerms{Months: 12, DataBytesPerMonth: gib15},
		Products: []billing.Product{
			{Code: "monthly", Name: "In-car network package, 31 days", PriceFen: 1990, Days: 31, DataBytesPerMonth: gib15},
			{Code: "yearly", Name: "In-car network package, 365 days", PriceFen: 19900, Days: 365, DataBytesPerMonth: gib15},
		},
		Features: billing.Features{
			Basic:   []string{"navigation", "remote_control", "ota_updates", "driver_assistance", "app_updates", "voice_assistant"},
			Premium: []string{"music_streaming", "video_streaming", "karaoke", "gaming", "sentry_remote_view", "offline_map_download"},
		},
	}
}

var tokenSecret = []byte("test-token-secret")

// harness is the real router over a real database, with a settable clock.
// Every response it sees is checked against api/openapi.yaml.
type harness struct {
	t       testing.TB
	dialect string
	db      *store.DB
	clock   *clock
	handler http.Handler
	opts    api.Options
}

// newHarness starts a server on a fresh database of the given dialect at
// 2026-06-15 12:00 Shanghai time. mod may adjust the options.
func newHarness(t testing.TB, dialect string, mod ...func(*api.Options)) *harness {
	t.Helper()
	h := &harness{t: t, dialect: dialect, db: storetest.Open(t, dialect),
		clock: &clock{t: time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)}}
	h.opts = api.Options{
		Store:       h.db,
		Catalog:     testCatalog(),
		Location:    shanghai,
		TokenSecret: tokenSecret,
		Now:         h.clock.Now,
	}
	withPayments(&h.opts)
	for _, m := range mod {
		m(&h.opts)
	}
	srv, err := api.New(h.opts)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	h.handler = srv.Handler()
	return h
}

// token mints a token valid for an hour at the harness clock.
func (h *harness) token(role api.Role, sub string) string {
	h.t.Helper()
	tok, err := api.MintToken(tokenSecret, role, sub, time.Hour, h.clock.Now())
	if err != nil {
		h.t.Fatalf("MintToken: %v", err)
	}
	return tok
}

type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// decode unmarshals the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// problem decodes a problem+json body.
func (r response) problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, r.Code, r.Body)
	}
	var p api.Problem
	r.decode(t, &p)
	return p
}

// request describes one call; Body may be a string or []byte (sent as is)
// or anything else (sent as JSON).
type request struct {
	Method  string
	Path    string
	Token   string
	Body    any
	Headers map[string]string
}

// do sends req through the real router and validates the response against
// the OpenAPI document.
func (h *harness) do(req request) response {
	h.t.Helper()
	var body io.Reader
	var raw []byte
	switch b := req.Body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			h.t.Fatalf("marshal body: %v", err)
		}
	}
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	r := httptest.NewRequest(req.Method, req.Path, body)
	if raw != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if req.Token != "" {
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	res := response{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
	checkOpenAPI(h.t, r, res)
	if res.Code == http.StatusInternalServerError {
		h.t.Errorf("%s %s = %d: %s", req.Method, req.Path, res.Code, res.Body)
	}
	return res
}

func (h *harness) get(path, token string) response {
	h.t.Helper()
	return h.do(request{Method: http.MethodGet, Path: path, Token: token})
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func loadSpec() (routers.Router, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPI())
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		doc.Servers = nil // match requests whatever their host
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	return specRouter, specErr
}

// checkOpenAPI fails the test when a response does not match the document:
// an undocumented route or status, a wrong content type, a body that does
// not fit the schema.
func checkOpenAPI(t testing.TB, r *http.Request, res response) {
	t.Helper()
	router, err := loadSpec()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		if res.Code == http.StatusNotFound || res.Code == http.StatusMethodNotAllowed {
			return // no such endpoint: the router's own answer
		}
		t.Errorf("%s %s answered %d but is not in openapi.yaml: %v", r.Method, r.URL.Path, res.Code, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.Code,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		msg := err.Error()
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		t.Errorf("%s %s = %d does not match openapi.yaml: %s\nbody: %s", r.Method, r.URL.Path, res.Code,
			msg, strings.TrimSpace(string(res.Body)))
	}
}

// vin builds a valid VIN from a 17-character body by fixing its check digit.
func vin(body string) string { return billing.FixCheckDigit(body) }

// activate activates a vehicle through the API and fails the test unless
// it is created.
func (h *harness) activate(v, owner string, at time.Time) {
	h.t.Helper()
	res := h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/activation",
		Token: h.token(api.RoleOps, "delivery"),
		Body:  map[string]any{"activated_at": at.Format(time.RFC3339), "owner_id": owner, "model": "SU7"}})
	if res.Code != http.StatusCreated {
		h.t.Fatalf("activate %s = %d %s, want 201", v, res.Code, res.Body)
	}
}

// eachBackend runs fn once per database backend.
func eachBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		fn(t, newHarness(t, dialect))
	})
}
