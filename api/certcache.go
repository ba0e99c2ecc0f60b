package api

import (
	"time"

	"entitlements/billing"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCertificateCacheEntries is certificate.cache_entries when config
// does not say: about 30 MB of certificates (certCacheEntryBytes each),
// enough for every car that asks twice within renew_after at the load
// harness's 20 000 vehicles.
const DefaultCertificateCacheEntries = 20_000

// certCacheEntryBytes is what an entry costs, as measured by
// TestCertificateCacheFootprint (heap after GC, the cache filled through
// churn to its bound, certificates of a car in its free year): the token
// (about 1.1 KB, in a 1 152-byte size class), the LRU's list element with
// its key and value, the map slot and the cloned coverage hash.
const certCacheEntryBytes = 1_500

// certCache remembers the certificate last signed for each car, so that a
// car (or its owner's app) asking again without If-None-Match while its
// coverage is unchanged gets the certificate already signed instead of a
// new Ed25519 signature. By the rule that answers such a poll 304, a
// certificate of the same coverage hash, signed by the same key, issued
// less than RenewAfter ago, is as good as a new one: the hit is that
// certificate, token and ETag, byte for byte.
//
// It holds one entry per car, keyed by VIN: a certificate of another
// coverage (new usage, a payment, a refund, the epoch) or of another
// signing key replaces the car's entry rather than taking a second one. It
// is bounded by entries (certificate.cache_entries) and forgets the least
// recently asked car first. Its age rule reads the server's clock, not the
// wall clock, which is why it is golang-lru's plain LRU and not its
// expirable one (whose TTL reads time.Now, and whose cleanup goroutine is
// never stopped).
type certCache struct {
	lru *lru.Cache[billing.VIN, cachedCert]
}

// cachedCert is a signed certificate as the cache keeps it.
type cachedCert struct {
	hash   string // coverage hash: every claim but iat, nbf and exp
	kid    string // the signing key's kid
	issued int64  // iat, Unix seconds
	token  []byte // the compact JWS
}

// newCertCache returns a cache of at most entries certificates; nil (no
// cache: every certificate is signed) when entries is 0.
func newCertCache(entries int) (*certCache, error) {
	if entries == 0 {
		return nil, nil
	}
	c, err := lru.New[billing.VIN, cachedCert](entries)
	if err != nil {
		return nil, err
	}
	return &certCache{lru: c}, nil
}

// get returns the certificate cached for vin if it has this coverage hash,
// was signed by kid, and was issued at or before now and less than
// renewAfter before it (the rule of a 304). A nil cache finds nothing.
func (c *certCache) get(vin billing.VIN, hash, kid string, now time.Time, renewAfter time.Duration) (cachedCert, bool) {
	if c == nil {
		return cachedCert{}, false
	}
	e, ok := c.lru.Get(vin)
	if !ok || e.hash != hash || e.kid != kid {
		return cachedCert{}, false
	}
	issued := time.Unix(e.issued, 0)
	if issued.After(now) || now.Sub(issued) >= renewAfter {
		return cachedCert{}, false
	}
	return e, true
}

// put remembers the certificate just signed for vin, replacing the one
// before it.
func (c *certCache) put(vin billing.VIN, e cachedCert) {
	if c == nil {
		return
	}
	c.lru.Add(vin, e)
}

// len is the number of cached certificates.
func (c *certCache) len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}
