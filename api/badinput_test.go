package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"entitlements/api"
)

// badInput is one bad request and the exact problem it must get.
type badInput struct {
	name   string
	method string
	path   string
	body   any // as in request.Body; nil sends none
	status int
	code   string
	// errors the problem's errors list must contain (validation_failed and
	// wrong types name the field).
	errors []api.ProblemField
	// noSpec sends the request around the OpenAPI check, for paths the
	// document's router cannot match (an empty path segment).
	noSpec bool
}

func TestBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		car := vin("LSVAX4E10P4000001") // activated, owned by alice
		h.activate(car, "alice", time.Date(2026, 1, 5, 10, 0, 0, 0, shanghai))
		fresh := vin("LSVAX4E10P4000002") // never activated
		now := h.clock.Now()
		rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
		okAt := rfc(now.Add(-24 * time.Hour))
		activation := func(v string) string { return "/v1/vehicles/" + v + "/activation" }
		owner := func(v string) string { return "/v1/vehicles/" + v + "/owner" }
		entitlement := func(v string) string { return "/v1/vehicles/" + v + "/entitlement" }
		activate := func(at, ownerID, model any) map[string]any {
			m := map[string]any{"activated_at": at, "owner_id": ownerID, "model": model}
			for k, v := range m {
				if v == nil {
					delete(m, k)
				}
			}
			return m
		}
		badCheck := car[:8] + string("0123456789X"[(strings.IndexByte("0123456789X", car[8])+1)%11]) + car[9:]
		field := func(f, code string) []api.ProblemField { return []api.ProblemField{{Field: f, Code: code}} }
		huge := `{"owner_id":"bob","model":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`

		tests := []badInput{
			// VINs, on every kind of endpoint.
			{name: "VIN too short", method: "GET", path: entitlement("LSVAX4E10P400000"), status: 400, code: "invalid_vin"},
			{name: "VIN too long", method: "POST", path: activation(car + "1"), body: activate(okAt, "bob", "SU7"), status: 400, code: "invalid_vin"},
			{name: "VIN with I", method: "GET", path: "/v1/vehicles/" + vin("ISVAX4E10P4000001") + "/features", status: 400, code: "invalid_vin"},
			{name: "VIN with O", method: "PUT", path: owner(vin("LSVAX4E10P40O0001")), body: map[string]string{"owner_id": "bob"}, status: 400, code: "invalid_vin"},
			{name: "VIN with Q", method: "GET", path: "/v1/vehicles/" + vin("LSVAQ4E10P4000001") + "/features/navigation", status: 400, code: "invalid_vin"},
			{name: "VIN with punctuation", method: "GET", path: entitlement("LSVAX4E10P40000-1"), status: 400, code: "invalid_vin"},
			{name: "VIN with bad check digit", method: "POST", path: activation(badCheck), body: activate(okAt, "bob", "SU7"), status: 400, code: "invalid_vin"},
			{name: "VIN of URL-encoded punctuation", method: "GET", path: entitlement("%3C%3E%22%7B%7D%7C%5C%5E%60%20%3B%3A%40%26%3D%2B%24"), status: 400, code: "invalid_vin"},
			{name: "VIN of URL-encoded control and non-ASCII bytes", method: "PUT", path: owner("%00%01%FF%E2%98%83LSVAX4E10P40"), body: map[string]string{"owner_id": "bob"}, status: 400, code: "invalid_vin"},
			{name: "VIN of encoded spaces only", method: "GET", path: entitlement("%20%20%20"), status: 400, code: "invalid_vin"},
			{name: "VIN with an encoded slash leaves the route", method: "GET", path: entitlement("LSVAX4E10%2FP4000001"), status: 404, code: "not_found"},
			{name: "empty VIN segment", method: "GET", path: entitlement(""), status: 400, code: "invalid_vin", noSpec: true},
			{name: "lower-case padded VIN is accepted", method: "GET", path: entitlement("%20" + strings.ToLower(car) + "%20"), status: 200},

			// Bodies that are not one JSON object of the right shape.
			{name: "malformed JSON", method: "POST", path: activation(fresh), body: `{"owner_id": }`, status: 400, code: "malformed_body"},
			{name: "form-encoded body", method: "PUT", path: owner(car), body: `owner_id=bob`, status: 400, code: "malformed_body"},
			{name: "truncated JSON", method: "POST", path: activation(fresh), body: `{"activated_at":"` + okAt + `","owner_id":"bob"`, status: 400, code: "malformed_body"},
			{name: "unknown field", method: "PUT", path: owner(car), body: `{"owner_id":"bob","owner":"eve"}`, status: 400, code: "malformed_body", errors: field("owner", "unknown_field")},
			{name: "trailing data after the object", method: "PUT", path: owner(car), body: `{"owner_id":"bob"} true`, status: 400, code: "malformed_body"},
			{name: "two JSON objects", method: "PUT", path: owner(car), body: `{"owner_id":"bob"}{"owner_id":"eve"}`, status: 400, code: "malformed_body"},
			{name: "owner_id as number", method: "PUT", path: owner(car), body: `{"owner_id":42}`, status: 400, code: "malformed_body", errors: field("owner_id", "wrong_type")},
			{name: "activated_at as number", method: "POST", path: activation(fresh), body: activate(now.Unix(), "bob", "SU7"), status: 400, code: "malformed_body", errors: field("activated_at", "wrong_type")},
			{name: "body as array", method: "POST", path: activation(fresh), body: `[{"owner_id":"bob"}]`, status: 400, code: "malformed_body", errors: field("(body)", "wrong_type")},
			{name: "body as string", method: "PUT", path: owner(car), body: `"bob"`, status: 400, code: "malformed_body", errors: field("(body)", "wrong_type")},
			// null is valid JSON but not an object: refused as such.
			{name: "null body", method: "PUT", path: owner(car), body: `null`, status: 400, code: "malformed_body"},
			{name: "empty body", method: "PUT", path: owner(car), body: ``, status: 400, code: "malformed_body"},
			{name: "whitespace body", method: "POST", path: activation(fresh), body: " \n\t", status: 400, code: "malformed_body"},
			{name: "trailing slash", method: "GET", path: "/v1/products/", status: 404, code: "not_found"},
			{name: "body over 1 MiB", method: "POST", path: activation(fresh), body: huge, status: 413, code: "body_too_large"},
			{name: "body over 1 MiB on transfer", method: "PUT", path: owner(car), body: huge, status: 413, code: "body_too_large"},

			// Activation fields.
			{name: "activated_at 6 minutes ahead", method: "POST", path: activation(fresh), body: activate(rfc(now.Add(6*time.Minute)), "bob", "SU7"), status: 400, code: "validation_failed", errors: field("activated_at", "in_future")},
			{name: "activated_at before 2015", method: "POST", path: activation(fresh), body: activate("2014-12-31T23:59:59Z", "bob", "SU7"), status: 400, code: "validation_failed", errors: field("activated_at", "too_early")},
			{name: "activated_at not RFC 3339", method: "POST", path: activation(fresh), body: activate("2026-06-01 10:00:00", "bob", "SU7"), status: 400, code: "validation_failed", errors: field("activated_at", "invalid_time")},
			{name: "activated_at a date only", method: "POST", path: activation(fresh), body: activate("2026-06-01", "bob", "SU7"), status: 400, code: "validation_failed", errors: field("activated_at", "invalid_time")},
			{name: "activated_at missing", method: "POST", path: activation(fresh), body: activate(nil, "bob", "SU7"), status: 400, code: "validation_failed", errors: field("activated_at", "required")},
			{name: "owner_id missing", method: "POST", path: activation(fresh), body: activate(okAt, nil, "SU7"), status: 400, code: "validation_failed", errors: field("owner_id", "required")},
			{name: "owner_id empty", method: "POST", path: activation(fresh), body: activate(okAt, "", "SU7"), status: 400, code: "validation_failed", errors: field("owner_id", "required")},
			{name: "owner_id with spaces", method: "POST", path: activation(fresh), body: activate(okAt, "bob smith", "SU7"), status: 400, code: "validation_failed", errors: field("owner_id", "invalid_character")},
			{name: "owner_id too long", method: "POST", path: activation(fresh), body: activate(okAt, strings.Repeat("b", 129), "SU7"), status: 400, code: "validation_failed", errors: field("owner_id", "too_long")},
			{name: "model too long", method: "POST", path: activation(fresh), body: activate(okAt, "bob", strings.Repeat("m", 101)), status: 400, code: "validation_failed", errors: field("model", "too_long")},
			{name: "every activation field bad at once", method: "POST", path: activation(fresh), body: activate("yesterday", "", strings.Repeat("m", 101)), status: 400, code: "validation_failed",
				errors: []api.ProblemField{{Field: "activated_at", Code: "invalid_time"}, {Field: "owner_id", Code: "required"}, {Field: "model", Code: "too_long"}}},
			{name: "activated_at 4 minutes ahead is accepted", method: "POST", path: activation(vin("LSVAX4E10P4000003")), body: activate(rfc(now.Add(4*time.Minute)), "bob", "SU7"), status: 201},
			{name: "owner_id of 128 characters is accepted", method: "POST", path: activation(vin("LSVAX4E10P4000004")), body: activate(okAt, strings.Repeat("b", 128), "SU7"), status: 201},

			// Transfer fields.
			{name: "transfer owner_id missing", method: "PUT", path: owner(car), body: `{}`, status: 400, code: "validation_failed", errors: field("owner_id", "required")},
			{name: "transfer owner_id with a tab", method: "PUT", path: owner(car), body: map[string]string{"owner_id": "bob\tsmith"}, status: 400, code: "validation_failed", errors: field("owner_id", "invalid_character")},
			{name: "transfer owner_id too long", method: "PUT", path: owner(car), body: map[string]string{"owner_id": strings.Repeat("b", 129)}, status: 400, code: "validation_failed", errors: field("owner_id", "too_long")},
			{name: "transfer of an unknown vehicle", method: "PUT", path: owner(fresh), body: map[string]string{"owner_id": "bob"}, status: 404, code: "vehicle_not_found"},

			// Features and lookups.
			{name: "unknown feature", method: "GET", path: "/v1/vehicles/" + car + "/features/teleport", status: 404, code: "unknown_feature"},
			{name: "feature code in another case", method: "GET", path: "/v1/vehicles/" + car + "/features/Navigation", status: 404, code: "unknown_feature"},
			{name: "bad connection", method: "GET", path: "/v1/vehicles/" + car + "/features/karaoke?connection=wifi", status: 400, code: "validation_failed", errors: field("connection", "invalid")},
			{name: "connection in upper case", method: "GET", path: "/v1/vehicles/" + car + "/features/karaoke?connection=HOTSPOT", status: 400, code: "validation_failed", errors: field("connection", "invalid")},
			{name: "entitlement of an unknown vehicle", method: "GET", path: entitlement(fresh), status: 404, code: "vehicle_not_found"},

			// Routing.
			{name: "DELETE on products", method: "DELETE", path: "/v1/products", status: 405, code: "method_not_allowed"},
			{name: "POST on entitlement", method: "POST", path: entitlement(car), body: `{}`, status: 405, code: "method_not_allowed"},
			{name: "GET on activation", method: "GET", path: activation(car), status: 405, code: "method_not_allowed"},
			{name: "unknown path", method: "GET", path: "/v1/vehicle/" + car, status: 404, code: "not_found"},
			{name: "unknown version", method: "GET", path: "/v2/products", status: 404, code: "not_found"},
		}
		ops := h.token(api.RoleOps, "delivery")
		for _, tc := range tests {
			req := request{Method: tc.method, Path: tc.path, Token: ops, Body: tc.body}
			var res response
			if tc.noSpec {
				res = sendRaw(h, req)
			} else {
				res = h.do(req)
			}
			checkBadInput(t, tc, res)
		}
	})
}

