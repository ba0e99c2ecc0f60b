package api_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/api/certverify"
	"entitlements/billing"
	"entitlements/store/storetest"
)

// TestCertificateAccess: the callers of the entitlement read, with its
// 404s: a car or owner asking for another's vehicle, and a vehicle that is
// not activated, are vehicle_not_found; the carrier is refused.
func TestCertificateAccess(t *testing.T) {
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		f := accessFixture{
			vin: vin("LSVAX4E10P3100001"), owner: "alice",
			otherVIN: vin("LSVAX4E10P3100002"), otherOwner: "bob",
			activatedAt: time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai),
		}
		h.activate(f.vin, f.owner, f.activatedAt)
		h.activate(f.otherVIN, f.otherOwner, f.activatedAt)
		path := f.path("/v1/vehicles/{vin}/certificate")
		for _, c := range accessCallers(f) {
			res := h.get(path, h.token(c.role, c.sub))
			what := "certificate as " + c.name
			switch {
			case c.role == api.RoleCarrier:
				wantProblem(t, what, res, http.StatusForbidden, "forbidden")
			case c.mine || c.role == api.RoleBilling || c.role == api.RoleOps:
				if res.Code != http.StatusOK || res.Header.Get("Content-Type") != "application/jwt" {
					t.Errorf("%s = %d %q %s, want 200 application/jwt", what, res.Code, res.Header.Get("Content-Type"), res.Body)
				}
			default:
				wantProblem(t, what, res, http.StatusNotFound, billing.EVehicleNotFound)
			}
		}
		for _, bt := range badTokens(h) {
			req := request{Method: http.MethodGet, Path: path, Headers: map[string]string{}}
			if bt.header != "" {
				req.Headers["Authorization"] = bt.header
			}
			wantProblem(t, "certificate with "+bt.name, h.do(req), http.StatusUnauthorized, "unauthorized")
		}
		unknown := vin("LSVAX4E10P3100003")
		wantProblem(t, "certificate of a vehicle not activated, as itself",
			h.get("/v1/vehicles/"+unknown+"/certificate", h.token(api.RoleVehicle, unknown)), http.StatusNotFound, billing.EVehicleNotFound)
		wantProblem(t, "certificate of a bad VIN", h.get("/v1/vehicles/NOTAVIN/certificate", h.token(api.RoleOps, "ops")),
			http.StatusBadRequest, billing.EInvalidVIN)
	})
}

// TestCertificateUnavailableWithoutKey: no signing key, a clear 503; the
// JWKS is served, empty.
func TestCertificateUnavailableWithoutKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P3200001")
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
		res := h.get("/v1/vehicles/"+v+"/certificate", h.token(api.RoleVehicle, v))
		wantProblem(t, "certificate without a key", res, http.StatusServiceUnavailable, billing.ECertificateUnavailable)
		if p := res.problem(t); !strings.Contains(p.Detail, "certificate.signing_key_file") {
			t.Errorf("detail = %q, want it to name certificate.signing_key_file", p.Detail)
		}
		if res := h.get("/.well-known/jwks.json", ""); res.Code != http.StatusOK || string(res.Body) != `{"keys":[]}` {
			t.Errorf("jwks without keys = %d %s, want 200 {\"keys\":[]}", res.Code, res.Body)
		}
	})
}

// TestCertificateETag: the same coverage asked again with the ETag is 304
// (also as a weak tag, among others) until the certificate is
// renew_after old; new usage, a new package or a stale tag give a new
// certificate.
func TestCertificateETag(t *testing.T) {
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P3300001")
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
		path := "/v1/vehicles/" + v + "/certificate"
		ask := func(tag string) response {
			return h.do(request{Method: http.MethodGet, Path: path, Token: h.token(api.RoleVehicle, v),
				Headers: map[string]string{"If-None-Match": tag}})
		}
		first, etag := h.certificateOf(v)
		if etag == "" {
			t.Fatal("no ETag on the certificate")
		}
		h.clock.Advance(time.Hour)
		for _, tag := range []string{etag, "W/" + etag, `"other", ` + etag} {
			res := ask(tag)
			if res.Code != http.StatusNotModified || len(res.Body) != 0 || res.Header.Get("ETag") != etag {
				t.Errorf("If-None-Match %s an hour later = %d %q (ETag %s), want 304 with ETag %s", tag, res.Code, res.Body, res.Header.Get("ETag"), etag)
			}
		}
		for _, tag := range []string{`"junk"`, `"` + strings.Trim(etag, `"`) + `x"`, "*"} {
			if res := ask(tag); res.Code != http.StatusOK {
				t.Errorf("If-None-Match %s = %d, want 200", tag, res.Code)
			}
		}

		h.postUsage([]map[string]any{rec("u-etag", v, "entertainment", gib, h.clock.Now().Add(-2*time.Hour))})
		res := ask(etag)
		if res.Code != http.StatusOK || string(res.Body) == first {
			t.Fatalf("after new usage = %d, want 200 with a new certificate", res.Code)
		}
		etag = res.Header.Get("ETag")

		h.clock.Advance(11 * time.Hour)
		if res := ask(etag); res.Code != http.StatusNotModified {
			t.Errorf("11h later = %d, want 304", res.Code)
		}
		h.clock.Advance(time.Hour)
		if res := ask(etag); res.Code != http.StatusOK {
			t.Errorf("12h (renew_after) later = %d, want 200: the car's certificate must be renewed before it expires", res.Code)
		}

		_, etag = h.certificateOf(v)
		h.pay(h.createOrder(v, "alice", "monthly"))
		if res := ask(etag); res.Code != http.StatusOK {
			t.Errorf("after a new package = %d, want 200", res.Code)
		}
	})
}

