package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const ctxRequestID = "request_id"

// requestID takes a sane X-Request-Id from the caller or makes one, and
// echoes it in the response.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !saneRequestID(id) {
		var b [12]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// recover turns a panic into a logged 500 that shows nothing internal.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.fail(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// certificates counts certificates answered 200 by where the token
	// came from: "cache" (signed for an earlier request) or "signer"
	// (signed for this one: a cache miss, or the cache is off).
	certificates             *prometheus.CounterVec
	certsCached, certsSigned prometheus.Counter // its two series
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by route template, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method", "status"}),
		certificates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certificates_served_total",
			Help: "Certificates answered 200, by source: cache (signed for an earlier request, still current) or signer (signed for this request).",
		}, []string{"source"}),
	}
	m.certsCached, m.certsSigned = m.certificates.WithLabelValues("cache"), m.certificates.WithLabelValues("signer")
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.certificates} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe logs every request as one JSON line (at info; server errors at
// warn) and records its metrics by route template (never the raw path,
// which would explode cardinality).
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	code := c.Writer.Status()
	status := strconv.Itoa(code)
	s.metrics.requests.WithLabelValues(route, c.Request.Method, status).Inc()
	s.metrics.duration.WithLabelValues(route, c.Request.Method, status).Observe(elapsed.Seconds())
	// Server errors are logged at warn, so that log.level warn keeps
	// them (with their route, status and timing) while dropping the line
	// of every other request, and nothing is built for those.
	level := slog.LevelInfo
	if code >= http.StatusInternalServerError {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(c.Request.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", c.GetString(ctxRequestID)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", code),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client_ip", c.ClientIP()),
	}
	if p := principal(c); p.Role != "" {
		attrs = append(attrs, slog.String("role", string(p.Role)), slog.String("sub", p.Subject))
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

func (s *Server) metricsHandler() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
	return func(c *gin.Context) { h.ServeHTTP(c.Writer, c.Request) }
}
