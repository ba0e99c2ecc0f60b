// Package api is the service's HTTP interface: gin handlers, bearer-token
// auth, problem+json errors and the OpenAPI document they are tested
// against.
package api

import (
	"context"
	_ "embed"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the service's OpenAPI document.
func OpenAPI() []byte { return openAPI }

// Store is what the handlers need from persistence.
type Store interface {
	Ping(ctx context.Context) error
	Vehicle(ctx context.Context, vin billing.VIN) (billing.Vehicle, error)
	Activate(ctx context.Context, vin billing.VIN, a billing.Activation, trial billing.TrialTerms, loc *time.Location, now time.Time) (billing.Vehicle, bool, error)
	TransferOwner(ctx context.Context, vin billing.VIN, ownerID string, now time.Time) (billing.Vehicle, error)

	CreateOrder(ctx context.Context, o billing.Order, k billing.IdempotencyKey, render billing.Render[billing.Order]) (billing.StoredResponse, error)
	Order(ctx context.Context, id string) (billing.Order, error)
	Orders(ctx context.Context, q billing.OrderQuery) ([]billing.Order, *billing.Cursor, error)
	ApplyPayment(ctx context.Context, p billing.Payment, loc *time.Location, now time.Time) (billing.Order, error)

	RefundOrder(ctx context.Context, orderID string, req billing.RefundRequest, operator string,
		k billing.IdempotencyKey, render billing.Render[billing.Refund], loc *time.Location, now time.Time) (billing.StoredResponse, error)
	PreviewRefund(ctx context.Context, orderID string, req billing.RefundRequest, operator string,
		loc *time.Location, now time.Time) (billing.Refund, billing.Timeline, error)
	Refunds(ctx context.Context, q billing.RefundQuery) ([]billing.Refund, *billing.Cursor, error)
	VehiclesOf(ctx context.Context, ownerID string, after *billing.Cursor, limit int) ([]billing.Vehicle, *billing.Cursor, error)
	QueryNotices(ctx context.Context, q billing.NoticeQuery) ([]billing.Notice, error)
	Snapshot(ctx context.Context, vin billing.VIN, cycle billing.Cycle) (billing.Snapshot, error)
	IngestUsage(ctx context.Context, recs []billing.UsageRecord, thresholds []int, loc *time.Location, now time.Time) (billing.IngestResult, error)
	AuditEntries(ctx context.Context, q billing.AuditQuery) ([]billing.AuditEntry, *billing.Cursor, error)

	SnapshotAt(ctx context.Context, vin billing.VIN, p billing.Point, horizon time.Time, loc *time.Location) (billing.PointSnapshot, error)
	TimelineHistory(ctx context.Context, vin billing.VIN) ([]billing.TimelineVersion, error)
}

// Options are the server's dependencies. Store, Catalog, Location and
// TokenSecret are required.
type Options struct {
	Store          Store
	Catalog        billing.Catalog
	Location       *time.Location
	TokenSecret    []byte
	IdP            *IdP             // staff sign-in with an identity provider; nil: off
	Now            func() time.Time // defaults to time.Now
	Logger         *slog.Logger     // defaults to discarding
	Registerer     prometheus.Registerer
	Gatherer       prometheus.Gatherer
	TrustedProxies []string // none by default: X-Forwarded-For is ignored
	// BenchEndpoint adds GET /v1/_bench/static, a fixed JSON body behind
	// the same middleware and auth as every endpoint: the load harness's
	// ceiling. Off in production.
	BenchEndpoint bool

	// PaymentSecret verifies Payment-Signature (payments.webhook_secret);
	// without it every payment notification is refused.
	PaymentSecret []byte
	// PaymentTolerance is how far a notification's t may be from now, in
	// either direction (payments.tolerance); defaults to 5 minutes.
	PaymentTolerance time.Duration
	// UnpaidTTL is how long a new order stays payable (orders.unpaid_ttl);
	// defaults to 30 minutes.
	UnpaidTTL time.Duration

	// Limits bound the request bodies held and the requests in progress
	// at once (limits.*); zero fields take their defaults.
	Limits Limits
	// Certificates configure GET /v1/vehicles/{vin}/certificate and the
	// JWKS; without Keys the certificate endpoint answers 503.
	Certificates CertificateOptions

	QuotaThresholds []int         // notices.quota_thresholds: percent of the allowance that raise a quota.threshold notice
	UsageRetention  time.Duration // usage.retention: older usage records are rejected (they would be pruned); 0 = no limit
}

// Server serves the API.
type Server struct {
	store       Store
	catalog     billing.Catalog
	loc         *time.Location
	tokenSecret []byte
	idp         *IdP        // nil: only tokenSecret's tokens
	tokens      *tokenCache // verified tokens
	now         func() time.Time
	log         *slog.Logger
	metrics     *metrics
	gatherer    prometheus.Gatherer
	engine      *gin.Engine
	limits      *limiter

	paymentSecret    []byte
	paymentTolerance time.Duration
	unpaidTTL        time.Duration
	quotaThresholds  []int
	usageRetention   time.Duration
	certs            CertificateOptions
	certCache        *certCache // nil: off
}

// New builds the server and its router.
func New(o Options) (*Server, error) {
	s := &Server{
		store:       o.Store,
		catalog:     o.Catalog,
		loc:         o.Location,
		tokenSecret: o.TokenSecret,
		idp:         o.IdP,
		tokens:      newTokenCache(tokenCacheBytes, tokenLeeway),
		now:         o.Now,
		log:         o.Logger,
		gatherer:    o.Gatherer,

		paymentSecret:    o.PaymentSecret,
		paymentTolerance: or(o.PaymentTolerance, 5*time.Minute),
		unpaidTTL:        or(o.UnpaidTTL, 30*time.Minute),
		quotaThresholds:  o.QuotaThresholds,
		usageRetention:   o.UsageRetention,
		certs:            o.Certificates,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registerer == nil {
		reg := prometheus.NewRegistry()
		o.Registerer, s.gatherer = reg, reg
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if o.Certificates.CacheEntries < 0 {
		return nil, errors.New("certificate cache entries must not be negative")
	}
	if s.certCache, err = newCertCache(o.Certificates.CacheEntries); err != nil {
		return nil, err
	}
	if s.limits, err = newLimiter(o.Limits); err != nil {
		return nil, err
	}
	if err := s.routes(o.TrustedProxies, o.BenchEndpoint); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) routes(trusted []string, bench bool) error {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(trusted); err != nil {
		return err
	}
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false // a 404 problem, not an HTML redirect
	r.ContextWithFallback = true
	r.Use(s.requestID, s.recover, s.observe, s.limit)
	r.NoRoute(func(c *gin.Context) { s.fail(c, billing.Errorf(billing.ENotFound, "no such endpoint")) })
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, billing.Errorf("method_not_allowed", "method %s is not allowed here", c.Request.Method))
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metricsHandler())
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openAPI) })
	r.GET("/.well-known/jwks.json", s.jwks)

	staff := []Role{RoleBilling, RoleOps}
	readers := append([]Role{RoleVehicle, RoleOwner}, staff...)
	v1 := r.Group("/v1")
	v1.GET("/me", s.allow(Roles...), s.me)
	v1.GET("/products", s.allow(readers...), s.listProducts)
	v1.POST("/vehicles/:vin/activation", s.allow(RoleOps), s.activate)
	v1.PUT("/vehicles/:vin/owner", s.allow(RoleOps), s.transferOwner)
	v1.GET("/vehicles/:vin/entitlement", s.allow(readers...), s.entitlement)
	v1.GET("/vehicles/:vin/features", s.allow(readers...), s.features)
	v1.GET("/vehicles/:vin/features/:feature", s.allow(readers...), s.feature)
	v1.GET("/vehicles/:vin/certificate", s.allow(readers...), s.certificate)
	v1.GET("/vehicles/:vin/timeline/history", s.allow(staff...), s.timelineHistory)
	if bench {
		static := gin.H{"status": "ok", "covered": true, "days_left": 42}
		v1.GET("/_bench/static", s.allow(Roles...), func(c *gin.Context) { c.JSON(http.StatusOK, static) })
	}
	v1.POST("/vehicles/:vin/orders", s.allow(RoleOwner), s.createOrder)
	v1.GET("/vehicles/:vin/orders", s.allow(append([]Role{RoleOwner}, staff...)...), s.listOrders)
	v1.GET("/orders/:id", s.allow(append([]Role{RoleOwner}, staff...)...), s.getOrder)
	// Authenticated by Payment-Signature, not by a bearer token.
	v1.POST("/payments/notifications", s.paymentNotification)
	v1.POST("/orders/:id/refunds", s.allow(RoleBilling), s.createRefund)
	v1.GET("/refunds", s.allow(RoleBilling), s.listRefunds)
	v1.GET("/vehicles/:vin/notices", s.allow(RoleOwner, RoleBilling, RoleOps), s.listNotices)
	v1.POST("/usage", s.allow(RoleCarrier), s.ingestUsage)
	v1.GET("/audit", s.allow(staff...), s.listAudit)
	v1.GET("/vehicles", s.allow(staff...), s.listVehicles)
	s.consoleRoutes(r)
	s.engine = r
	return nil
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", slog.String("error", err.Error()))
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "database": "unreachable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "database": "ok"})
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