// TestEpochRisesWhenCoverageShrinks: the entitlement and feature reads
// and the certificate carry the epoch; a refund that cuts or removes a
// period and an ownership transfer raise it, in the same write (the next
// read sees it and the coverage that changed with it); a goodwill refund
// that keeps access and a transfer to the current owner do not. A
// certificate of a lower epoch is refused by the verifier.
func TestEpochRisesWhenCoverageShrinks(t *testing.T) {
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P3400001")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai)) // lapsed
		running := h.pay(h.createOrder(v, "alice", "monthly"))
		scheduled := h.pay(h.createOrder(v, "alice", "yearly"))
		epochs := func() (ent, list, one, cert int64) {
			t.Helper()
			var e struct{ Epoch int64 }
			h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOps, "ops")).decode(t, &e)
			ent = e.Epoch
			h.get("/v1/vehicles/"+v+"/features", h.token(api.RoleVehicle, v)).decode(t, &e)
			list = e.Epoch
			h.get("/v1/vehicles/"+v+"/features/karaoke", h.token(api.RoleVehicle, v)).decode(t, &e)
			one = e.Epoch
			token, _ := h.certificateOf(v)
			c, err := h.verifier().Verify(token, v, h.clock.Now(), 0)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			return ent, list, one, c.Epoch()
		}
		check := func(step string, want int64, windows int) {
			t.Helper()
			ent, list, one, cert := epochs()
			if ent != want || list != want || one != want || cert != want {
				t.Errorf("%s: epoch entitlement %d, features %d, feature %d, certificate %d; want %d", step, ent, list, one, cert, want)
			}
			token, _ := h.certificateOf(v)
			var c certverify.Claims
			if err := json.Unmarshal(payloadOf(t, token), &c); err != nil {
				t.Fatal(err)
			}
			if len(c.Coverage) != windows {
				t.Errorf("%s: certificate lists %d windows %v, want %d", step, len(c.Coverage), c.Coverage, windows)
			}
		}
		check("paid twice", 0, 1)
		old, _ := h.certificateOf(v)

		if res := h.refund(running.ID, map[string]any{"reason": "service_issue", "amount_fen": 100}); res.Code != http.StatusCreated {
			t.Fatalf("goodwill refund = %d %s", res.Code, res.Body)
		}
		check("goodwill refund keeping access", 0, 1)

		if res := h.refund(scheduled.ID, map[string]any{"reason": "requested_by_customer"}); res.Code != http.StatusCreated {
			t.Fatalf("refund of the scheduled period = %d %s", res.Code, res.Body)
		}
		check("scheduled period refunded", 1, 1)
		if _, err := h.verifier().Verify(old, v, h.clock.Now(), 1); !errors.Is(err, certverify.ErrSuperseded) {
			t.Errorf("Verify(certificate of epoch 0, min epoch 1) = %v, want ErrSuperseded", err)
		}

		h.clock.Advance(time.Hour)
		if res := h.refund(running.ID, map[string]any{"reason": "service_issue", "amount_fen": 100, "end_access": true}); res.Code != http.StatusCreated {
			t.Fatalf("refund with end_access = %d %s", res.Code, res.Body)
		}
		check("running period cut", 2, 0)

		res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: h.token(api.RoleOps, "ops"), Body: map[string]string{"owner_id": "carol"}})
		if res.Code != http.StatusOK {
			t.Fatalf("transfer = %d %s", res.Code, res.Body)
		}
		check("transferred", 3, 0)
		h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner", Token: h.token(api.RoleOps, "ops"), Body: map[string]string{"owner_id": "carol"}})
		check("transferred to the same owner", 3, 0)
	})
}

