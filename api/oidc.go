package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"entitlements/billing"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// IdPConfig configures staff sign-in with an OpenID Connect identity
// provider: tokens it signs with a key from its JWKS are accepted beside
// the HS256 tokens of auth.token_secret.
type IdPConfig struct {
	JWKSURL  string // the identity provider's JWK Set (jwks_uri)
	Issuer   string // the iss every token must carry, exactly
	Audience string // a value the token's aud must contain

	// RoleClaim names the claim holding the caller's roles: a string or an
	// array of strings. A name that is not a top-level claim is read as a
	// dotted path (realm_access.roles). Defaults to "roles".
	RoleClaim string
	// SubjectClaim names the string claim used as the principal's subject
	// (the refund operator). Defaults to "sub".
	SubjectClaim string
	// Roles maps a value of the role claim to the role it grants. Values
	// not listed are ignored. Defaults to billing → billing and ops → ops:
	// the identity provider grants no vehicle, owner or carrier role unless
	// configured to.
	Roles map[string]Role

	// Refresh is how often the JWK Set is fetched again; defaults to an
	// hour. A key removed from the set is refused after the next fetch.
	Refresh time.Duration
	// UnknownKeyRefresh is the least time between fetches caused by a
	// token whose kid is not in the set (a key the provider has just
	// added); defaults to a minute. Tokens with an unknown kid arriving
	// faster are refused without a fetch.
	UnknownKeyRefresh time.Duration
	// HTTPClient fetches the JWK Set; defaults to a client with a 10s
	// timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger // defaults to discarding
}

// IdP verifies tokens signed by an identity provider's keys.
type IdP struct {
	issuer, audience string
	roleClaim        string
	subjectClaim     string
	roles            map[string]Role
	keys             *keySet
	keyfunc          keyfunc.Keyfunc
}

// idpMethods are the signing algorithms accepted from the identity
// provider. HS256 is not among them: it is the shared secret's, and a
// public key must never be used as an HMAC secret.
var idpMethods = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}

// unknownKeyWait bounds how long a request waits for the rate limit of
// unknown-kid fetches and for the fetch itself.
const unknownKeyWait = 5 * time.Second

// NewIdP fetches the JWK Set once (waiting at most 10s) and keeps it
// fresh until ctx ends. An unreachable JWK Set is not an error: the
// service starts, the failure is logged, and identity-provider tokens are
// refused until a later fetch succeeds (the periodic one, or one caused by
// a token's unknown kid).
func NewIdP(ctx context.Context, c IdPConfig) (*IdP, error) {
	if c.JWKSURL == "" || c.Issuer == "" || c.Audience == "" {
		return nil, errors.New("identity provider: the JWKS URL, issuer and audience are all required")
	}
	v := &IdP{
		issuer:       c.Issuer,
		audience:     c.Audience,
		roleClaim:    or(c.RoleClaim, "roles"),
		subjectClaim: or(c.SubjectClaim, "sub"),
		roles:        maps.Clone(c.Roles),
	}
	if v.roles == nil {
		v.roles = map[string]Role{string(RoleBilling): RoleBilling, string(RoleOps): RoleOps}
	}
	if len(v.roles) == 0 {
		return nil, errors.New("identity provider: it must be allowed to grant at least one role")
	}
	for name, r := range v.roles {
		if name == "" || !validRole(r) {
			return nil, fmt.Errorf("identity provider: claim value %q cannot grant role %q (want one of %v)", name, r, Roles)
		}
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := c.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	v.keys = &keySet{MemoryJWKSet: jwkset.NewMemoryStorage(), log: log, url: c.JWKSURL}
	remote, err := jwkset.NewStorageFromHTTP(c.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			log.WarnContext(ctx, "identity provider keys could not be fetched; its tokens are checked against the last keys fetched, if any",
				slog.String("jwks_url", c.JWKSURL), slog.String("error", err.Error()))
		},
		RefreshInterval: or(c.Refresh, time.Hour),
		Storage:         v.keys,
	})
	if err != nil {
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{c.JWKSURL: remote},
		RateLimitWaitMax:  unknownKeyWait,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(or(c.UnknownKeyRefresh, time.Minute)), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	// Keys marked for encryption are not signing keys; most providers
	// mark theirs "sig", some leave use out.
	v.keyfunc, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: storage, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	return v, nil
}

