package api_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/api/certverify"
	"entitlements/store/storetest"
)

// served reads certificates_served_total from /metrics: the certificates
// answered from the cache and those signed for their request.
func (h *harness) served() (cached, signed int) {
	h.t.Helper()
	res := h.get("/metrics", "")
	for _, line := range strings.Split(string(res.Body), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, `certificates_served_total{source="cache"} %d`, &n); err == nil {
			cached = n
		}
		if _, err := fmt.Sscanf(line, `certificates_served_total{source="signer"} %d`, &n); err == nil {
			signed = n
		}
	}
	return cached, signed
}

// claimsOf decodes a certificate's claims without verifying it.
func claimsOf(t *testing.T, token string) certverify.Claims {
	t.Helper()
	var c certverify.Claims
	if err := json.Unmarshal(payloadOf(t, token), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// withCertificateCache sets certificate.cache_entries.
func withCertificateCache(entries int) func(*api.Options) {
	return func(o *api.Options) { o.Certificates.CacheEntries = entries }
}

// TestCertificateCacheAnswersUnchangedCoverage: a car, then its owner,
// asking again with the coverage unchanged get the certificate signed for
// the first request, token and ETag, signed once; it verifies at the
// later instant. An instant before its iat (the clock set back) is a new
// signature.
func TestCertificateCacheAnswersUnchangedCoverage(t *testing.T) {
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P3600001")
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
		first, etag := h.certificateOf(v)
		h.clock.Advance(40 * time.Minute)
		again, etag2 := h.certificateOf(v)
		if again != first || etag2 != etag {
			t.Errorf("40 minutes later: a different certificate (ETag %s, want %s)", etag2, etag)
		}
		byOwner := h.get("/v1/vehicles/"+v+"/certificate", h.token(api.RoleOwner, "alice"))
		if byOwner.Code != http.StatusOK || string(byOwner.Body) != first || byOwner.Header.Get("ETag") != etag {
			t.Errorf("the owner's request = %d, ETag %s; want the car's certificate %s", byOwner.Code, byOwner.Header.Get("ETag"), etag)
		}
		if cached, signed := h.served(); cached != 2 || signed != 1 {
			t.Errorf("served from the cache %d, signed %d; want 2 and 1", cached, signed)
		}
		if _, err := h.verifier().Verify(again, v, h.clock.Now(), 0); err != nil {
			t.Errorf("the cached certificate at the later instant: %v", err)
		}

		h.clock.Advance(-2 * time.Hour) // before its iat
		earlier, _ := h.certificateOf(v)
		if earlier == first || claimsOf(t, earlier).IssuedAt != h.clock.Now().Unix() {
			t.Errorf("before the cached certificate's iat: iat %d, want a new certificate issued at %d", claimsOf(t, earlier).IssuedAt, h.clock.Now().Unix())
		}
	})
}

// TestCertificateCacheFollowsCoverage: every change that changes a claim
// (a payment, usage crossing the allowance, a refund ending access, which
// raises the epoch) gives a new certificate with the new claims at the
// next request, which is then cached in its turn.
func TestCertificateCacheFollowsCoverage(t *testing.T) {
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P3700001")
		h.activate(v, "alice", time.Date(2025, 6, 20, 9, 0, 0, 0, shanghai)) // trial to 2026-06-20
		held, _ := h.certificateOf(v)
		next := func(step string, check func(c certverify.Claims) bool) {
			t.Helper()
			h.clock.Advance(time.Minute)
			token, etag := h.certificateOf(v)
			c := claimsOf(t, token)
			if token == held || !check(c) {
				t.Errorf("%s: claims %+v; want a new certificate with the change", step, c)
			}
			h.clock.Advance(time.Minute)
			if again, etag2 := h.certificateOf(v); again != token || etag2 != etag {
				t.Errorf("%s: asked again, a different certificate; want the one just signed", step)
			}
			held = token
		}

		trialEnd := claimsOf(t, held).Coverage[0].To
		order := h.pay(h.createOrder(v, "alice", "monthly"))
		next("payment", func(c certverify.Claims) bool { return len(c.Coverage) == 1 && c.Coverage[0].To > trialEnd })

		h.postUsage([]map[string]any{rec("u-cache", v, "entertainment", 16*gib, h.clock.Now().Add(-time.Hour))})
		next("usage over the allowance", func(c certverify.Claims) bool { return c.Data.Throttled && c.Data.UsedBytes == 16*gib })

		if res := h.refund(order.ID, map[string]any{"reason": "requested_by_customer", "end_access": true}); res.Code != http.StatusCreated {
			t.Fatalf("refund = %d %s", res.Code, res.Body)
		}
		next("refund ending access", func(c certverify.Claims) bool {
			return c.Epoch == 1 && len(c.Coverage) == 1 && c.Coverage[0].To == trialEnd
		})
		if cached, signed := h.served(); cached != 3 || signed != 4 {
			t.Errorf("served from the cache %d, signed %d; want 3 and 4", cached, signed)
		}
	})
}

