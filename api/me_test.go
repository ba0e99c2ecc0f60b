package api_test

import (
	"net/http"
	"testing"

	"entitlements/api"
)

type meBody struct {
	Role    string `json:"role"`
	Subject string `json:"subject"`
}

// TestMe: GET /v1/me answers every valid token with the role and subject
// the service took from it: an HS256 token's claims, and for a token of
// the identity provider the role its role claim maps to and the
// configured subject claim. A token that is not valid is 401.
func TestMe(t *testing.T) {
	rsa1 := rsaKey(t, "rsa-1", 2048)
	jwks := newJWKSServer(t, rsa1)
	idp := newIdP(t, jwks.URL(), func(c *api.IdPConfig) {
		c.SubjectClaim = "email"
		c.Roles = map[string]api.Role{"entitlements-billing": api.RoleBilling, "entitlements-ops": api.RoleOps}
	})
	h := newHarness(t, "sqlite", withIdP(idp))
	v := vin("LSVAX4E10P2700001")

	for _, c := range []struct {
		role api.Role
		sub  string
	}{{api.RoleBilling, "dana"}, {api.RoleOps, "olga"}, {api.RoleOwner, "alice"}, {api.RoleVehicle, v}, {api.RoleCarrier, "cmcc"}} {
		var me meBody
		res := h.get("/v1/me", h.token(c.role, c.sub))
		res.decode(t, &me)
		if res.Code != http.StatusOK || me.Role != string(c.role) || me.Subject != c.sub {
			t.Errorf("GET /v1/me with a %s token of %s = %d %s", c.role, c.sub, res.Code, res.Body)
		}
	}

	claims := with(idpClaims(h.clock.Now()), "roles", []string{"staff", "entitlements-billing"})
	var me meBody
	res := h.get("/v1/me", rsa1.sign(t, claims))
	res.decode(t, &me)
	if res.Code != http.StatusOK || me.Role != "billing" || me.Subject != "li.wei@example.test" {
		t.Errorf("GET /v1/me with an identity-provider token mapped to billing = %d %s, want billing li.wei@example.test", res.Code, res.Body)
	}
	res = h.get("/v1/me", rsa1.sign(t, with(claims, "roles", "entitlements-ops")))
	res.decode(t, &me)
	if res.Code != http.StatusOK || me.Role != "ops" {
		t.Errorf("GET /v1/me with an identity-provider token mapped to ops = %d %s, want ops", res.Code, res.Body)
	}

	for name, tok := range map[string]string{"no token": "", "not a token": "not-a-token",
		"unmapped role": rsa1.sign(t, with(claims, "roles", "billing"))} {
		if res := h.get("/v1/me", tok); res.Code != http.StatusUnauthorized {
			t.Errorf("GET /v1/me with %s = %d %s, want 401", name, res.Code, res.Body)
		}
	}
}