// KeysLoaded reports whether a JWK Set has been fetched.
func (v *IdP) KeysLoaded() bool { return v.keys.isLoaded() }

// signedWithSecret reports whether raw's header names HS256, the shared
// secret's algorithm. Such tokens stay on the secret's path; every other
// token is the identity provider's to verify.
func signedWithSecret(raw string) bool {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(b, &h) == nil && h.Alg == jwt.SigningMethodHS256.Alg()
}

var (
	errNoKeyID       = errors.New("the token has no kid header")
	errKeysNotLoaded = errors.New("the identity provider's keys are not loaded")
	errUnknownKey    = errors.New("the token's kid is not among the identity provider's keys")
	errKeyMismatch   = errors.New("the token's alg does not fit the key its kid names")
)

// verify checks a token from the identity provider at now and maps its
// claims to a principal. Every failure is EUnauthorized.
func (v *IdP) verify(raw string, now time.Time) (cachedToken, error) {
	var claims idpClaims
	var kid string
	var fp [32]byte
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header[jwkset.HeaderKID].(string)
		if kid == "" {
			return nil, errNoKeyID
		}
		key, err := v.keyfunc.Keyfunc(t)
		switch {
		case err != nil && !v.keys.isLoaded():
			return nil, errKeysNotLoaded
		case errors.Is(err, jwkset.ErrKeyNotFound):
			return nil, errUnknownKey
		case err != nil:
			return nil, err
		}
		if !keyFits(key, t.Method.Alg()) {
			return nil, errKeyMismatch
		}
		fp, err = keyPrint(key)
		return key, err
	},
		jwt.WithValidMethods(idpMethods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(tokenLeeway),
	)
	if err != nil {
		return cachedToken{}, idpError(err)
	}
	p, err := v.principal(claims.all)
	if err != nil {
		return cachedToken{}, err
	}
	t := cachedToken{p: p, expires: claims.ExpiresAt.Time, keyCurrent: func() bool { return v.keys.has(kid, fp) }}
	if claims.NotBefore != nil {
		t.notBefore = claims.NotBefore.Time
	}
	return t, nil
}

// idpError says in words why a token was refused.
func idpError(err error) error {
	unauthorized := func(msg string) error { return billing.Errorf(billing.EUnauthorized, "%s", msg) }
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized("the token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthorized("the token's issuer is not the configured identity provider")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized("the token is not for this service (audience)")
	case errors.Is(err, errKeysNotLoaded):
		return unauthorized("the identity provider's signing keys are not loaded yet; try again shortly")
	}
	for _, e := range []error{errNoKeyID, errUnknownKey, errKeyMismatch} {
		if errors.Is(err, e) {
			return unauthorized(e.Error())
		}
	}
	return unauthorized("the token is not valid")
}

