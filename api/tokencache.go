package api

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCacheBytes bounds the verified-token cache's memory: at
// tokenEntryBytes an entry plus its subject, some 58 000 vehicle tokens
// (docs/operations.md has the measured figure).
const tokenCacheBytes = 16 << 20

// tokenEntryBytes is what an entry costs besides its subject's bytes, as
// measured by TestTokenCacheFootprint (heap after GC, the map filled
// through churn to its bound): the 32-byte key and the 48-byte entry (with the identity provider's key check) in a
// map slot, the slot's share of the map's control bytes and spare slots,
// and the rounding of the subject's allocation to its size class.
const tokenEntryBytes = 272

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
//
// It is bounded by bytes, not by count: each entry costs tokenEntryBytes
// plus the length of its subject, which the token's issuer chooses.
type tokenCache struct {
	budget int64
	leeway time.Duration

	mu    sync.RWMutex // protects m and bytes
	m     map[[32]byte]tokenEntry
	bytes int64 // the cost of the entries in m
}

// cachedToken is a verified token's principal and time bounds.
type cachedToken struct {
	p         Principal
	expires   time.Time
	notBefore time.Time // zero: no nbf claim
	// keyCurrent reports whether the key that verified the token is still
	// trusted; nil for the shared secret, which always is.
	keyCurrent func() bool
}

// tokenEntry is cachedToken as stored: the role as its index in Roles and
// the instants as Unix nanoseconds, 40 bytes instead of 88.
type tokenEntry struct {
	subject   string
	expires   int64
	notBefore int64 // noNotBefore: no nbf claim
	role      uint8
	// keyCurrent reports whether the key that verified the token is still
	// trusted; nil for the shared secret, which always is.
	keyCurrent func() bool
}

const noNotBefore = -1 << 63

func newTokenCache(budget int64, leeway time.Duration) *tokenCache {
	return &tokenCache{budget: budget, leeway: leeway, m: make(map[[32]byte]tokenEntry)}
}

// tokenKey is a token's key in the cache: the SHA-256 of all of it.
func tokenKey(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

func (e tokenEntry) cost() int64 { return tokenEntryBytes + int64(len(e.subject)) }

// get returns the principal of the token with key k if it was verified
// before, is within its time bounds at now and its key is still trusted
// (keyCurrent). The bounds are golang-jwt's:
// valid while now < exp + leeway and now >= nbf - leeway.
func (c *tokenCache) get(k [32]byte, now time.Time) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || (e.keyCurrent != nil && !e.keyCurrent()) {
		return Principal{}, false
	}
	t := now.UnixNano()
	lw := int64(c.leeway)
	if t >= e.expires+lw || (e.notBefore != noNotBefore && t < e.notBefore-lw) {
		return Principal{}, false
	}
	return Principal{Role: Roles[e.role], Subject: e.subject}, true
}

// put remembers a verified token under its key. When the cache is full it
// forgets entries, whichever the map's iteration yields first (close
// enough to random), until the new one fits: a full cache keeps serving
// most of its tokens instead of starting over. A token whose role is not
// in Roles, or whose instants are outside what Unix nanoseconds hold
// (years 1678 to 2262), is not stored.
func (c *tokenCache) put(k [32]byte, t cachedToken) {
	e, ok := entryOf(t)
	if !ok || e.cost() > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		c.bytes -= old.cost()
		delete(c.m, k)
	}
	for old, oe := range c.m {
		if c.bytes+e.cost() <= c.budget {
			break
		}
		delete(c.m, old)
		c.bytes -= oe.cost()
	}
	c.m[k] = e
	c.bytes += e.cost()
}

func entryOf(t cachedToken) (tokenEntry, bool) {
	role := -1
	for i, r := range Roles {
		if r == t.p.Role {
			role = i
		}
	}
	if role < 0 || !inNanos(t.expires) || (!t.notBefore.IsZero() && !inNanos(t.notBefore)) {
		return tokenEntry{}, false
	}
	e := tokenEntry{subject: t.p.Subject, role: uint8(role), expires: t.expires.UnixNano(), notBefore: noNotBefore, keyCurrent: t.keyCurrent}
	if !t.notBefore.IsZero() {
		e.notBefore = t.notBefore.UnixNano()
	}
	return e, true
}

// inNanos reports whether t is within what UnixNano holds exactly, with
// room for the leeway arithmetic in get.
func inNanos(t time.Time) bool {
	return t.After(time.Unix(0, -1<<62)) && t.Before(time.Unix(0, 1<<62))
}

// len is the number of cached tokens.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// size is the cost of the cached tokens, in bytes.
func (c *tokenCache) size() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}