// checkBadInput compares one answer with the case's expectation.
func checkBadInput(t *testing.T, tc badInput, res response) {
	t.Helper()
	if res.Code != tc.status {
		t.Errorf("%s: %s %.80s = %d %.300s, want %d %s", tc.name, tc.method, tc.path, res.Code, res.Body, tc.status, tc.code)
		return
	}
	if tc.code == "" {
		return // an accepted boundary case
	}
	p := res.problem(t)
	if p.Code != tc.code || p.Status != tc.status {
		t.Errorf("%s: problem code %q status %d, want %q %d", tc.name, p.Code, p.Status, tc.code, tc.status)
	}
	if p.Detail == "" {
		t.Errorf("%s: problem has no detail", tc.name)
	}
	for _, want := range tc.errors {
		found := false
		for _, got := range p.Errors {
			found = found || got == want
		}
		if !found {
			t.Errorf("%s: errors = %+v, want it to contain %+v", tc.name, p.Errors, want)
		}
	}
}

// sendRaw sends req (method, path and token; no body) through the router
// without the OpenAPI check.
func sendRaw(h *harness, req request) response {
	h.t.Helper()
	r := httptest.NewRequest(req.Method, req.Path, nil)
	r.Header.Set("Authorization", "Bearer "+req.Token)
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	if w.Code == http.StatusInternalServerError {
		h.t.Errorf("%s %s = 500: %s", req.Method, req.Path, w.Body)
	}
	return response{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
}
