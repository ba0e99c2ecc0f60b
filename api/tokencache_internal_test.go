package api

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenCacheIsBounded(t *testing.T) {
	const budget = 8 * (tokenEntryBytes + 10)
	c := newTokenCache(budget, 0)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		sub := fmt.Sprintf("sub-%06d", i) // 10 bytes
		c.put(tokenKey(fmt.Sprint("token-", i)), cachedToken{p: Principal{Role: RoleOps, Subject: sub}, expires: now.Add(time.Hour)})
		if c.len() > 8 || c.size() > budget {
			t.Fatalf("after %d puts the cache holds %d tokens of %d bytes, want at most 8 and %d", i+1, c.len(), c.size(), budget)
		}
	}
	if p, ok := c.get(tokenKey("token-99"), now); !ok || p.Subject != "sub-000099" || p.Role != RoleOps {
		t.Errorf("get(last token) = %+v, %v; want ops sub-000099", p, ok)
	}
	// A long subject costs its length: it pushes out shorter ones.
	long := strings.Repeat("x", 5*(tokenEntryBytes+10))
	c.put(tokenKey("long"), cachedToken{p: Principal{Role: RoleOwner, Subject: long}, expires: now.Add(time.Hour)})
	if c.len() > 3 || c.size() > budget {
		t.Errorf("with a %d-byte subject the cache holds %d tokens of %d bytes, want at most 3 and %d", len(long), c.len(), c.size(), budget)
	}
	if p, ok := c.get(tokenKey("long"), now); !ok || p.Subject != long {
		t.Errorf("get(long) = %v, want the long subject", ok)
	}
	// One larger than the whole budget is not stored, and evicts nothing.
	n := c.len()
	c.put(tokenKey("huge"), cachedToken{p: Principal{Role: RoleOwner, Subject: strings.Repeat("x", budget)}, expires: now.Add(time.Hour)})
	if _, ok := c.get(tokenKey("huge"), now); ok || c.len() != n {
		t.Errorf("a subject larger than the budget: cached %v, %d tokens left of %d", ok, c.len(), n)
	}
	// Storing a token again replaces it and does not count it twice.
	before := c.size()
	c.put(tokenKey("long"), cachedToken{p: Principal{Role: RoleOwner, Subject: long}, expires: now.Add(2 * time.Hour)})
	if c.size() != before {
		t.Errorf("size after storing a token again = %d, want %d", c.size(), before)
	}
}

// The cache's real footprint, filled through churn by three times the
// tokens it holds (vehicle tokens, 17-byte subjects), stays within its
// budget, at the default budget and at budgets where the map has just
// grown (its slots are then least used): tokenEntryBytes is not an
// underestimate. Run with -v for the figures.
func TestTokenCacheFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("fills caches of up to 16 MiB")
	}
	for _, budget := range []int64{3 << 20, 6 << 20, 12 << 20, tokenCacheBytes} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newTokenCache(budget, tokenLeeway)
		now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
		capacity := int(budget / (tokenEntryBytes + 17))
		for i := 0; i < 3*capacity; i++ {
			// Fresh strings, as the JWT decoder makes them.
			sub := string([]byte(fmt.Sprintf("LSVAX4E10P%07d", i)))
			c.put(tokenKey(fmt.Sprint("token-", i)), cachedToken{p: Principal{Role: RoleVehicle, Subject: sub}, expires: now.Add(time.Hour)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("budget %d bytes: %d tokens put, %d cached, accounted %d bytes, heap %+d bytes (%.0f%% of the budget): %.0f bytes a token",
			budget, 3*capacity, c.len(), c.size(), heap, 100*float64(heap)/float64(budget), float64(heap)/float64(c.len()))
		if heap > budget {
			t.Errorf("budget %d: the full cache takes %d bytes of heap", budget, heap)
		}
		if c.len() < capacity*9/10 {
			t.Errorf("budget %d: the full cache holds %d tokens, want about %d", budget, c.len(), capacity)
		}
		runtime.KeepAlive(c)
	}
}

// A cached token is accepted at exactly the instants at which parsing it
// again would accept it: around exp and nbf, with the leeway, to the
// nanosecond.
func TestTokenCacheAgreesWithTheParser(t *testing.T) {
	s := &Server{tokenSecret: []byte("secret")}
	exp := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	nbf := exp.Add(-time.Hour)
	raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Role: RoleOps, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "delivery", ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(nbf),
	}}).SignedString(s.tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.verifyToken(raw, nbf.Add(time.Minute))
	if err != nil {
		t.Fatalf("verifyToken inside its bounds: %v", err)
	}
	c := newTokenCache(tokenCacheBytes, tokenLeeway)
	c.put(tokenKey(raw), tok)
	for _, at := range []time.Time{
		nbf.Add(-tokenLeeway - time.Nanosecond), nbf.Add(-tokenLeeway), nbf,
		exp.Add(-time.Nanosecond), exp, exp.Add(tokenLeeway - time.Nanosecond), exp.Add(tokenLeeway), exp.Add(tokenLeeway + time.Second),
	} {
		_, parsed := s.verifyToken(raw, at)
		_, cached := c.get(tokenKey(raw), at)
		if cached != (parsed == nil) {
			t.Errorf("at %s: cached token accepted = %v, parsed token accepted = %v (%v)", at.Format(time.RFC3339Nano), cached, parsed == nil, parsed)
		}
	}
	if _, ok := c.get(tokenKey(raw+"x"), nbf); ok {
		t.Error("a token that differs from a cached one by a byte was found in the cache")
	}
}

// BenchmarkTokenCacheGet is a hit, as for a car polling with its token.
func BenchmarkTokenCacheGet(b *testing.B) {
	c := newTokenCache(tokenCacheBytes, tokenLeeway)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	keys := make([][32]byte, 10_000)
	for i := range keys {
		keys[i] = tokenKey(fmt.Sprint("token-", i))
		c.put(keys[i], cachedToken{p: Principal{Role: RoleVehicle, Subject: fmt.Sprintf("LSVAX4E10P%07d", i)}, expires: now.Add(time.Hour)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.get(keys[i%len(keys)], now); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
