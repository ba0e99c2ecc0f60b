package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"
)

// Limits bound what the service takes on at once, so that many callers
// (or one misbehaving one) cannot make it hold more memory than the
// operator planned for. Zero fields take the defaults below.
type Limits struct {
	// BodyBytes bounds the bytes of request bodies read and held at once,
	// by all requests together (limits.body_bytes_in_flight). A request
	// takes its share before reading its body, by its Content-Length (or
	// chunk by chunk as it reads a chunked body, up to the endpoint's
	// largest body), and gives it back when it has been answered. It must
	// be at least MaxUsageBodyBytes, the largest body.
	BodyBytes int64
	// Wait is how long a request waits for room, in the body budget or
	// among its class's requests, before it is answered 503 (limits.wait).
	Wait time.Duration
	// Requests in progress at once, per endpoint class
	// (limits.concurrent.*): reads are the GETs under /v1, payments the
	// payment notifications, usage the carrier's batches, writes every
	// other POST and PUT under /v1. /healthz, /readyz, /metrics and
	// /openapi.yaml are not limited.
	Reads, Writes, Payments, Usage int
}

// The defaults of Limits. The body budget holds eight of the largest
// usage batches at once, sixty-four 1 MiB bodies; see docs/operations.md
// for what the service's memory comes to under attack with them.
const (
	DefaultBodyBytes        = 64 << 20
	DefaultLimitWait        = time.Second
	DefaultReadsInFlight    = 1024
	DefaultWritesInFlight   = 256
	DefaultPaymentsInFlight = 256
	DefaultUsageInFlight    = 4
)

func (l Limits) withDefaults() Limits {
	l.BodyBytes = or(l.BodyBytes, DefaultBodyBytes)
	l.Wait = or(l.Wait, DefaultLimitWait)
	l.Reads = or(l.Reads, DefaultReadsInFlight)
	l.Writes = or(l.Writes, DefaultWritesInFlight)
	l.Payments = or(l.Payments, DefaultPaymentsInFlight)
	l.Usage = or(l.Usage, DefaultUsageInFlight)
	return l
}

// Validate reports the first limit that cannot work.
func (l Limits) Validate() error {
	switch {
	case l.BodyBytes < 0 || l.Wait < 0 || l.Reads < 0 || l.Writes < 0 || l.Payments < 0 || l.Usage < 0:
		return errors.New("limits must not be negative")
	case l.BodyBytes != 0 && l.BodyBytes < MaxUsageBodyBytes:
		return fmt.Errorf("limits.body_bytes_in_flight must be at least %d (the largest request body, a usage batch), got %d", MaxUsageBodyBytes, l.BodyBytes)
	}
	return nil
}

// codeOverloaded is the problem code of a request refused for want of
// room (503, with Retry-After).
const codeOverloaded = "overloaded"

// endpointClass is what a request counts against in Limits.
type endpointClass int

const (
	classNone endpointClass = iota
	classReads
	classWrites
	classPayments
	classUsage
	numClasses
)

var classNames = [numClasses]string{"", "reads", "writes", "payments", "usage"}

func classOf(method, route string) endpointClass {
	switch {
	case !strings.HasPrefix(route, "/v1/"):
		return classNone
	case route == "/v1/payments/notifications":
		return classPayments
	case route == "/v1/usage":
		return classUsage
	case method == http.MethodGet || method == http.MethodHead:
		return classReads
	}
	return classWrites
}

// limiter holds the weighted semaphores that enforce Limits.
type limiter struct {
	wait       time.Duration
	retryAfter string // seconds, for the Retry-After of a 503
	bodies     *semaphore.Weighted
	classes    [numClasses]*semaphore.Weighted
}

func newLimiter(l Limits) (*limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	l = l.withDefaults()
	lim := &limiter{
		wait:       l.Wait,
		retryAfter: strconv.Itoa(int(math.Ceil(max(l.Wait, time.Second).Seconds()))),
		bodies:     semaphore.NewWeighted(l.BodyBytes),
	}
	for c, n := range map[endpointClass]int{classReads: l.Reads, classWrites: l.Writes, classPayments: l.Payments, classUsage: l.Usage} {
		lim.classes[c] = semaphore.NewWeighted(int64(n))
	}
	return lim, nil
}

// acquire takes n from sem, waiting at most l.wait, and reports whether
// it did.
func (l *limiter) acquire(ctx context.Context, sem *semaphore.Weighted, n int64) bool {
	if sem.TryAcquire(n) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, l.wait)
	defer cancel()
	return sem.Acquire(ctx, n) == nil
}

// overloaded is the error of a request refused for want of room in what.
func overloaded(what string) error {
	return billing.Errorf(codeOverloaded, "the service is busy (%s); retry later", what)
}

const ctxBodyHold = "body_hold"

// bodyHold is a request's share of the body budget, given back by limit
// when the request has been answered.
type bodyHold struct {
	l    *limiter
	ctx  context.Context
	held int64
}

// take adds n bytes to the request's share.
func (h *bodyHold) take(n int64) error {
	if h == nil || n <= 0 {
		return nil
	}
	if !h.l.acquire(h.ctx, h.l.bodies, n) {
		return overloaded("request bodies")
	}
	h.held += n
	return nil
}

func bodyHoldOf(c *gin.Context) *bodyHold {
	v, _ := c.Get(ctxBodyHold)
	h, _ := v.(*bodyHold)
	return h
}

// limit admits a request when its class has room, and gives back its
// class slot and its share of the body budget once it has been answered.
// Requests outside /v1 pass untouched.
func (s *Server) limit(c *gin.Context) {
	cl := classOf(c.Request.Method, c.FullPath())
	if cl == classNone {
		c.Next()
		return
	}
	sem := s.limits.classes[cl]
	if !s.limits.acquire(c.Request.Context(), sem, 1) {
		s.fail(c, overloaded(classNames[cl]+" requests in progress"))
		return
	}
	defer sem.Release(1)
	if cl != classReads {
		h := &bodyHold{l: s.limits, ctx: c.Request.Context()}
		c.Set(ctxBodyHold, h)
		defer func() {
			if h.held > 0 {
				s.limits.bodies.Release(h.held)
			}
		}()
	}
	c.Next()
}

// bodyChunk is how much of the budget a chunked body takes at a time.
const bodyChunk = 64 << 10

// budgetReader takes budget for a body of unknown length (chunked) as it
// is read, a chunk ahead, never more than limit in all.
type budgetReader struct {
	r       io.Reader
	h       *bodyHold
	limit   int64
	read    int64 // bytes read so far
	granted int64 // bytes of budget taken so far
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if len(p) > bodyChunk {
		p = p[:bodyChunk]
	}
	if b.read+int64(len(p)) > b.granted && b.granted < b.limit {
		n := min(int64(bodyChunk), b.limit-b.granted)
		if err := b.h.take(n); err != nil {
			return 0, err
		}
		b.granted += n
	}
	// Past the limit, one byte more is let through unbudgeted: it is how
	// http.MaxBytesReader finds out that a body is too large.
	if room := max(b.granted-b.read, 1); int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}