// payloadOf decodes a compact JWS's payload without verifying it.
func payloadOf(t *testing.T, token string) []byte {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyRotation: the next key is in the JWKS before it signs; after the
// rotation the retired key stays published until retired_until, so a car
// holding a certificate of the old key never meets an unknown kid; then it
// is dropped.
func TestKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		oldKey, newKey := newSigningKey(t), newSigningKey(t)
		oldPub, newPub := oldKey.Public().(ed25519.PublicKey), newKey.Public().(ed25519.PublicKey)
		h := newHarness(t, dialect, withCertificates(t, oldKey, api.PublishedKey{Key: newPub}))
		v := vin("LSVAX4E10P3500001")
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))

		if kids := h.kids(); len(kids) != 2 || kids[0] != api.KeyID(oldPub) || kids[1] != api.KeyID(newPub) {
			t.Fatalf("JWKS before the rotation = %v, want the signing key then the next", kids)
		}
		carJWKS := h.get("/.well-known/jwks.json", "").Body // what a car cached before the rotation
		old, _ := h.certificateOf(v)

		rotated := h.clock.Now()
		retiredUntil := rotated.Add(7 * 24 * time.Hour)
		h.reconfigure(withCertificates(t, newKey, api.PublishedKey{Key: oldPub, Until: retiredUntil}))
		fresh, _ := h.certificateOf(v)
		if got := headerKID(t, fresh); got != api.KeyID(newPub) {
			t.Errorf("kid after the rotation = %s, want the new key's %s", got, api.KeyID(newPub))
		}
		cached, err := certverify.NewVerifier(carJWKS, issuer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cached.Verify(fresh, v, h.clock.Now(), 0); err != nil {
			t.Errorf("a certificate of the new key against the JWKS cached before the rotation: %v", err)
		}
		h.clock.Set(retiredUntil.Add(-time.Minute))
		if _, err := h.verifier().Verify(old, v, rotated.Add(time.Hour), 0); err != nil {
			t.Errorf("a certificate of the retired key against the JWKS just before retired_until: %v", err)
		}
		h.clock.Set(retiredUntil)
		if kids := h.kids(); len(kids) != 1 || kids[0] != api.KeyID(newPub) {
			t.Errorf("JWKS at retired_until = %v, want the new key alone", kids)
		}
		if _, err := h.verifier().Verify(old, v, rotated.Add(time.Hour), 0); !errors.Is(err, certverify.ErrUnknownKey) {
			t.Errorf("a certificate of a dropped key: %v, want ErrUnknownKey", err)
		}
	})
}

// TestJWKS: RFC 8037 keys with their kid, cacheable, 304 on its ETag.
func TestJWKS(t *testing.T) {
	h := newHarness(t, "sqlite", withCertificates(t, newSigningKey(t)))
	res := h.get("/.well-known/jwks.json", "")
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	res.decode(t, &set)
	if res.Code != http.StatusOK || res.Header.Get("Content-Type") != "application/jwk-set+json" || len(set.Keys) != 1 {
		t.Fatalf("jwks = %d %q %s", res.Code, res.Header.Get("Content-Type"), res.Body)
	}
	k := set.Keys[0]
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["kid"] == "" || k["alg"] != "EdDSA" || k["x"] == "" || k["d"] != "" {
		t.Errorf("key = %v, want a public OKP Ed25519 key with a kid", k)
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q, want a max-age", cc)
	}
	etag := res.Header.Get("ETag")
	again := h.do(request{Method: http.MethodGet, Path: "/.well-known/jwks.json", Headers: map[string]string{"If-None-Match": etag}})
	if etag == "" || again.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %q = %d, want 304", etag, again.Code)
	}
	if other := h.do(request{Method: http.MethodGet, Path: "/.well-known/jwks.json", Headers: map[string]string{"If-None-Match": `"x"`}}); other.Code != http.StatusOK {
		t.Errorf("If-None-Match of another key set = %d, want 200", other.Code)
	}
}

// kids lists the kids of the served JWKS in order.
func (h *harness) kids() []string {
	h.t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	h.get("/.well-known/jwks.json", "").decode(h.t, &set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

// headerKID returns the kid of a compact JWS's protected header, checking
// alg and typ on the way.
func headerKID(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Alg, Typ, Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Alg != "EdDSA" || h.Typ != certverify.Type {
		t.Errorf("header = %s, want alg EdDSA, typ %s", b, certverify.Type)
	}
	return h.Kid
}
