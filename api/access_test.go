package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"

	"github.com/golang-jwt/jwt/v5"
)

// access is what a role may do on an endpoint: a cell of the SPEC section
// 3 table.
type access int

const (
	no  access = iota // 403 forbidden
	yes               // 2xx
	own               // 2xx on its own vehicle, 404 vehicle_not_found on another's
)

// endpoint is one row of the SPEC section 3 table. path may hold
// placeholders filled from the fixture ({vin}); body builds the request
// body (nil for none); access lists the roles that may call it, every
// other role is denied.
type endpoint struct {
	method  string
	path    string
	body    func(f accessFixture) any
	headers func() map[string]string
	access  map[api.Role]access
	notOwn  string // the code of the 404 for another's resource; vehicle_not_found if empty
}

// freshKey is a new Idempotency-Key for every call.
func freshKey() map[string]string {
	return map[string]string{"Idempotency-Key": fmt.Sprintf("matrix-%d", keySeq.Add(1))}
}

// endpoints is the access matrix of SPEC section 3, one row per endpoint
// (POST /v1/payments/notifications is signed, not bearer-authenticated,
// and is tested with its signature rules). A new endpoint adds its row.
var endpoints = []endpoint{
	{method: http.MethodGet, path: "/v1/me",
		access: map[api.Role]access{api.RoleVehicle: yes, api.RoleOwner: yes, api.RoleBilling: yes, api.RoleOps: yes, api.RoleCarrier: yes}},
	{method: http.MethodGet, path: "/v1/products",
		access: map[api.Role]access{api.RoleVehicle: yes, api.RoleOwner: yes, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodPost, path: "/v1/vehicles/{vin}/activation",
		body: func(f accessFixture) any {
			// The fixture's own activation again: 200, nothing changes.
			return map[string]string{"activated_at": f.activatedAt.Format(time.RFC3339), "owner_id": f.owner, "model": "SU7"}
		},
		access: map[api.Role]access{api.RoleOps: yes}},
	{method: http.MethodPut, path: "/v1/vehicles/{vin}/owner",
		body: func(f accessFixture) any {
			// A transfer to the current owner: 200, the owner stays.
			return map[string]string{"owner_id": f.owner}
		},
		access: map[api.Role]access{api.RoleOps: yes}},
	{method: http.MethodGet, path: "/v1/vehicles/{vin}/entitlement",
		access: map[api.Role]access{api.RoleVehicle: own, api.RoleOwner: own, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodGet, path: "/v1/vehicles/{vin}/features",
		access: map[api.Role]access{api.RoleVehicle: own, api.RoleOwner: own, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodGet, path: "/v1/vehicles/{vin}/features/karaoke",
		access: map[api.Role]access{api.RoleVehicle: own, api.RoleOwner: own, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodPost, path: "/v1/vehicles/{vin}/orders", headers: freshKey,
		body:   func(accessFixture) any { return map[string]string{"product": "monthly"} },
		access: map[api.Role]access{api.RoleOwner: own}},
	{method: http.MethodGet, path: "/v1/vehicles/{vin}/orders",
		access: map[api.Role]access{api.RoleOwner: own, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodGet, path: "/v1/orders/{order}", notOwn: "order_not_found",
		access: map[api.Role]access{api.RoleOwner: own, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodPost, path: "/v1/orders/{order}/refunds", headers: freshKey,
		body:   func(accessFixture) any { return map[string]any{"reason": "service_issue", "amount_fen": 1} },
		access: map[api.Role]access{api.RoleBilling: yes}},
	{method: http.MethodGet, path: "/v1/refunds",
		access: map[api.Role]access{api.RoleBilling: yes}},
	{method: http.MethodPost, path: "/v1/usage",
		body: func(f accessFixture) any {
			at := f.activatedAt.Add(time.Hour)
			return map[string]any{"records": []map[string]any{{"id": "matrix-1", "vin": f.vin, "category": "basic",
				"bytes": 1, "started_at": at.Format(time.RFC3339), "ended_at": at.Add(time.Minute).Format(time.RFC3339)}}}
		},
		access: map[api.Role]access{api.RoleCarrier: yes}},
	{method: http.MethodGet, path: "/v1/vehicles/{vin}/notices",
		access: map[api.Role]access{api.RoleOwner: own, api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodGet, path: "/v1/refunds?format=csv",
		access: map[api.Role]access{api.RoleBilling: yes}},
	{method: http.MethodGet, path: "/v1/audit?vin={vin}",
		access: map[api.Role]access{api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodGet, path: "/v1/audit?format=csv",
		access: map[api.Role]access{api.RoleBilling: yes, api.RoleOps: yes}},
	{method: http.MethodPost, path: "/v1/orders/{order}/refunds?dry_run=true",
		body:   func(accessFixture) any { return map[string]any{"reason": "service_issue", "amount_fen": 1} },
		access: map[api.Role]access{api.RoleBilling: yes}},
	{method: http.MethodGet, path: "/v1/vehicles?owner_id={owner}",
		access: map[api.Role]access{api.RoleBilling: yes, api.RoleOps: yes}},
}

// accessFixture is the data the matrix runs against: an activated vehicle
// vin owned by owner, and a second activated vehicle otherVIN owned by
// otherOwner (so that "another's vehicle" is a real one, not a missing one).
type accessFixture struct {
	vin, owner           string
	otherVIN, otherOwner string
	activatedAt          time.Time
	order                string // a paid order of vin, placed by owner
}

func (f accessFixture) path(p string) string {
	return strings.NewReplacer("{vin}", f.vin, "{order}", f.order, "{owner}", f.owner).Replace(p)
}

// caller is a bearer of a valid token; mine says whether the fixture's
// vehicle is the caller's own.
type caller struct {
	name string
	role api.Role
	sub  string
	mine bool
}

func accessCallers(f accessFixture) []caller {
	return []caller{
		{"vehicle with its own VIN", api.RoleVehicle, f.vin, true},
		{"vehicle with another VIN", api.RoleVehicle, f.otherVIN, false},
		{"owner who owns it", api.RoleOwner, f.owner, true},
		{"owner who does not", api.RoleOwner, f.otherOwner, false},
		{"billing", api.RoleBilling, "billing-clerk", false},
		{"ops", api.RoleOps, "delivery", false},
		{"carrier", api.RoleCarrier, "carrier-feed", false},
	}
}

func TestAccessMatrix(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		f := accessFixture{
			vin: vin("LSVAX4E10P3000001"), owner: "alice",
			otherVIN: vin("LSVAX4E10P3000002"), otherOwner: "bob",
			activatedAt: time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai),
		}
		h.activate(f.vin, f.owner, f.activatedAt)
		h.activate(f.otherVIN, f.otherOwner, f.activatedAt)
		f.order = h.pay(h.createOrder(f.vin, f.owner, "monthly")).ID

		for _, ep := range endpoints {
			for _, c := range accessCallers(f) {
				res := h.do(accessRequest(f, ep, h.token(c.role, c.sub)))
				what := ep.method + " " + ep.path + " as " + c.name
				switch a := ep.access[c.role]; {
				case a == yes || a == own && c.mine:
					if res.Code < 200 || res.Code > 299 {
						t.Errorf("%s = %d %s, want 2xx", what, res.Code, res.Body)
					}
				case a == own:
					code := ep.notOwn
					if code == "" {
						code = "vehicle_not_found"
					}
					wantProblem(t, what, res, http.StatusNotFound, code)
				default:
					wantProblem(t, what, res, http.StatusForbidden, "forbidden")
				}
			}
			for _, bt := range badTokens(h) {
				req := accessRequest(f, ep, "")
				if bt.header != "" {
					if req.Headers == nil {
						req.Headers = map[string]string{}
					}
					req.Headers["Authorization"] = bt.header
				}
				res := h.do(req)
				what := ep.method + " " + ep.path + " with " + bt.name
				wantProblem(t, what, res, http.StatusUnauthorized, "unauthorized")
				if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", what, got)
				}
			}
		}

		// The matrix must not have changed the fixture: the owner is still
		// the owner.
		if res := h.get(f.path("/v1/vehicles/{vin}/entitlement"), h.token(api.RoleOwner, f.owner)); res.Code != http.StatusOK {
			t.Errorf("owner reads entitlement after the matrix = %d, want 200", res.Code)
		}
	})
}

func accessRequest(f accessFixture, ep endpoint, token string) request {
	req := request{Method: ep.method, Path: f.path(ep.path), Token: token}
	if ep.body != nil {
		req.Body = ep.body(f)
	}
	if ep.headers != nil {
		req.Headers = ep.headers()
	}
	return req
}

// wantProblem checks a problem+json answer's status and code.
func wantProblem(t *testing.T, what string, res response, status int, code string) {
	t.Helper()
	if res.Code != status {
		t.Errorf("%s = %d %s, want %d %s", what, res.Code, res.Body, status, code)
		return
	}
	if p := res.problem(t); p.Code != code || p.Status != status {
		t.Errorf("%s: problem code %q status %d, want %q %d", what, p.Code, p.Status, code, status)
	}
}

type badToken struct {
	name   string
	header string // the whole Authorization header; "" sends none
}

// badTokens are Authorization headers that must all be 401. Their claims
// are otherwise those of ops, who may call every endpoint of the matrix, so
// a token that slipped through would show as a 2xx.
func badTokens(h *harness) []badToken {
	h.t.Helper()
	now := h.clock.Now()
	valid := h.token(api.RoleOps, "delivery")
	claims := func(drop string, set map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "delivery", "role": "ops", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		delete(c, drop)
		for k, v := range set {
			c[k] = v
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			h.t.Fatalf("sign %s token: %v", m.Alg(), err)
		}
		return "Bearer " + s
	}
	expired, err := api.MintToken(tokenSecret, api.RoleOps, "delivery", time.Hour, now.Add(-2*time.Hour))
	if err != nil {
		h.t.Fatalf("MintToken: %v", err)
	}
	otherKey, err := api.MintToken([]byte("another-secret"), api.RoleOps, "delivery", time.Hour, now)
	if err != nil {
		h.t.Fatalf("MintToken: %v", err)
	}
	return []badToken{
		{"no token", ""},
		{"an expired token", "Bearer " + expired},
		{"a token signed with another key", "Bearer " + otherKey},
		{"a token with an unknown role", sign(jwt.SigningMethodHS256, tokenSecret, claims("", map[string]any{"role": "admin"}))},
		{"a token without a role", sign(jwt.SigningMethodHS256, tokenSecret, claims("role", nil))},
		{"a token without a subject", sign(jwt.SigningMethodHS256, tokenSecret, claims("sub", nil))},
		{"a token without exp", sign(jwt.SigningMethodHS256, tokenSecret, claims("exp", nil))},
		{"a token not valid yet (nbf)", sign(jwt.SigningMethodHS256, tokenSecret, claims("", map[string]any{"nbf": now.Add(time.Hour).Unix()}))},
		{"a token with alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("", nil))},
		{"a token with alg HS512", sign(jwt.SigningMethodHS512, tokenSecret, claims("", nil))},
		{"a token with a tampered payload", "Bearer " + tamper(valid, now)},
		{"a Basic header", "Basic ZGVsaXZlcnk6c2VjcmV0"},
		{"Bearer without a token", "Bearer "},
		{"a token without the Bearer scheme", valid},
		{"Bearer with junk", "Bearer not-a-jwt"},
		{"Bearer with three junk segments", "Bearer a.b.c"},
	}
}

// tamper swaps the payload of a valid token for one claiming role billing,
// keeping the original signature.
func tamper(token string, now time.Time) string {
	parts := strings.Split(token, ".")
	payload := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "delivery", "role": "billing", "exp": now.Add(time.Hour).Unix()})
	s, _ := payload.SigningString()
	parts[1] = strings.Split(s, ".")[1]
	return strings.Join(parts, ".")
}

func TestPublicEndpointsNeedNoToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
			if res := h.get(path, ""); res.Code != http.StatusOK {
				t.Errorf("GET %s without a token = %d %s, want 200", path, res.Code, res.Body)
			}
			res := h.do(request{Method: http.MethodGet, Path: path, Headers: map[string]string{"Authorization": "Bearer junk"}})
			if res.Code != http.StatusOK {
				t.Errorf("GET %s with a junk token = %d %s, want 200 (the token is ignored)", path, res.Code, res.Body)
			}
		}
	})
}

// TestBearerSchemeIsCaseInsensitive: RFC 9110 makes the scheme name
// case-insensitive, so "bearer" and "BEARER" work like "Bearer".
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	h := newHarness(t, "sqlite")
	tok := h.token(api.RoleOwner, "o")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		res := h.do(request{Method: "GET", Path: "/v1/products", Headers: map[string]string{"Authorization": scheme + " " + tok}})
		if res.Code != 200 {
			t.Errorf("%s scheme = %d, want 200", scheme, res.Code)
		}
	}
}
