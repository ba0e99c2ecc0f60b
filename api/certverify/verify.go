package certverify

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"entitlements/billing"

	"github.com/go-jose/go-jose/v4"
)

// Errors of Verify and Decide; compare with errors.Is.
var (
	ErrUnknownKey     = errors.New("certificate is signed with a key the JWKS does not hold")
	ErrBadSignature   = errors.New("certificate signature does not verify")
	ErrWrongVehicle   = errors.New("certificate is for another vehicle")
	ErrWrongIssuer    = errors.New("certificate is from another issuer")
	ErrNotYetValid    = errors.New("certificate is not valid yet")
	ErrExpired        = errors.New("certificate has expired")
	ErrSuperseded     = errors.New("certificate is older than the epoch last seen online")
	ErrUnknownFeature = errors.New("feature is not known")
)

// Verifier checks certificates against one JWKS.
type Verifier struct {
	keys   map[string]ed25519.PublicKey // by kid
	issuer string
}

// NewVerifier reads a JWKS (RFC 7517) and keeps its Ed25519 keys (RFC 8037:
// kty OKP, crv Ed25519), by kid. issuer, if not empty, is the iss every
// certificate must carry.
func NewVerifier(jwks []byte, issuer string) (*Verifier, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	v := &Verifier{keys: map[string]ed25519.PublicKey{}, issuer: issuer}
	for _, k := range set.Keys {
		if pub, ok := k.Key.(ed25519.PublicKey); ok && k.KeyID != "" {
			v.keys[k.KeyID] = pub
		}
	}
	if len(v.keys) == 0 {
		return nil, errors.New("read JWKS: no Ed25519 key with a kid")
	}
	return v, nil
}

// Verified is a certificate whose signature and claims were checked.
type Verified struct {
	Claims Claims
	cert   billing.Certificate
}

// Verify checks token, a compact JWS, for the car vin at its clock now:
// alg EdDSA with a key of the JWKS named by kid, typ entitlement+jwt, the
// issuer, sub = vin, nbf <= now < exp, and epoch >= minEpoch (the highest
// epoch the car has seen online; 0 if none).
func (v *Verifier) Verify(token, vin string, now time.Time, minEpoch int64) (*Verified, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrMalformed, len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrMalformed, typ, Type)
	}
	key, ok := v.keys[h.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, h.KeyID)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	cert, err := c.Certificate()
	if err != nil {
		return nil, err
	}
	switch {
	case v.issuer != "" && c.Issuer != v.issuer:
		return nil, fmt.Errorf("%w: %q", ErrWrongIssuer, c.Issuer)
	case c.Subject != vin:
		return nil, fmt.Errorf("%w: %s", ErrWrongVehicle, c.Subject)
	case now.Before(cert.NotBefore):
		return nil, fmt.Errorf("%w: not before %s", ErrNotYetValid, cert.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(cert.Expires):
		return nil, fmt.Errorf("%w: at %s", ErrExpired, cert.Expires.UTC().Format(time.RFC3339))
	case c.Epoch < minEpoch:
		return nil, fmt.Errorf("%w: epoch %d < %d", ErrSuperseded, c.Epoch, minEpoch)
	}
	return &Verified{Claims: c, cert: cert}, nil
}

// Decision is the answer of the online feature check
// (GET /v1/vehicles/{vin}/features/{feature}).
type Decision struct {
	Feature   string         `json:"feature"`
	Tier      billing.Tier   `json:"tier"`
	Allowed   bool           `json:"allowed"`
	Throttled bool           `json:"throttled"`
	Reason    billing.Reason `json:"reason"`
}

// Decide answers whether the car may use feature over conn ("cellular",
// "hotspot" or "" for cellular) at the instant at, which must lie within
// the certificate's validity: ErrNotYetValid, ErrExpired, ErrUnknownFeature,
// or a billing validation error for a bad connection.
func (c *Verified) Decide(feature, conn string, at time.Time) (Decision, error) {
	cn, err := billing.ParseConnection(conn)
	if err != nil {
		return Decision{}, err
	}
	if at.Before(c.cert.NotBefore) {
		return Decision{}, ErrNotYetValid
	}
	if !at.Before(c.cert.Expires) {
		return Decision{}, ErrExpired
	}
	d, ok := c.cert.DecideAt(feature, cn, at)
	if !ok {
		return Decision{}, fmt.Errorf("%w: %q", ErrUnknownFeature, feature)
	}
	return Decision{Feature: d.Feature, Tier: d.Tier, Allowed: d.Allowed, Throttled: d.Throttled, Reason: d.Reason}, nil
}

// Expires is the end of the certificate's validity.
func (c *Verified) Expires() time.Time { return c.cert.Expires }

// Epoch is the vehicle's epoch when the certificate was issued.
func (c *Verified) Epoch() int64 { return c.cert.Epoch }
