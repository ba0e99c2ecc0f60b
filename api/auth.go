package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
)

// Role is what a token's bearer is.
type Role string

const (
	RoleVehicle Role = "vehicle" // sub is the car's VIN
	RoleOwner   Role = "owner"   // sub is the owner_id
	RoleBilling Role = "billing"
	RoleOps     Role = "ops"
	RoleCarrier Role = "carrier"
)

// Roles lists every role, for validation and tests.
var Roles = []Role{RoleVehicle, RoleOwner, RoleBilling, RoleOps, RoleCarrier}

func validRole(r Role) bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Claims are the token's claims: sub, role and exp are required.
type Claims struct {
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

// errNotNumericDate: a time claim that is not a JSON number.
var errNotNumericDate = errors.New("exp, nbf and iat must be JSON numbers (RFC 7519 NumericDate)")

// UnmarshalJSON decodes the claims, refusing exp, nbf or iat that are not
// JSON numbers: RFC 7519 makes them NumericDate, a number of seconds
// (fractions allowed), but golang-jwt also reads a string such as
// "1767225600", which a token minted by some other system must not get
// past us with.
func (c *Claims) UnmarshalJSON(b []byte) error {
	if err := numericDates(b); err != nil {
		return err
	}
	type plain Claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// numericDates returns errNotNumericDate if the claims b have an exp, nbf
// or iat that is not a JSON number.
func numericDates(b []byte) error {
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &times); err != nil {
		return err
	}
	for _, raw := range []json.RawMessage{times.Exp, times.Nbf, times.Iat} {
		if len(raw) > 0 && raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return errNotNumericDate
		}
	}
	return nil
}

// Principal is the authenticated caller.
type Principal struct {
	Role    Role
	Subject string
}

// MintToken signs an HS256 token for role and subject valid for ttl from now.
func MintToken(secret []byte, role Role, subject string, ttl time.Duration, now time.Time) (string, error) {
	if !validRole(role) {
		return "", fmt.Errorf("unknown role %q (want one of %v)", role, Roles)
	}
	if err := billing.SubjectField.Error(subject); err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
	}
	if role == RoleVehicle {
		vin, err := billing.ParseVIN(subject)
		if err != nil {
			return "", err
		}
		subject = string(vin)
	}
	claims := Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

const ctxPrincipal = "principal"

// authenticate parses the bearer token; any problem is EUnauthorized.
func (s *Server) authenticate(c *gin.Context) (Principal, error) {
	// The scheme name is case-insensitive (RFC 9110 section 11.1).
	scheme, raw, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return Principal{}, billing.Errorf(billing.EUnauthorized, "a bearer token is required")
	}
	now := s.now()
	key := tokenKey(raw)
	if p, ok := s.tokens.get(key, now); ok {
		return p, nil
	}
	t, err := s.verifyToken(raw, now)
	if err != nil {
		return Principal{}, err
	}
	s.tokens.put(key, t)
	return t.p, nil
}

// verifyToken checks raw's signature and claims at now, and returns its
// principal with the time bounds a cached copy is held to.
func (s *Server) verifyToken(raw string, now time.Time) (cachedToken, error) {
	if s.idp != nil && !signedWithSecret(raw) {
		return s.idp.verify(raw, now) // see oidc.go
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.tokenSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(tokenLeeway),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return cachedToken{}, billing.Errorf(billing.EUnauthorized, "the token has expired")
	case err != nil:
		return cachedToken{}, billing.Errorf(billing.EUnauthorized, "the token is not valid")
	case claims.Subject == "":
		return cachedToken{}, billing.Errorf(billing.EUnauthorized, "the token has no subject")
	case billing.SubjectField.Check(claims.Subject) != "":
		return cachedToken{}, billing.Errorf(billing.EUnauthorized, "the token's subject has control or invisible characters or is too long")
	case !validRole(claims.Role):
		return cachedToken{}, billing.Errorf(billing.EUnauthorized, "the token has no known role")
	}
	t := cachedToken{p: Principal{Role: claims.Role, Subject: claims.Subject}, expires: claims.ExpiresAt.Time}
	if claims.NotBefore != nil {
		t.notBefore = claims.NotBefore.Time
	}
	return t, nil
}

// tokenLeeway is the clock skew allowed on a token's exp and nbf.
const tokenLeeway = 30 * time.Second

// allow authenticates the request and lets it through only for the given
// roles: deny by default.
func (s *Server) allow(roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.authenticate(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		// Set before the role check, so that a 403's request line names
		// the role and subject that were refused.
		c.Set(ctxPrincipal, p)
		for _, r := range roles {
			if p.Role == r {
				// The one place a token's bearer becomes the actor of
				// what the request changes (the audit trail).
				c.Request = c.Request.WithContext(billing.WithActor(c.Request.Context(),
					billing.Actor{Role: string(p.Role), Subject: p.Subject, RequestID: c.GetString(ctxRequestID)}))
				c.Next()
				return
			}
		}
		s.fail(c, billing.Errorf(billing.EForbidden, "role %s may not do this", p.Role))
	}
}

func principal(c *gin.Context) Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(Principal)
	return pr
}

// viewer is the caller as the visibility rule (billing.Viewer) sees it.
func viewer(c *gin.Context) billing.Viewer {
	p := principal(c)
	w := billing.Viewer{Subject: p.Subject}
	switch p.Role {
	case RoleVehicle:
		w.Audience = billing.AudienceVehicle
	case RoleOwner:
		w.Audience = billing.AudienceOwner
	case RoleBilling, RoleOps:
		w.Audience = billing.AudienceStaff
	}
	return w
}

// vehicleFor parses the path's VIN and loads the vehicle if the caller may
// see it (see readVehicle).
func (s *Server) vehicleFor(c *gin.Context) (billing.VIN, billing.Vehicle, error) {
	return readVehicle(c, func(vin billing.VIN) (billing.Vehicle, string, error) {
		v, err := s.store.Vehicle(c.Request.Context(), vin)
		return v, v.OwnerID, err
	})
}

// readVehicle parses the path's VIN and returns what load reads for it, if
// the caller may see that vehicle (billing.Viewer). load also returns the
// vehicle's owner. It is the one place where VIN-scoped endpoints apply the
// rule: a caller who may not see the car gets billing.VehicleNotFound,
// whether the car is another's, not activated, or unknown; a vehicle token
// is refused before anything is read.
func readVehicle[T any](c *gin.Context, load func(billing.VIN) (T, string, error)) (billing.VIN, T, error) {
	var zero T
	vin, err := billing.ParseVIN(c.Param("vin"))
	if err != nil {
		return "", zero, err
	}
	w := viewer(c)
	if !w.MayAsk(vin) {
		return vin, zero, billing.VehicleNotFound(vin)
	}
	if w.Audience == billing.AudienceOwner {
		c.Request = c.Request.WithContext(billing.WithOwnershipCheck(c.Request.Context()))
	}
	out, owner, err := load(vin)
	if billing.IsCode(err, billing.EVehicleNotFound) && !w.MayLearnNotActivated(vin) {
		return vin, zero, billing.VehicleNotFound(vin)
	}
	if err != nil {
		return vin, zero, err
	}
	if !w.MaySeeVehicle(vin, owner) {
		return vin, zero, billing.VehicleNotFound(vin)
	}
	return vin, out, nil
}
