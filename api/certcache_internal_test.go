package api

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"entitlements/api/certverify"
	"entitlements/billing"
)

// signedSample signs the sample certificate's claims, issued at iat, and
// returns its coverage JSON, hash and token.
func signedSample(t testing.TB, ring *Keyring, iat int64) (claims certverify.Claims, cover []byte, hash, token string) {
	t.Helper()
	claims = sampleClaims()
	claims.IssuedAt, claims.NotBefore, claims.Expires = iat, iat-300, iat+7*24*3600
	cover, hash = coverageOf(claims)
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	if token, err = ring.Sign(payload); err != nil {
		t.Fatal(err)
	}
	return claims, cover, hash, token
}

// TestCertificateCacheRule: a cached certificate rebuilds to the token
// signed, byte for byte; it is found only for its coverage hash and kid,
// from its iat to just before iat + renew_after; another kid (a rotated
// key) never finds it; a token that the entry would not rebuild to is not
// kept.
func TestCertificateCacheRule(t *testing.T) {
	ring := newTestKeyring(t)
	c, err := newCertCache(10)
	if err != nil {
		t.Fatal(err)
	}
	const renew = 12 * time.Hour
	iat := time.Date(2026, 12, 4, 5, 34, 41, 0, time.UTC)
	v := billing.VIN("LSVAX4E15P2000001")
	claims, cover, hash, token := signedSample(t, ring, iat.Unix())
	c.putSigned(v, hash, ring.KeyID(), claims.IssuedAt, claims.NotBefore, claims.Expires, cover, ring.header, token)
	e, ok := c.get(v, hash, ring.KeyID(), iat, renew)
	if !ok {
		t.Fatal("the certificate just cached is not found")
	}
	// The request after it computes the same coverage JSON afresh.
	_, again, _, _ := signedSample(t, ring, iat.Add(time.Hour).Unix())
	if rebuilt, ok := e.token(ring.header, again); !ok || string(rebuilt) != token {
		t.Errorf("rebuilt token:\n%s\nwant the signed one:\n%s", rebuilt, token)
	}
	for _, tc := range []struct {
		name, hash, kid string
		at              time.Time
		want            bool
	}{
		{"at iat", hash, ring.KeyID(), iat, true},
		{"just before renew_after", hash, ring.KeyID(), iat.Add(renew - time.Nanosecond), true},
		{"at renew_after", hash, ring.KeyID(), iat.Add(renew), false},
		{"before iat", hash, ring.KeyID(), iat.Add(-time.Nanosecond), false},
		{"another coverage", "other", ring.KeyID(), iat.Add(time.Minute), false},
		{"another key", hash, newTestKeyring(t).KeyID(), iat.Add(time.Minute), false},
	} {
		if _, got := c.get(v, tc.hash, tc.kid, tc.at, renew); got != tc.want {
			t.Errorf("%s: found %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, ok := c.get("LSVAX4E10P2000901", hash, ring.KeyID(), iat, renew); ok {
		t.Error("found another car's certificate")
	}

	// Tokens the entry would not rebuild to are not kept, and leave the
	// car's entry as it was.
	other := newTestKeyring(t)
	for i, tc := range []struct{ name, token string }{
		{"another key's header", other.header + token[strings.IndexByte(token, '.'):]},
		{"another payload", token[:strings.IndexByte(token, '.')+1] + "e30" + token[strings.LastIndexByte(token, '.'):]},
		{"a short signature", token[:len(token)-4]},
		{"not a compact JWS", "token"},
		{"instants of another", signedWith(t, ring, claims, 1)},
	} {
		w := billing.VIN(fmt.Sprintf("LSVAX4E15P%07d", 10+i))
		c.putSigned(w, hash, ring.KeyID(), claims.IssuedAt, claims.NotBefore, claims.Expires, cover, ring.header, tc.token)
		if _, ok := c.get(w, hash, ring.KeyID(), iat, renew); ok {
			t.Errorf("%s: kept", tc.name)
		}
	}
	if c.len() != 1 {
		t.Errorf("%d entries, want 1", c.len())
	}

	var off *certCache
	off.putSigned(v, hash, ring.KeyID(), claims.IssuedAt, claims.NotBefore, claims.Expires, cover, ring.header, token)
	if _, ok := off.get(v, hash, ring.KeyID(), iat, renew); ok || off.len() != 0 {
		t.Error("a nil cache (cache_entries 0) found a certificate")
	}
}

// signedWith signs claims with iat moved by shift seconds.
func signedWith(t testing.TB, ring *Keyring, claims certverify.Claims, shift int64) string {
	claims.IssuedAt += shift
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	token, err := ring.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func newTestKeyring(t testing.TB) *Keyring {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring(priv)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// sampleClaims are docs/certificate.md's sample car's: its free year and
// a package, usage reported.
func sampleClaims() certverify.Claims {
	asOf := "2026-12-02T21:00:00+08:00"
	return certverify.Claims{
		Issuer: "entitlements", Subject: "LSVAX4E15P2000001", IssuedAt: 1796362481, NotBefore: 1796362181, Expires: 1796967281,
		TimeZone: "Asia/Shanghai",
		Features: certverify.FeatureClaims{
			Basic:   []string{"navigation", "remote_control", "ota_updates", "driver_assistance", "app_updates", "voice_assistant"},
			Premium: []string{"music_streaming", "video_streaming", "karaoke", "gaming", "sentry_remote_view", "offline_map_download"},
		},
		Coverage: []certverify.WindowClaims{{From: "2026-01-15T00:00:00+08:00", To: "2027-02-15T00:00:00+08:00", DataBytesPerMonth: 16106127360}},
		Data: certverify.DataClaims{CycleStart: "2026-12-01T00:00:00+08:00", CycleEnd: "2027-01-01T00:00:00+08:00",
			AllowanceBytes: 16106127360, UsedBytes: 3221225472, AsOf: &asOf},
	}
}

// The cache's real footprint, filled through churn by three times the cars
// it holds, stays within certCacheEntryBytes an entry, at the default size
// and around it: the figure config.yaml and the docs give is not an
// underestimate. Run with -v for the figures.
func TestCertificateCacheFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("fills caches of up to 100 000 certificates")
	}
	ring := newTestKeyring(t)
	claims, cover, _, token := signedSample(t, ring, 1796362481)
	for _, entries := range []int{20_000, DefaultCertificateCacheEntries, 100_000} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := newCertCache(entries)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3*entries; i++ {
			// Fresh strings, as a request makes them: the parsed VIN and
			// the coverage hash.
			v := billing.VIN(fmt.Sprintf("LSVAX4E10P%07d", i))
			hash := string(fmt.Appendf(nil, "%024d", i))
			c.putSigned(v, hash, ring.KeyID(), claims.IssuedAt, claims.NotBefore, claims.Expires, cover, ring.header, token)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		per := float64(heap) / float64(c.len())
		t.Logf("%d entries: %d cached, heap %+d bytes, %.0f bytes an entry (the token is %d bytes)", entries, c.len(), heap, per, len(token))
		if c.len() != entries {
			t.Errorf("%d entries: the full cache holds %d", entries, c.len())
		}
		if per > certCacheEntryBytes {
			t.Errorf("%d entries: %.0f bytes of heap an entry, more than certCacheEntryBytes (%d)", entries, per, certCacheEntryBytes)
		}
		runtime.KeepAlive(c)
	}
}

// BenchmarkCertificateCacheHit is a hit's own work: the lookup and the
// token rebuilt from the entry and the request's coverage JSON.
func BenchmarkCertificateCacheHit(b *testing.B) {
	ring := newTestKeyring(b)
	claims, cover, hash, token := signedSample(b, ring, 1796362481)
	c, err := newCertCache(DefaultCertificateCacheEntries)
	if err != nil {
		b.Fatal(err)
	}
	v := billing.VIN(claims.Subject)
	c.putSigned(v, hash, ring.KeyID(), claims.IssuedAt, claims.NotBefore, claims.Expires, cover, ring.header, token)
	now := time.Unix(claims.IssuedAt, 0).Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		e, ok := c.get(v, hash, ring.KeyID(), now, 12*time.Hour)
		if !ok {
			b.Fatal("miss")
		}
		if _, ok := e.token(ring.header, cover); !ok {
			b.Fatal("no token")
		}
	}
}
