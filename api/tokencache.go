package api

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCacheSize bounds the verified-token cache: about 100 bytes an
// entry, so 65 536 tokens take some 7 MiB.
const tokenCacheSize = 65_536

// tokenCache remembers the principal of tokens whose signature and claims
// were verified, so that a car polling with the same token does not pay for
// the JWT's base64 and JSON decoding and its HMAC on every request (a
// fifth of the service's CPU for a bare authenticated request). It is keyed
// by the SHA-256 of the whole token, signature included, so only a token
// byte for byte equal to one that passed verification is ever found; the
// token's own time bounds (exp, nbf) are checked again on every hit against
// the server's clock, so a cached token expires exactly when a parsed one
// would. Rejected tokens are never stored. The secret is fixed for the
// server's lifetime; a token of the identity provider (oidc.go) is found
// only while the key that verified it is still in the provider's key set,
// so no entry outlives the key that verified it.
type tokenCache struct {
	max    int
	leeway time.Duration

	mu sync.RWMutex // protects m
	m  map[[32]byte]cachedToken
}

type cachedToken struct {
	p         Principal
	expires   time.Time
	notBefore time.Time // zero: no nbf claim
	// keyCurrent reports whether the key that verified the token is still
	// trusted; nil for the shared secret, which always is.
	keyCurrent func() bool
}

func newTokenCache(max int, leeway time.Duration) *tokenCache {
	return &tokenCache{max: max, leeway: leeway, m: make(map[[32]byte]cachedToken)}
}

// tokenKey is a token's key in the cache: the SHA-256 of all of it.
func tokenKey(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

// get returns the principal of the token with key k if it was verified
// before, is within its time bounds at now and its key is still trusted
// (keyCurrent). The bounds are golang-jwt's:
// valid while now < exp + leeway and now >= nbf - leeway.
func (c *tokenCache) get(k [32]byte, now time.Time) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires.Add(c.leeway)) || (!e.notBefore.IsZero() && now.Before(e.notBefore.Add(-c.leeway))) ||
		(e.keyCurrent != nil && !e.keyCurrent()) {
		return Principal{}, false
	}
	return e.p, true
}

// put remembers a verified token under its key. When the cache is full it
// forgets one entry, whichever the map's iteration yields first (close
// enough to random): a full cache keeps serving most of its tokens instead
// of starting over.
func (c *tokenCache) put(k [32]byte, e cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = e
}

// len is the number of cached tokens.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
