package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenCacheIsBounded(t *testing.T) {
	c := newTokenCache(8, 0)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		c.put(tokenKey(fmt.Sprint("token-", i)), cachedToken{p: Principal{Role: RoleOps, Subject: fmt.Sprint(i)}, expires: now.Add(time.Hour)})
		if c.len() > 8 {
			t.Fatalf("after %d puts the cache holds %d tokens, want at most 8", i+1, c.len())
		}
	}
	if p, ok := c.get(tokenKey("token-99"), now); !ok || p.Subject != "99" {
		t.Errorf("get(last token) = %+v, %v; want subject 99", p, ok)
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
	c := newTokenCache(8, tokenLeeway)
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
