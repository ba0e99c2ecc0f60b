package api

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"entitlements/api/certverify"
	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// CertificateOptions configure offline coverage certificates.
type CertificateOptions struct {
	// Keys signs certificates and lists the JWKS; without a signing key
	// the certificate endpoint answers 503 certificate_unavailable.
	Keys *Keyring
	// Issuer is the iss claim (certificate.issuer).
	Issuer string
	// Terms are the validity rules (certificate.ttl, certificate.grace).
	Terms billing.CertificateTerms
	// RenewAfter is how old a certificate may be and still be answered
	// 304 Not Modified when its coverage is unchanged
	// (certificate.renew_after). It must be below Terms.Grace, so that a
	// car holding a 304-confirmed certificate always has Grace-RenewAfter
	// of validity left.
	RenewAfter time.Duration
	// CacheEntries bounds the cache of recently signed certificates, one
	// per car (certificate.cache_entries); 0 turns it off, so that every
	// certificate is signed for its request.
	CacheEntries int
}

// jwtContentType is the media type of a certificate (RFC 7519).
const jwtContentType = "application/jwt"

// certificate handles GET /v1/vehicles/{vin}/certificate: a compact JWS of
// the vehicle's coverage from now on, for the same callers and with the
// same 404s as the entitlement read, computed from the same snapshot.
//
// The ETag is "<coverage hash>.<iat>": the hash covers every claim but
// iat, nbf and exp (so the coverage windows, the cycle's usage, the epoch,
// the features, the issuer and the zone); If-None-Match with the ETag of
// a certificate whose coverage hash is unchanged and which is younger than
// RenewAfter is answered 304, so polling costs one snapshot read and a
// hash, not a signature. Without If-None-Match, a car whose certificate of
// the same coverage and key was signed less than RenewAfter ago gets that
// certificate again from the cache (certcache.go), by the same rule.
func (s *Server) certificate(c *gin.Context) {
	if !s.certs.Keys.CanSign() {
		s.fail(c, billing.Errorf(billing.ECertificateUnavailable,
			"no certificate signing key is configured (certificate.signing_key_file)"))
		return
	}
	now := s.now()
	vin, cert, err := readVehicle(c, func(vin billing.VIN) (billing.Certificate, string, error) {
		snap, err := s.store.Snapshot(c.Request.Context(), vin, billing.CycleAt(now, s.loc))
		if err != nil {
			return billing.Certificate{}, "", err
		}
		return billing.IssueCertificate(snap, s.catalog, s.certs.Terms, now, s.loc), snap.Vehicle.OwnerID, nil
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	claims := certverify.ClaimsOf(cert, s.certs.Issuer, s.loc)
	cover, hash := coverageOf(claims)
	c.Header("Cache-Control", "private, no-cache")
	if tag, ok := s.unchanged(c.GetHeader("If-None-Match"), hash, now); ok {
		c.Header("ETag", tag)
		c.Status(http.StatusNotModified)
		return
	}
	keys := s.certs.Keys
	if e, ok := s.certCache.get(vin, hash, keys.KeyID(), now, s.certs.RenewAfter); ok {
		if token, ok := e.token(keys.header, cover); ok {
			s.metrics.certsCached.Inc()
			c.Header("ETag", certificateETag(hash, e.iat))
			c.Data(http.StatusOK, jwtContentType, token)
			return
		}
	}
	token, err := keys.Sign(appendClaims(make([]byte, 0, len(cover)+64), &claims))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.certCache.putSigned(vin, hash, keys.KeyID(), claims.IssuedAt, claims.NotBefore, claims.Expires, cover, keys.header, token)
	s.metrics.certsSigned.Inc()
	c.Header("ETag", certificateETag(hash, claims.IssuedAt))
	c.Data(http.StatusOK, jwtContentType, []byte(token))
}

// certificateETag is the ETag of the certificate with this coverage hash
// issued at iat (Unix seconds).
func certificateETag(hash string, iat int64) string {
	return `"` + hash + "." + strconv.FormatInt(iat, 10) + `"`
}

// coverageOf returns the claims' JSON with iat, nbf and exp zero (every
// claim but those three: the coverage) and its hash.
func coverageOf(claims certverify.Claims) (cover []byte, hash string) {
	claims.IssuedAt, claims.NotBefore, claims.Expires = 0, 0, 0
	cover = appendClaims(make([]byte, 0, 1024), &claims)
	sum := sha256.Sum256(cover)
	return cover, base64.RawURLEncoding.EncodeToString(sum[:18])
}

// unchanged finds in an If-None-Match header the ETag of a certificate
// with this coverage hash issued less than RenewAfter before now. "*" is
// not honoured: a 304 must name the certificate the car holds, so that
// the car knows which one is still good.
func (s *Server) unchanged(header, hash string, now time.Time) (string, bool) {
	for _, raw := range strings.Split(header, ",") {
		tag := strings.TrimPrefix(strings.TrimSpace(raw), "W/")
		inner := strings.Trim(tag, `"`)
		h, iatText, ok := strings.Cut(inner, ".")
		if !ok || h != hash {
			continue
		}
		iat, err := strconv.ParseInt(iatText, 10, 64)
		if err != nil {
			continue
		}
		issued := time.Unix(iat, 0)
		if !issued.After(now) && now.Sub(issued) < s.certs.RenewAfter {
			return `"` + inner + `"`, true
		}
	}
	return "", false
}

// jwks handles GET /.well-known/jwks.json: the public keys certificates
// are verified with (the signing key, the next key, retired keys for a
// certificate TTL after their last use). No token: a car fetches it
// whenever it is online and keeps it for when it is not.
func (s *Server) jwks(c *gin.Context) {
	body, etag, err := s.certs.Keys.JWKS(s.now())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Header("ETag", etag)
	if match := c.GetHeader("If-None-Match"); match != "" {
		for _, t := range strings.Split(match, ",") {
			if t = strings.TrimPrefix(strings.TrimSpace(t), "W/"); t == etag || t == "*" {
				c.Status(http.StatusNotModified)
				return
			}
		}
	}
	c.Data(http.StatusOK, "application/jwk-set+json", body)
}
