package api

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"entitlements/billing"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCertificateCacheEntries is certificate.cache_entries when config
// does not say: 32 768 cars, about 10 MB (certCacheEntryBytes each).
const DefaultCertificateCacheEntries = 32_768

// certCacheEntryBytes is what an entry costs, as measured by
// TestCertificateCacheFootprint (heap after GC, the cache filled through
// churn to its bound): the LRU's list element holding the key and the
// entry (signature and instants inline), its map slot, and the VIN's and
// the coverage hash's own allocations.
const certCacheEntryBytes = 330

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
//
// An entry is not the token (about 1.1 KB) but what the token is made of
// besides the claims the request has just computed anyway: the coverage
// hash names every claim but iat, nbf and exp, so the payload is the
// request's coverage JSON with the entry's instants written in, and the
// token is the key's protected header, that payload and the entry's
// signature. An entry is kept only if it rebuilds to exactly the token
// signed (putSigned), so a hit serves that token or nothing; at a fifth
// of the token's size the cache holds five times the cars in the same
// memory.
type certCache struct {
	lru *lru.Cache[billing.VIN, cachedCert]
}

// cachedCert is a signed certificate as the cache keeps it.
type cachedCert struct {
	hash          string // coverage hash: every claim but iat, nbf and exp
	kid           string // the signing key's kid
	iat, nbf, exp int64  // Unix seconds
	sig           [64]byte
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
	issued := time.Unix(e.iat, 0)
	if issued.After(now) || now.Sub(issued) >= renewAfter {
		return cachedCert{}, false
	}
	return e, true
}

// putSigned remembers token, just signed for vin by kid with the
// protected header header over the claims whose coverage JSON is cover
// and hash is hash, replacing the car's certificate before it. It keeps
// the entry only if the entry rebuilds to token byte for byte.
func (c *certCache) putSigned(vin billing.VIN, hash, kid string, iat, nbf, exp int64, cover []byte, header, token string) {
	if c == nil {
		return
	}
	e := cachedCert{hash: hash, kid: kid, iat: iat, nbf: nbf, exp: exp}
	last := strings.LastIndexByte(token, '.')
	if last < 0 {
		return
	}
	if n, err := base64.RawURLEncoding.Decode(e.sig[:], []byte(token[last+1:])); err != nil || n != len(e.sig) {
		return
	}
	if rebuilt, ok := e.token(header, cover); !ok || string(rebuilt) != token {
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

// zeroInstants is how the claims' JSON with iat, nbf and exp zero (the
// coverage JSON the hash is taken of) holds them: once, since a quote
// inside a JSON string is escaped.
const zeroInstants = `"iat":0,"nbf":0,"exp":0,`

// token is the compact JWS of e: header, the payload (cover with e's
// instants) and e's signature, base64url. It is false if cover does not
// hold the instants where coverageJSON puts them.
func (e cachedCert) token(header string, cover []byte) ([]byte, bool) {
	i := bytes.Index(cover, []byte(zeroInstants))
	if i < 0 {
		return nil, false
	}
	var buf [2048]byte // a certificate's payload is about 700 bytes: on the stack
	payload := append(buf[:0], cover[:i]...)
	payload = strconv.AppendInt(append(payload, `"iat":`...), e.iat, 10)
	payload = strconv.AppendInt(append(payload, `,"nbf":`...), e.nbf, 10)
	payload = strconv.AppendInt(append(payload, `,"exp":`...), e.exp, 10)
	payload = append(append(payload, ','), cover[i+len(zeroInstants):]...)

	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(len(e.sig)))
	out = append(append(out, header...), '.')
	out = enc.AppendEncode(out, payload)
	out = enc.AppendEncode(append(out, '.'), e.sig[:])
	return out, true
}
