package api

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"entitlements/api/certverify"
	"entitlements/billing"
)

// TestCertificateCacheRule: a cached certificate is found only for its
// coverage hash and kid, from its iat to just before iat + renew_after;
// another kid (a rotated key) never finds it.
func TestCertificateCacheRule(t *testing.T) {
	c, err := newCertCache(10)
	if err != nil {
		t.Fatal(err)
	}
	const renew = 12 * time.Hour
	iat := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	v := billing.VIN("LSVAX4E10P2000900")
	c.put(v, cachedCert{hash: "h1", kid: "k1", issued: iat.Unix(), token: []byte("token")})
	for _, tc := range []struct {
		name, hash, kid string
		at              time.Time
		want            bool
	}{
		{"at iat", "h1", "k1", iat, true},
		{"just before renew_after", "h1", "k1", iat.Add(renew - time.Nanosecond), true},
		{"at renew_after", "h1", "k1", iat.Add(renew), false},
		{"before iat", "h1", "k1", iat.Add(-time.Nanosecond), false},
		{"another coverage", "h2", "k1", iat.Add(time.Minute), false},
		{"another key", "h1", "k2", iat.Add(time.Minute), false},
	} {
		if _, got := c.get(v, tc.hash, tc.kid, tc.at, renew); got != tc.want {
			t.Errorf("%s: found %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, ok := c.get("LSVAX4E10P2000901", "h1", "k1", iat, renew); ok {
		t.Error("found another car's certificate")
	}
	// The car's next certificate replaces its entry.
	c.put(v, cachedCert{hash: "h2", kid: "k1", issued: iat.Unix(), token: []byte("token 2")})
	if e, ok := c.get(v, "h2", "k1", iat, renew); !ok || string(e.token) != "token 2" || c.len() != 1 {
		t.Errorf("after a second put: %q, %v, %d entries; want token 2 and one entry", e.token, ok, c.len())
	}
	var off *certCache
	off.put(v, cachedCert{hash: "h1", kid: "k1", issued: iat.Unix()})
	if _, ok := off.get(v, "h1", "k1", iat, renew); ok || off.len() != 0 {
		t.Error("a nil cache (cache_entries 0) found a certificate")
	}
}

// sampleToken is a certificate of docs/certificate.md's sample car (its
// free year and a package, usage reported), signed with a new key: the
// size of a typical token.
func sampleToken(t testing.TB) (token []byte, kid string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring(priv)
	if err != nil {
		t.Fatal(err)
	}
	asOf := "2026-12-02T21:00:00+08:00"
	claims := certverify.Claims{
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
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ring.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok), ring.KeyID()
}

// The cache's real footprint, filled through churn by three times the cars
// it holds with certificates of the sample's size, stays within
// certCacheEntryBytes an entry, at the default size and around it: the
// figure config.yaml and the docs give is not an underestimate. Run with
// -v for the figures.
func TestCertificateCacheFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("fills caches of up to 50 000 certificates")
	}
	token, kid := sampleToken(t)
	for _, entries := range []int{5_000, DefaultCertificateCacheEntries, 50_000} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := newCertCache(entries)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3*entries; i++ {
			// Fresh values, as a request makes them: the parsed VIN, the
			// coverage hash, the signed token.
			v := billing.VIN(fmt.Sprintf("LSVAX4E10P%07d", i))
			hash := string(fmt.Appendf(nil, "%024d", i))
			c.put(v, cachedCert{hash: hash, kid: kid, issued: int64(i), token: []byte(string(token))})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		per := float64(heap) / float64(c.len())
		t.Logf("%d entries (%d-byte tokens): %d cached, heap %+d bytes, %.0f bytes an entry", entries, len(token), c.len(), heap, per)
		if c.len() != entries {
			t.Errorf("%d entries: the full cache holds %d", entries, c.len())
		}
		if per > certCacheEntryBytes {
			t.Errorf("%d entries: %.0f bytes of heap an entry, more than certCacheEntryBytes (%d)", entries, per, certCacheEntryBytes)
		}
		runtime.KeepAlive(c)
	}
}
