package api

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"entitlements/api/certverify"
)

// ParseSigningKey reads an Ed25519 private key from PEM (PKCS#8, "PRIVATE
// KEY"), the form `keys generate` writes and `openssl genpkey -algorithm
// ed25519` prints.
func ParseSigningKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block (PKCS#8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PKCS#8: %w", err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is a %T, want an Ed25519 key", k)
	}
	return ed, nil
}

// GenerateSigningKey returns a new Ed25519 private key as PEM (PKCS#8).
func GenerateSigningKey() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// KeyID is a public key's kid: its RFC 7638 JWK thumbprint (SHA-256,
// base64url). It depends on the key alone, so the kid of the next key is
// known, and published, before that key signs anything.
func KeyID(pub ed25519.PublicKey) string {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err) // an ed25519.PublicKey always has a thumbprint
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// PublishedKey is a public key the JWKS lists besides the signing key:
// the next key, or a retired one until Until (zero: with no end).
type PublishedKey struct {
	Key   ed25519.PublicKey
	Until time.Time
}

// Keyring signs certificates and renders the JWKS. Its zero value (or a
// nil *Keyring) has no signing key: certificates are unavailable.
type Keyring struct {
	signer jose.Signer
	kid    string
	header string            // the signing key's protected header, base64url, as in its tokens
	keys   []jose.JSONWebKey // signing key first
	until  []time.Time       // of keys, zero for no end
}

// NewKeyring returns a keyring that signs with signing (nil: none) and
// publishes its public key and the published keys.
func NewKeyring(signing ed25519.PrivateKey, published ...PublishedKey) (*Keyring, error) {
	k := &Keyring{}
	add := func(pub ed25519.PublicKey, until time.Time) {
		kid := KeyID(pub)
		for _, have := range k.keys {
			if have.KeyID == kid {
				return
			}
		}
		k.keys = append(k.keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"})
		k.until = append(k.until, until)
	}
	if signing != nil {
		pub := signing.Public().(ed25519.PublicKey)
		k.kid = KeyID(pub)
		opts := (&jose.SignerOptions{}).WithType(certverify.Type).WithHeader(jose.HeaderKey("kid"), k.kid)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: signing}, opts)
		if err != nil {
			return nil, fmt.Errorf("certificate signer: %w", err)
		}
		k.signer = s
		// The protected header is the same in every token: the part
		// before the first dot of any of them.
		jws, err := s.Sign(nil)
		if err != nil {
			return nil, fmt.Errorf("certificate signer: %w", err)
		}
		compact, err := jws.CompactSerialize()
		if err != nil {
			return nil, fmt.Errorf("certificate signer: %w", err)
		}
		k.header, _, _ = strings.Cut(compact, ".")
		add(pub, time.Time{})
	}
	for _, p := range published {
		if len(p.Key) != ed25519.PublicKeySize {
			return nil, errors.New("a published key is not an Ed25519 public key")
		}
		add(p.Key, p.Until)
	}
	return k, nil
}

// CanSign reports whether the keyring has a signing key.
func (k *Keyring) CanSign() bool { return k != nil && k.signer != nil }

// KeyID returns the kid of the signing key ("" without one).
func (k *Keyring) KeyID() string {
	if k == nil {
		return ""
	}
	return k.kid
}

// Sign returns payload as a compact JWS: alg EdDSA, typ entitlement+jwt,
// the signing key's kid.
func (k *Keyring) Sign(payload []byte) (string, error) {
	if !k.CanSign() {
		return "", errors.New("no certificate signing key")
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// JWKS renders the key set published at now (retired keys past their
// Until are left out) and its strong ETag.
func (k *Keyring) JWKS(now time.Time) (body []byte, etag string, err error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if k != nil {
		for i, key := range k.keys {
			if u := k.until[i]; u.IsZero() || now.Before(u) {
				set.Keys = append(set.Keys, key)
			}
		}
	}
	body, err = json.Marshal(set)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	return body, `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, nil
}