// TestCertificateCacheRenewAfter: a cached certificate is answered until
// it is renew_after old on the server's clock; then the car gets a new one
// with a new iat.
func TestCertificateCacheRenewAfter(t *testing.T) {
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P3800001")
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
		first, _ := h.certificateOf(v)
		iat := claimsOf(t, first).IssuedAt
		h.clock.Advance(12*time.Hour - time.Second)
		if again, _ := h.certificateOf(v); again != first {
			t.Errorf("a second before renew_after: iat %d, want the cached certificate (iat %d)", claimsOf(t, again).IssuedAt, iat)
		}
		h.clock.Advance(time.Second)
		renewed, etag := h.certificateOf(v)
		if got := claimsOf(t, renewed).IssuedAt; got != h.clock.Now().Unix() {
			t.Errorf("at renew_after: iat %d, want a new certificate issued at %d", got, h.clock.Now().Unix())
		}
		if want := fmt.Sprintf(".%d\"", h.clock.Now().Unix()); !strings.HasSuffix(etag, want) {
			t.Errorf("ETag %s, want the new iat", etag)
		}
	})
}

// TestCertificateCacheKeyRotation: after a rotation the car gets a
// certificate of the new key, not the cached one of the old key.
func TestCertificateCacheKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		oldKey, newKey := newSigningKey(t), newSigningKey(t)
		h := newHarness(t, dialect, withCertificates(t, oldKey))
		v := vin("LSVAX4E10P3900001")
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
		old, _ := h.certificateOf(v)
		h.reconfigure(withCertificates(t, newKey, api.PublishedKey{Key: oldKey.Public().(ed25519.PublicKey)}))
		fresh, _ := h.certificateOf(v)
		if got, want := headerKID(t, fresh), api.KeyID(newKey.Public().(ed25519.PublicKey)); fresh == old || got != want {
			t.Errorf("after the rotation: kid %s, want the new key's %s", got, want)
		}
	})
}

// TestCertificateCacheOff: with cache_entries 0 every certificate is
// signed for its request.
func TestCertificateCacheOff(t *testing.T) {
	h := newHarness(t, "sqlite", withCertificates(t, newSigningKey(t)), withCertificateCache(0))
	v := vin("LSVAX4E10P4000001")
	h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
	for range 3 {
		h.certificateOf(v)
		h.clock.Advance(time.Minute)
	}
	if cached, signed := h.served(); cached != 0 || signed != 3 {
		t.Errorf("served from the cache %d, signed %d; want 0 and 3", cached, signed)
	}
}

// TestCertificateCacheIsBounded: with room for two cars, a third car's
// certificate pushes out the least recently asked one, which is signed
// again when it asks.
func TestCertificateCacheIsBounded(t *testing.T) {
	h := newHarness(t, "sqlite", withCertificates(t, newSigningKey(t)), withCertificateCache(2))
	a, b, c := vin("LSVAX4E10P4100001"), vin("LSVAX4E10P4100002"), vin("LSVAX4E10P4100003")
	for _, v := range []string{a, b, c} {
		h.activate(v, "alice", time.Date(2026, 3, 1, 9, 30, 0, 0, shanghai))
	}
	for _, step := range []struct {
		vin    string
		cached bool
	}{{a, false}, {b, false}, {a, true}, {c, false}, {b, false}, {c, true}, {a, false}} {
		cached0, _ := h.served()
		h.certificateOf(step.vin)
		cached1, _ := h.served()
		if got := cached1 > cached0; got != step.cached {
			t.Errorf("%s: from the cache %v, want %v", step.vin, got, step.cached)
		}
	}
}
