package main

import (
	"maps"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"entitlements/api"
)

// shippedIdPExample is config.yaml's commented identity-provider example,
// uncommented, in place of the auth line it replaces.
func shippedIdPExample(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out, example []string
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "# auth: {"), len(example) > 0 && strings.HasPrefix(line, "#        "):
			example = append(example, strings.TrimPrefix(line, "# "))
		case strings.HasPrefix(line, "auth: "):
			// replaced below
		default:
			out = append(out, line)
		}
	}
	if len(example) == 0 {
		t.Fatal("config.yaml has no commented '# auth: {' example: update this test")
	}
	return strings.Join(append(example, out...), "\n")
}

func TestIdPConfig(t *testing.T) {
	shipped, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const base = "payments: {webhook_secret: s}\nproducts: [{code: m, name: M, price_fen: 1, days: 1}]\n"
	const idp = `jwks_url: "https://idp.example.test/certs", issuer: "https://idp.example.test", audience: entitlements`
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    *api.IdPConfig // nil: off
		problem string         // substring of the error; "": valid
	}{
		{name: "shipped config.yaml: off", yaml: string(shipped)},
		{name: "shipped example", yaml: shippedIdPExample(t), want: &api.IdPConfig{
			JWKSURL: "https://idp.example.com/realms/staff/protocol/openid-connect/certs", Issuer: "https://idp.example.com/realms/staff",
			Audience: "entitlements", RoleClaim: "roles", SubjectClaim: "sub", Refresh: time.Hour,
			Roles: map[string]api.Role{"billing": api.RoleBilling, "ops": api.RoleOps}}},
		{name: "defaults", yaml: "auth: {token_secret: s, " + idp + "}\n" + base, want: &api.IdPConfig{
			JWKSURL: "https://idp.example.test/certs", Issuer: "https://idp.example.test", Audience: "entitlements", Refresh: time.Hour}},
		{name: "from the environment", yaml: "auth: {token_secret: s}\n" + base, env: map[string]string{
			"ENTITLEMENTS_AUTH_JWKS_URL": "https://idp.example.test/certs", "ENTITLEMENTS_AUTH_ISSUER": "https://idp.example.test",
			"ENTITLEMENTS_AUTH_AUDIENCE": "entitlements"}, want: &api.IdPConfig{
			JWKSURL: "https://idp.example.test/certs", Issuer: "https://idp.example.test", Audience: "entitlements", Refresh: time.Hour}},
		{name: "mapping", yaml: "auth: {token_secret: s, " + idp + `, role_claim: realm_access.roles, subject_claim: email,
       idp_roles: {entitlements-billing: billing, fleet-owner: owner}, jwks_refresh: 5m}` + "\n" + base, want: &api.IdPConfig{
			JWKSURL: "https://idp.example.test/certs", Issuer: "https://idp.example.test", Audience: "entitlements",
			RoleClaim: "realm_access.roles", SubjectClaim: "email", Refresh: 5 * time.Minute,
			Roles: map[string]api.Role{"entitlements-billing": api.RoleBilling, "fleet-owner": api.RoleOwner}}},
		{name: "http on loopback", yaml: `auth: {token_secret: s, jwks_url: "http://127.0.0.1:8180/certs", issuer: i, audience: a}` + "\n" + base,
			want: &api.IdPConfig{JWKSURL: "http://127.0.0.1:8180/certs", Issuer: "i", Audience: "a", Refresh: time.Hour}},
		{name: "no issuer", yaml: `auth: {token_secret: s, jwks_url: "https://idp.example.test/certs", audience: a}` + "\n" + base,
			problem: "auth.issuer is required"},
		{name: "no audience", yaml: `auth: {token_secret: s, jwks_url: "https://idp.example.test/certs", issuer: i}` + "\n" + base,
			problem: "auth.audience is required"},
		{name: "no jwks_url", yaml: `auth: {token_secret: s, issuer: i, audience: a}` + "\n" + base, problem: "auth.jwks_url is required"},
		{name: "http elsewhere", yaml: `auth: {token_secret: s, jwks_url: "http://idp.example.test/certs", issuer: i, audience: a}` + "\n" + base,
			problem: "must be https"},
		{name: "not a URL", yaml: `auth: {token_secret: s, jwks_url: "idp.example.test", issuer: i, audience: a}` + "\n" + base,
			problem: "auth.jwks_url"},
		{name: "unknown role", yaml: "auth: {token_secret: s, " + idp + ", idp_roles: {admins: admin}}\n" + base, problem: "auth.idp_roles"},
		{name: "empty idp_roles", yaml: "auth: {token_secret: s, " + idp + ", idp_roles: {}}\n" + base, problem: "auth.idp_roles must map"},
		{name: "mapping without a provider", yaml: "auth: {token_secret: s, role_claim: groups}\n" + base, problem: "need auth.jwks_url"},
		{name: "refresh too often", yaml: "auth: {token_secret: s, " + idp + ", jwks_refresh: 10s}\n" + base, problem: "auth.jwks_refresh"},
		{name: "the shared secret is still required", yaml: "auth: {" + idp + "}\n" + base, problem: "auth.token_secret is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), func(k string) string { return tc.env[k] })
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("ParseConfig error = %v, want one containing %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			got, ok := c.IdP()
			switch {
			case tc.want == nil && ok:
				t.Fatalf("IdP() = %+v, want off", got)
			case tc.want == nil:
				return
			case !ok:
				t.Fatal("IdP() is off, want on")
			}
			if got.JWKSURL != tc.want.JWKSURL || got.Issuer != tc.want.Issuer || got.Audience != tc.want.Audience ||
				got.RoleClaim != tc.want.RoleClaim || got.SubjectClaim != tc.want.SubjectClaim || got.Refresh != tc.want.Refresh ||
				!maps.Equal(got.Roles, tc.want.Roles) {
				t.Errorf("IdP() = %+v, want %+v", got, *tc.want)
			}
		})
	}
}

// TestServeStartsWithTheIdentityProviderUnreachable: a JWKS URL nothing
// answers does not stop the service; it says so in a warning.
func TestServeStartsWithTheIdentityProviderUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	jwks := "http://" + l.Addr().String() + "/certs"
	l.Close() // nothing listens there now
	logs := serveOnce(t, map[string]string{
		"ENTITLEMENTS_AUTH_JWKS_URL": jwks, "ENTITLEMENTS_AUTH_ISSUER": "https://idp.example.test", "ENTITLEMENTS_AUTH_AUDIENCE": "entitlements",
	})
	if !strings.Contains(logs, `"msg":"identity provider keys not loaded at start-up`) || !strings.Contains(logs, jwks) {
		t.Errorf("no warning naming the unreachable JWKS URL:\n%s", logs)
	}
}