// principal maps the claims to the caller. The role claim may hold one
// value or several; values the configuration does not map are ignored, and
// a token whose values map to more than one role is refused rather than
// resolved by the order the provider happened to list them in.
func (v *IdP) principal(all map[string]any) (Principal, error) {
	var names []string
	switch x := claim(all, v.roleClaim).(type) {
	case string:
		names = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				names = append(names, s)
			}
		}
	case nil:
		return Principal{}, billing.Errorf(billing.EUnauthorized, "the token has no %s claim", v.roleClaim)
	default:
		return Principal{}, billing.Errorf(billing.EUnauthorized, "the token's %s claim is neither a string nor an array of strings", v.roleClaim)
	}
	var granted []Role
	for _, n := range names {
		if r, ok := v.roles[n]; ok && !slices.Contains(granted, r) {
			granted = append(granted, r)
		}
	}
	switch len(granted) {
	case 0:
		return Principal{}, billing.Errorf(billing.EUnauthorized, "the token's %s claim grants none of the roles the identity provider may grant here", v.roleClaim)
	case 1:
	default:
		slices.Sort(granted)
		return Principal{}, billing.Errorf(billing.EUnauthorized, "the token's %s claim grants several roles (%v); the identity provider must grant exactly one", v.roleClaim, granted)
	}
	sub, ok := claim(all, v.subjectClaim).(string)
	switch {
	case !ok || sub == "":
		return Principal{}, billing.Errorf(billing.EUnauthorized, "the token has no %s claim (the subject)", v.subjectClaim)
	case billing.SubjectField.Check(sub) != "":
		return Principal{}, billing.Errorf(billing.EUnauthorized, "the token's subject has control or invisible characters or is too long")
	}
	if granted[0] == RoleVehicle {
		vin, err := billing.ParseVIN(sub)
		if err != nil {
			return Principal{}, billing.Errorf(billing.EUnauthorized, "a vehicle token's subject must be a VIN")
		}
		sub = string(vin)
	}
	return Principal{Role: granted[0], Subject: sub}, nil
}

// claim is the claim called name, or, when there is none, the one its
// dotted path leads to (realm_access.roles); nil when neither exists.
func claim(all map[string]any, name string) any {
	if v, ok := all[name]; ok {
		return v
	}
	parts := strings.Split(name, ".")
	var cur any = all
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// idpClaims are the registered claims, with exp, nbf and iat held to JSON
// numbers as for the shared secret's tokens, and every claim by name for
// the role and subject mapping.
type idpClaims struct {
	jwt.RegisteredClaims
	all map[string]any
}

func (c *idpClaims) UnmarshalJSON(b []byte) error {
	if err := numericDates(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.all)
}

// keyFits reports whether key is one alg may be verified with: RS256 an
// RSA key of at least 2048 bits, ES256 a P-256 key. This holds whether or
// not the JWK names its alg.
func keyFits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == jwt.SigningMethodRS256.Alg() && k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return alg == jwt.SigningMethodES256.Alg() && k.Curve == elliptic.P256()
	}
	return false
}

// keyPrint identifies a public key: the SHA-256 of its PKIX encoding.
func keyPrint(key any) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(der), nil
}

// keySet holds the identity provider's current keys, replaced whole on
// each successful fetch, and the print of each by kid, so that a cached
// token can be checked against the current set in a map look-up.
type keySet struct {
	*jwkset.MemoryJWKSet
	log *slog.Logger
	url string

	mu     sync.RWMutex // protects prints and loaded
	prints map[string][32]byte
	loaded bool
}

// KeyReplaceAll is called with every successfully fetched set. The prints
// change first: a token verified with a key that is being removed may be
// cached a moment after, but is never found valid again.
func (k *keySet) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	prints := make(map[string][32]byte, len(given))
	for _, j := range given {
		key := j.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		if p, err := keyPrint(key); err == nil {
			prints[j.Marshal().KID] = p
		}
	}
	k.mu.Lock()
	changed := !k.loaded || !maps.Equal(prints, k.prints)
	k.prints, k.loaded = prints, true
	k.mu.Unlock()
	if changed {
		k.log.InfoContext(ctx, "identity provider keys loaded", slog.String("jwks_url", k.url), slog.Any("kids", slices.Sorted(maps.Keys(prints))))
	}
	return k.MemoryJWKSet.KeyReplaceAll(ctx, given)
}

func (k *keySet) isLoaded() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.loaded
}

// has reports whether the key that fp identifies is still the set's key
// kid.
func (k *keySet) has(kid string, fp [32]byte) bool {
	k.mu.RLock()
	p, ok := k.prints[kid]
	k.mu.RUnlock()
	return ok && p == fp
}
