package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/store/storetest"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://idp.example.test/realms/staff"
	testAudience = "entitlements"
)

// idpKey is a signing key of the test identity provider.
type idpKey struct {
	kid  string
	alg  jwt.SigningMethod
	priv crypto.Signer
	use  jwkset.USE // in the JWKS; "" is "sig", "-" leaves use out
}

func rsaKey(t testing.TB, kid string, bits int) idpKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return idpKey{kid: kid, alg: jwt.SigningMethodRS256, priv: k}
}

func ecKey(t testing.TB, kid string) idpKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return idpKey{kid: kid, alg: jwt.SigningMethodES256, priv: k}
}

// jwksServer is the identity provider's JWKS endpoint, whose keys the test
// changes; it counts the fetches and can be made to fail.
type jwksServer struct {
	t       testing.TB
	srv     *httptest.Server
	fetches atomic.Int64

	mu   sync.Mutex // protects keys and down
	keys []idpKey
	down bool
}

func newJWKSServer(t testing.TB, keys ...idpKey) *jwksServer {
	s := &jwksServer{t: t, keys: keys}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) URL() string { return s.srv.URL + "/jwks.json" }

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	keys, down := append([]idpKey(nil), s.keys...), s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	set := jwkset.NewMemoryStorage()
	for _, k := range keys {
		use := k.use
		switch use {
		case "":
			use = jwkset.UseSig
		case "-":
			use = ""
		}
		j, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, USE: use},
		})
		if err != nil {
			s.t.Errorf("JWK %s: %v", k.kid, err)
			return
		}
		if err := set.KeyWrite(r.Context(), j); err != nil {
			s.t.Errorf("JWK %s: %v", k.kid, err)
			return
		}
	}
	raw, err := set.JSONPublic(r.Context())
	if err != nil {
		s.t.Errorf("JWKS: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(raw)
}

func (s *jwksServer) setKeys(keys ...idpKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// newIdP builds the identity provider for srv's keys, with unknown-kid
// fetches allowed every millisecond unless mod says otherwise.
func newIdP(t testing.TB, url string, mod ...func(*api.IdPConfig)) *api.IdP {
	t.Helper()
	c := api.IdPConfig{JWKSURL: url, Issuer: testIssuer, Audience: testAudience, UnknownKeyRefresh: time.Millisecond}
	for _, m := range mod {
		m(&c)
	}
	idp, err := api.NewIdP(t.Context(), c)
	if err != nil {
		t.Fatalf("NewIdP: %v", err)
	}
	return idp
}

func withIdP(idp *api.IdP) func(*api.Options) {
	return func(o *api.Options) { o.IdP = idp }
}

// idpClaims are a valid billing token's claims at now, for the test issuer
// and audience.
func idpClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": []string{testAudience, "account"}, "sub": "0f3c9a52-staff-7781",
		"email": "li.wei@example.test", "roles": []string{"billing"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// sign signs claims with k, naming k's kid in the header.
func (k idpKey) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.alg, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// with returns claims with key set to v, or removed when v is nil.
func with(claims jwt.MapClaims, key string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, x := range claims {
		out[k] = x
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

// rawToken assembles a token from a header and payload as written and a
// signature, for tokens no honest library would sign.
func rawToken(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

// TestIdPTokensAreAccepted: RS256 and ES256 tokens of the identity
// provider pass on the real router beside the shared secret's tokens; the
// configured subject claim is the refund's operator.
func TestIdPTokensAreAccepted(t *testing.T) {
	rsa1, ec1 := rsaKey(t, "rsa-1", 2048), ecKey(t, "ec-1")
	noUse := ecKey(t, "ec-no-use")
	noUse.use = "-" // some providers leave use out
	jwks := newJWKSServer(t, rsa1, ec1, noUse)
	storetest.Each(t, func(t *testing.T, dialect string) {
		idp := newIdP(t, jwks.URL(), func(c *api.IdPConfig) { c.SubjectClaim = "email" })
		if !idp.KeysLoaded() {
			t.Fatal("KeysLoaded() = false after a successful first fetch")
		}
		h := newHarness(t, dialect, withPayments, withIdP(idp))
		claims := idpClaims(h.clock.Now())
		for _, k := range []idpKey{rsa1, ec1, noUse} {
			tok := k.sign(t, claims)
			for i := range 2 { // the second from the token cache
				if res := h.get("/v1/refunds", tok); res.Code != http.StatusOK {
					t.Errorf("%s billing token of key %s (request %d): GET /v1/refunds = %d %s, want 200", k.alg.Alg(), k.kid, i+1, res.Code, res.Body)
				}
			}
		}
		ops := rsa1.sign(t, with(claims, "roles", "ops"))
		if res := h.get("/v1/refunds", ops); res.Code != http.StatusForbidden {
			t.Errorf("ops token: GET /v1/refunds = %d %s, want 403", res.Code, res.Body)
		}
		if res := h.get("/v1/products", ops); res.Code != http.StatusOK {
			t.Errorf("ops token: GET /v1/products = %d %s, want 200", res.Code, res.Body)
		}
		if res := h.get("/v1/refunds", h.token(api.RoleBilling, "bob")); res.Code != http.StatusOK {
			t.Errorf("shared-secret billing token beside the identity provider: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
		}

		_, o := h.boughtAfterLapse("LSVAX4E10P2300101", "monthly")
		res := h.do(request{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: ec1.sign(t, claims),
			Body: map[string]any{"reason": "service_issue"}, Headers: map[string]string{"Idempotency-Key": "idp-refund-1"}})
		var r refundBody
		res.decode(t, &r)
		if res.Code != http.StatusCreated || r.CreatedBy != "li.wei@example.test" {
			t.Errorf("refund with an identity-provider token = %d %s, want 201 created by li.wei@example.test", res.Code, res.Body)
		}
	})
}

// TestIdPRefusesBadTokens: every token below is 401 problem+json, also
// when sent again (a refused token is never cached).
func TestIdPRefusesBadTokens(t *testing.T) {
	rsa1, ec1 := rsaKey(t, "rsa-1", 2048), ecKey(t, "ec-1")
	weak := rsaKey(t, "rsa-weak", 1024)
	enc := rsaKey(t, "rsa-enc", 2048)
	enc.use = jwkset.UseEnc
	jwks := newJWKSServer(t, rsa1, ec1, weak, enc)
	h := newHarness(t, "sqlite", withIdP(newIdP(t, jwks.URL())))
	now := h.clock.Now()
	claims := idpClaims(now)
	pub, err := x509.MarshalPKIXPublicKey(rsa1.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hs256 := func(secret []byte, header string) string {
		enc := base64.RawURLEncoding.EncodeToString
		payload := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"mallory","role":"billing","roles":["billing"],"exp":%d}`,
			testIssuer, testAudience, now.Add(time.Hour).Unix())
		signing := enc([]byte(header)) + "." + enc([]byte(payload))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(signing))
		return signing + "." + enc(m.Sum(nil))
	}
	otherRSA := rsaKey(t, "rsa-1", 2048) // same kid, a key the provider never published
	withKid := func(k idpKey, kid string) idpKey { k.kid = kid; return k }

	tests := []struct {
		name  string
		token string
	}{
		{"wrong issuer", rsa1.sign(t, with(claims, "iss", "https://idp.example.test/realms/other"))},
		{"no issuer", rsa1.sign(t, with(claims, "iss", nil))},
		{"wrong audience", rsa1.sign(t, with(claims, "aud", "another-service"))},
		{"no audience", rsa1.sign(t, with(claims, "aud", nil))},
		{"expired", ec1.sign(t, with(claims, "exp", now.Add(-time.Minute).Unix()))},
		{"no exp", ec1.sign(t, with(claims, "exp", nil))},
		{"exp as a string", ec1.sign(t, with(claims, "exp", fmt.Sprint(now.Add(time.Hour).Unix())))},
		{"not valid yet", ec1.sign(t, with(claims, "nbf", now.Add(time.Hour).Unix()))},
		{"no kid", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			s, _ := tok.SignedString(rsa1.priv)
			return s
		}()},
		{"unknown kid", withKid(rsa1, "rsa-9").sign(t, claims)},
		{"signed by another key under a known kid", otherRSA.sign(t, claims)},
		{"RSA key below 2048 bits", weak.sign(t, claims)},
		{"key marked for encryption", enc.sign(t, claims)},
		{"alg none", rawToken(`{"alg":"none","kid":"rsa-1"}`, fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"m","roles":"billing","exp":%d}`,
			testIssuer, testAudience, now.Add(time.Hour).Unix()), nil)},
		{"HS256 with the RSA public key (PEM) as secret", hs256(pubPEM, `{"alg":"HS256","kid":"rsa-1","typ":"JWT"}`)},
		{"HS256 with the RSA public key (DER) as secret", hs256(pub, `{"alg":"HS256","kid":"rsa-1","typ":"JWT"}`)},
		{"RS256 header naming the EC key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			tok.Header["kid"] = "ec-1"
			s, _ := tok.SignedString(rsa1.priv)
			return s
		}()},
		{"ES256 header naming the RSA key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
			tok.Header["kid"] = "rsa-1"
			s, _ := tok.SignedString(ec1.priv)
			return s
		}()},
		{"RS512, an alg not accepted", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS512, claims)
			tok.Header["kid"] = "rsa-1"
			s, _ := tok.SignedString(rsa1.priv)
			return s
		}()},
		{"no role claim", rsa1.sign(t, with(claims, "roles", nil))},
		{"role claim a number", rsa1.sign(t, with(claims, "roles", 7))},
		{"role owner", rsa1.sign(t, with(claims, "roles", "owner"))},
		{"roles [owner]", rsa1.sign(t, with(claims, "roles", []string{"owner"}))},
		{"roles [vehicle] with a VIN subject", rsa1.sign(t, with(with(claims, "roles", []string{"vehicle"}), "sub", vin("LSVAX4E10P2300101")))},
		{"roles [carrier]", rsa1.sign(t, with(claims, "roles", []string{"carrier"}))},
		{"roles [billing, ops]: ambiguous", rsa1.sign(t, with(claims, "roles", []string{"billing", "ops"}))},
		{"role in the role claim only", rsa1.sign(t, with(with(claims, "roles", nil), "role", "billing"))},
		{"no subject", rsa1.sign(t, with(claims, "sub", nil))},
		{"subject a number", rsa1.sign(t, with(claims, "sub", 42))},
		{"subject with a control character", rsa1.sign(t, with(claims, "sub", "li\u0000wei"))},
	}
	for _, tc := range tests {
		for i := range 2 {
			res := h.get("/v1/refunds", tc.token)
			wantProblem(t, fmt.Sprintf("%s (request %d)", tc.name, i+1), res, http.StatusUnauthorized, "unauthorized")
		}
	}
	if res := h.get("/v1/refunds", rsa1.sign(t, claims)); res.Code != http.StatusOK {
		t.Errorf("the valid token the cases are made from: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
}

// TestIdPRoleClaim: the role claim may be a string or an array, found by
// name or dotted path; values the mapping does not name are ignored; the
// mapping can rename roles and can let the provider grant owner.
func TestIdPRoleClaim(t *testing.T) {
	rsa1 := rsaKey(t, "rsa-1", 2048)
	jwks := newJWKSServer(t, rsa1)
	tests := []struct {
		name   string
		mod    func(*api.IdPConfig)
		claims func(jwt.MapClaims) jwt.MapClaims
		path   string
		status int
	}{
		{"string", nil, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", "billing") }, "/v1/refunds", 200},
		{"array", nil, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", []string{"billing"}) }, "/v1/refunds", 200},
		{"array with unmapped values", nil,
			func(c jwt.MapClaims) jwt.MapClaims {
				return with(c, "roles", []any{"offline_access", 3, "billing", "owner"})
			}, "/v1/refunds", 200},
		{"array with the role twice", nil,
			func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", []string{"billing", "billing"}) }, "/v1/refunds", 200},
		{"ops as a string is ops", nil, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", "ops") }, "/v1/refunds", 403},
		{"empty array", nil, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", []string{}) }, "/v1/refunds", 401},
		{"dotted path", func(c *api.IdPConfig) { c.RoleClaim = "realm_access.roles" },
			func(c jwt.MapClaims) jwt.MapClaims {
				return with(with(c, "roles", nil), "realm_access", map[string]any{"roles": []string{"default-roles", "billing"}})
			}, "/v1/refunds", 200},
		{"namespaced claim name with dots", func(c *api.IdPConfig) { c.RoleClaim = "https://example.test/roles" },
			func(c jwt.MapClaims) jwt.MapClaims {
				return with(with(c, "roles", nil), "https://example.test/roles", "billing")
			}, "/v1/refunds", 200},
		{"renamed roles", func(c *api.IdPConfig) {
			c.Roles = map[string]api.Role{"entitlements-billing": api.RoleBilling}
		}, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", []string{"entitlements-billing"}) }, "/v1/refunds", 200},
		{"renamed roles: the service's name no longer grants", func(c *api.IdPConfig) {
			c.Roles = map[string]api.Role{"entitlements-billing": api.RoleBilling}
		}, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", []string{"billing"}) }, "/v1/refunds", 401},
		{"two values for one role are not ambiguous", func(c *api.IdPConfig) {
			c.Roles = map[string]api.Role{"billing": api.RoleBilling, "finance": api.RoleBilling}
		}, func(c jwt.MapClaims) jwt.MapClaims { return with(c, "roles", []string{"finance", "billing"}) }, "/v1/refunds", 200},
		{"owner refused by default", nil,
			func(c jwt.MapClaims) jwt.MapClaims { return with(with(c, "roles", "owner"), "sub", "alice") }, "/v1/products", 401},
		{"owner when configured", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{"owner": api.RoleOwner} },
			func(c jwt.MapClaims) jwt.MapClaims { return with(with(c, "roles", "owner"), "sub", "alice") }, "/v1/products", 200},
		{"owner when configured may not list refunds", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{"owner": api.RoleOwner} },
			func(c jwt.MapClaims) jwt.MapClaims { return with(with(c, "roles", "owner"), "sub", "alice") }, "/v1/refunds", 403},
		{"vehicle when configured needs a VIN subject", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{"car": api.RoleVehicle} },
			func(c jwt.MapClaims) jwt.MapClaims { return with(with(c, "roles", "car"), "sub", "not-a-vin") }, "/v1/products", 401},
		{"vehicle when configured", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{"car": api.RoleVehicle} },
			func(c jwt.MapClaims) jwt.MapClaims {
				return with(with(c, "roles", "car"), "sub", vin("LSVAX4E10P2300101"))
			}, "/v1/products", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*api.IdPConfig)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			h := newHarness(t, "sqlite", withIdP(newIdP(t, jwks.URL(), mods...)))
			res := h.get(tc.path, rsa1.sign(t, tc.claims(idpClaims(h.clock.Now()))))
			if res.Code != tc.status {
				t.Errorf("GET %s = %d %s, want %d", tc.path, res.Code, res.Body, tc.status)
			}
		})
	}
}

// TestIdPKeyRotation: a key the provider adds is fetched when a token
// names its kid; a key it removes is refused from the next fetch on, also
// for a token verified (and cached) while the key was published.
func TestIdPKeyRotation(t *testing.T) {
	old, added, later := rsaKey(t, "2026-05", 2048), ecKey(t, "2026-06"), rsaKey(t, "2026-07", 2048)
	jwks := newJWKSServer(t, old)
	h := newHarness(t, "sqlite", withIdP(newIdP(t, jwks.URL())))
	claims := idpClaims(h.clock.Now())
	oldTok := old.sign(t, claims)
	if res := h.get("/v1/refunds", oldTok); res.Code != http.StatusOK {
		t.Fatalf("token of the published key: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}

	jwks.setKeys(old, added)
	before := jwks.fetches.Load()
	if res := h.get("/v1/refunds", added.sign(t, claims)); res.Code != http.StatusOK {
		t.Errorf("token of a key added after start-up: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
	if n := jwks.fetches.Load() - before; n != 1 {
		t.Errorf("JWKS fetched %d times for the unknown kid, want 1", n)
	}
	if res := h.get("/v1/refunds", oldTok); res.Code != http.StatusOK {
		t.Errorf("token of the old key while still published: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}

	// The provider retires the old key and publishes another; a token of
	// the new one causes the fetch that drops the old.
	jwks.setKeys(added, later)
	if res := h.get("/v1/refunds", later.sign(t, claims)); res.Code != http.StatusOK {
		t.Errorf("token of the newest key: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
	wantProblem(t, "cached token of the removed key", h.get("/v1/refunds", oldTok), http.StatusUnauthorized, "unauthorized")
	wantProblem(t, "new token of the removed key", h.get("/v1/refunds", old.sign(t, with(claims, "jti", "x"))), http.StatusUnauthorized, "unauthorized")
	if res := h.get("/v1/refunds", added.sign(t, claims)); res.Code != http.StatusOK {
		t.Errorf("token of a key still published: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
}

// TestIdPPeriodicRefreshDropsRemovedKeys: without any unknown kid, the
// periodic fetch removes a retired key, cached tokens included.
func TestIdPPeriodicRefreshDropsRemovedKeys(t *testing.T) {
	old, kept := rsaKey(t, "old", 2048), ecKey(t, "kept")
	jwks := newJWKSServer(t, old, kept)
	h := newHarness(t, "sqlite", withIdP(newIdP(t, jwks.URL(), func(c *api.IdPConfig) { c.Refresh = 20 * time.Millisecond })))
	claims := idpClaims(h.clock.Now())
	oldTok := old.sign(t, claims)
	if res := h.get("/v1/refunds", oldTok); res.Code != http.StatusOK {
		t.Fatalf("GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
	jwks.setKeys(kept)
	deadline := time.Now().Add(10 * time.Second)
	for h.get("/v1/refunds", oldTok).Code != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the removed key's token is still accepted 10 s after the key left the JWKS refreshed every 20 ms")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := h.get("/v1/refunds", kept.sign(t, claims)); res.Code != http.StatusOK {
		t.Errorf("token of the kept key: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
}

// TestIdPUnknownKidFetchesAreRateLimited: tokens with unknown kids cause
// at most one fetch per UnknownKeyRefresh; the rest are refused at once.
func TestIdPUnknownKidFetchesAreRateLimited(t *testing.T) {
	rsa1, added := rsaKey(t, "rsa-1", 2048), ecKey(t, "ec-new")
	jwks := newJWKSServer(t, rsa1)
	h := newHarness(t, "sqlite", withIdP(newIdP(t, jwks.URL(), func(c *api.IdPConfig) { c.UnknownKeyRefresh = time.Hour })))
	claims := idpClaims(h.clock.Now())
	start := jwks.fetches.Load()
	for i := range 5 {
		bogus := rsa1
		bogus.kid = fmt.Sprintf("bogus-%d", i)
		wantProblem(t, "unknown kid", h.get("/v1/refunds", bogus.sign(t, claims)), http.StatusUnauthorized, "unauthorized")
	}
	if n := jwks.fetches.Load() - start; n != 1 {
		t.Errorf("5 tokens with unknown kids fetched the JWKS %d times, want 1", n)
	}
	jwks.setKeys(rsa1, added)
	wantProblem(t, "token of a key added within the rate limit", h.get("/v1/refunds", added.sign(t, claims)), http.StatusUnauthorized, "unauthorized")
	if res := h.get("/v1/refunds", rsa1.sign(t, claims)); res.Code != http.StatusOK {
		t.Errorf("token of a known key: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
}

// TestIdPUnreachableAtStart: the service starts with the JWKS unreachable,
// refuses the provider's tokens with a message saying so, keeps accepting
// the shared secret's, and takes the provider's once the keys load.
func TestIdPUnreachableAtStart(t *testing.T) {
	rsa1 := rsaKey(t, "rsa-1", 2048)
	jwks := newJWKSServer(t, rsa1)
	jwks.setDown(true)
	idp := newIdP(t, jwks.URL())
	if idp.KeysLoaded() {
		t.Fatal("KeysLoaded() = true with the JWKS answering 503")
	}
	h := newHarness(t, "sqlite", withIdP(idp))
	tok := rsa1.sign(t, idpClaims(h.clock.Now()))
	res := h.get("/v1/refunds", tok)
	wantProblem(t, "provider token before its keys load", res, http.StatusUnauthorized, "unauthorized")
	if p := res.problem(t); !strings.Contains(p.Detail, "not loaded") {
		t.Errorf("detail = %q, want it to say the keys are not loaded", p.Detail)
	}
	if res := h.get("/v1/refunds", h.token(api.RoleBilling, "bob")); res.Code != http.StatusOK {
		t.Errorf("shared-secret token while the provider is down: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
	jwks.setDown(false)
	time.Sleep(2 * time.Millisecond) // UnknownKeyRefresh
	if res := h.get("/v1/refunds", tok); res.Code != http.StatusOK {
		t.Errorf("provider token once the JWKS answers: GET /v1/refunds = %d %s, want 200", res.Code, res.Body)
	}
	if !idp.KeysLoaded() {
		t.Error("KeysLoaded() = false after a successful fetch")
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if idp := newIdP(t, closed.URL+"/jwks.json"); idp.KeysLoaded() {
		t.Error("KeysLoaded() = true with nothing listening")
	}
}

// TestNewIdPRefusesBadConfig: what the config validation also refuses is
// refused here, for callers that build an IdP themselves.
func TestNewIdPRefusesBadConfig(t *testing.T) {
	ok := api.IdPConfig{JWKSURL: "https://idp.example.test/jwks", Issuer: testIssuer, Audience: testAudience}
	tests := []struct {
		name string
		mod  func(*api.IdPConfig)
	}{
		{"no issuer", func(c *api.IdPConfig) { c.Issuer = "" }},
		{"no audience", func(c *api.IdPConfig) { c.Audience = "" }},
		{"no JWKS URL", func(c *api.IdPConfig) { c.JWKSURL = "" }},
		{"unknown role", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{"admin": "admin"} }},
		{"empty claim value", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{"": api.RoleBilling} }},
		{"no roles", func(c *api.IdPConfig) { c.Roles = map[string]api.Role{} }},
	}
	for _, tc := range tests {
		c := ok
		tc.mod(&c)
		if _, err := api.NewIdP(t.Context(), c); err == nil {
			t.Errorf("%s: NewIdP succeeded, want an error", tc.name)
		}
	}
}
