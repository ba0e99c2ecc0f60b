package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store"
)

// heldBody is a request body that counts the bytes read from it and, with
// hold, blocks its first Read until released: a client that is slow to
// send, or one that never does.
type heldBody struct {
	r       io.Reader
	read    atomic.Int64
	started chan struct{} // closed at the first Read
	once    sync.Once
	release chan struct{} // nil: never blocks
}

func newHeldBody(b []byte, hold bool) *heldBody {
	h := &heldBody{r: bytes.NewReader(b), started: make(chan struct{})}
	if hold {
		h.release = make(chan struct{})
	}
	return h
}

func (h *heldBody) Read(p []byte) (int, error) {
	h.once.Do(func() { close(h.started) })
	if h.release != nil {
		<-h.release
	}
	n, err := h.r.Read(p)
	h.read.Add(int64(n))
	return n, err
}

// waitRead waits until the server starts reading b.
func waitRead(t *testing.T, what string, b *heldBody, answered <-chan response) {
	t.Helper()
	select {
	case <-b.started:
	case res := <-answered:
		t.Fatalf("%s = %d %s before its body was read", what, res.Code, res.Body)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: its body was not read in 10 s", what)
	}
}

// send serves r in the background; the response arrives on the channel.
func (h *harness) send(r *http.Request) <-chan response {
	out := make(chan response, 1)
	go func() {
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		out <- response{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
	}()
	return out
}

func await(t *testing.T, what string, ch <-chan response) response {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer in 10 s", what)
		return response{}
	}
}

func bodyRequest(method, path, token string, body io.Reader, length int64, hdr map[string]string) *http.Request {
	r := httptest.NewRequest(method, path, body)
	r.ContentLength = length
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func wantOverloaded(t *testing.T, what string, r *http.Request, res response) {
	t.Helper()
	checkOpenAPI(t, r, res)
	wantProblem(t, what, res, http.StatusServiceUnavailable, "overloaded")
	if ra := res.Header.Get("Retry-After"); ra == "" {
		t.Errorf("%s: no Retry-After header", what)
	}
}

// A payment notification without a well-formed, timely Payment-Signature
// is refused before a byte of its body is read; the bodies here would
// block forever if read, as from a client that sends headers and then
// nothing.
func TestUnsignedPaymentBodiesAreNotRead(t *testing.T) {
	h := newHarness(t, store.SQLite)
	now := h.clock.Now()
	v1 := ",v1=" + strings.Repeat("ab", 32)
	body := bytes.Repeat([]byte(" "), api.MaxBodyBytes)
	for _, hdr := range []string{
		"",
		"garbage",
		fmt.Sprintf("t=%d", now.Unix()),
		fmt.Sprintf("t=%d,v1=abc", now.Unix()),
		fmt.Sprintf("t=%d", now.Add(-time.Hour).Unix()) + v1,
		fmt.Sprintf("t=%d", now.Add(time.Hour).Unix()) + v1,
	} {
		b := newHeldBody(body, true)
		r := bodyRequest(http.MethodPost, "/v1/payments/notifications", "", b, int64(len(body)), map[string]string{"Payment-Signature": hdr})
		res := await(t, fmt.Sprintf("Payment-Signature %q", hdr), h.send(r))
		close(b.release)
		checkOpenAPI(t, r, res)
		wantProblem(t, fmt.Sprintf("Payment-Signature %q", hdr), res, http.StatusUnauthorized, "bad_signature")
		if n := b.read.Load(); n != 0 {
			t.Errorf("Payment-Signature %q: %d bytes of the body were read, want 0", hdr, n)
		}
	}
}

// With the body budget taken, a request that needs some of it is answered
// 503 with Retry-After without its body being read, and succeeds once the
// budget is free; unsigned payment notifications never take any of it,
// and once it is free a signed one is answered 200 while hundreds of
// unsigned ones are in flight.
func TestBodyBudget(t *testing.T) {
	h := newHarness(t, store.SQLite, func(o *api.Options) {
		o.Limits = api.Limits{BodyBytes: api.MaxUsageBodyBytes, Wait: 50 * time.Millisecond}
	})
	v := vin("LSVAX4E10P2400001")
	h.activate(v, "erin", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	order := h.createOrder(v, "erin", "monthly")
	carrier := h.token(api.RoleCarrier, "carrier")

	// A carrier's 8 MiB batch, sent slowly: it takes the whole budget.
	padded := append([]byte(`{"records": []}`), bytes.Repeat([]byte(" "), api.MaxUsageBodyBytes-15)...)
	big := newHeldBody(padded, true)
	bigRes := h.send(bodyRequest(http.MethodPost, "/v1/usage", carrier, big, api.MaxUsageBodyBytes, nil))
	waitRead(t, "slow 8 MiB batch", big, bigRes)

	small := []byte(`{"records": []}`)
	for _, chunked := range []bool{false, true} {
		b := newHeldBody(small, false)
		length := int64(len(small))
		if chunked {
			length = -1
		}
		r := bodyRequest(http.MethodPost, "/v1/usage", carrier, b, length, nil)
		wantOverloaded(t, fmt.Sprintf("usage batch (chunked %v) with the budget taken", chunked), r, await(t, "usage", h.send(r)))
		if n := b.read.Load(); n != 0 {
			t.Errorf("refused batch: %d bytes read, want 0", n)
		}
	}
	ordered := bytes.NewReader([]byte(`{"product":"monthly"}`))
	r := bodyRequest(http.MethodPost, "/v1/vehicles/"+v+"/orders", h.token(api.RoleOwner, "erin"), ordered, int64(ordered.Len()),
		map[string]string{"Idempotency-Key": "budget-1"})
	wantOverloaded(t, "order with the budget taken", r, await(t, "order", h.send(r)))

	// Unsigned notifications with 1 MiB bodies never wait for the budget.
	var unsigned []<-chan response
	var bodies []*heldBody
	for i := 0; i < 200; i++ {
		b := newHeldBody(bytes.Repeat([]byte("x"), 1<<10), true)
		bodies = append(bodies, b)
		unsigned = append(unsigned, h.send(bodyRequest(http.MethodPost, "/v1/payments/notifications", "", b, api.MaxBodyBytes, nil)))
	}
	for i, ch := range unsigned {
		if res := await(t, "unsigned notification", ch); res.Code != http.StatusUnauthorized {
			t.Fatalf("unsigned notification %d = %d %s, want 401", i, res.Code, res.Body)
		}
		close(bodies[i].release)
		if n := bodies[i].read.Load(); n != 0 {
			t.Fatalf("unsigned notification %d: %d bytes read, want 0", i, n)
		}
	}

	// The budget is still taken: a signed notification waits for it and
	// is answered 503 too, so the provider retries it.
	note, _ := json.Marshal(succeeded(order, "evt-budget", h.clock.Now()))
	sign := map[string]string{"Payment-Signature": billing.SignPayment(paymentSecret, note, h.clock.Now())}
	r = bodyRequest(http.MethodPost, "/v1/payments/notifications", "", bytes.NewReader(note), int64(len(note)), sign)
	wantOverloaded(t, "signed notification with the budget taken", r, await(t, "payment", h.send(r)))

	// The slow batch finishes and gives its share back.
	close(big.release)
	if res := await(t, "slow batch", bigRes); res.Code != http.StatusOK {
		t.Fatalf("slow 8 MiB batch = %d %s, want 200", res.Code, res.Body)
	}
	// The signed notification is answered 200 while another 200 unsigned
	// ones, whose bodies never arrive, are in flight.
	unsigned, bodies = nil, nil
	for i := 0; i < 200; i++ {
		b := newHeldBody(bytes.Repeat([]byte("x"), 1<<10), true)
		bodies = append(bodies, b)
		unsigned = append(unsigned, h.send(bodyRequest(http.MethodPost, "/v1/payments/notifications", "", b, api.MaxBodyBytes, nil)))
	}
	res := h.do(request{Method: http.MethodPost, Path: "/v1/payments/notifications", Body: note, Headers: sign})
	if res.Code != http.StatusOK {
		t.Fatalf("signed notification after the budget is free, unsigned ones in flight = %d %s, want 200", res.Code, res.Body)
	}
	for i, ch := range unsigned {
		if res := await(t, "unsigned notification", ch); res.Code != http.StatusUnauthorized {
			t.Fatalf("unsigned notification %d = %d %s, want 401", i, res.Code, res.Body)
		}
		close(bodies[i].release)
	}
	for _, chunked := range []bool{false, true} {
		length := int64(len(small))
		if chunked {
			length = -1
		}
		r := bodyRequest(http.MethodPost, "/v1/usage", carrier, bytes.NewReader(small), length, nil)
		if res := await(t, "usage", h.send(r)); res.Code != http.StatusOK {
			t.Errorf("usage batch (chunked %v) after the budget is free = %d %s, want 200", chunked, res.Code, res.Body)
		}
	}
}

// Each endpoint class has its own bound on requests in progress: a full
// class answers 503 with Retry-After and the others are unaffected.
func TestConcurrentRequestsPerClass(t *testing.T) {
	h := newHarness(t, store.SQLite, func(o *api.Options) {
		o.Limits = api.Limits{Usage: 1, Wait: 50 * time.Millisecond}
	})
	carrier := h.token(api.RoleCarrier, "carrier")
	batch := []byte(`{"records": []}`)
	slow := newHeldBody(batch, true)
	first := h.send(bodyRequest(http.MethodPost, "/v1/usage", carrier, slow, int64(len(batch)), nil))
	waitRead(t, "slow usage batch", slow, first)

	r := bodyRequest(http.MethodPost, "/v1/usage", carrier, bytes.NewReader(batch), int64(len(batch)), nil)
	wantOverloaded(t, "second usage batch at once", r, await(t, "usage", h.send(r)))
	if res := h.get("/v1/products", h.token(api.RoleOps, "delivery")); res.Code != http.StatusOK {
		t.Errorf("a read while usage is full = %d %s, want 200", res.Code, res.Body)
	}
	close(slow.release)
	if res := await(t, "first batch", first); res.Code != http.StatusOK {
		t.Fatalf("first batch = %d %s, want 200", res.Code, res.Body)
	}
	if res := h.do(request{Method: http.MethodPost, Path: "/v1/usage", Token: carrier, Body: batch}); res.Code != http.StatusOK {
		t.Errorf("usage batch once the first is done = %d %s, want 200", res.Code, res.Body)
	}
}

// A Content-Length over the endpoint's limit is refused before the body
// is read.
func TestOversizedContentLengthIsNotRead(t *testing.T) {
	h := newHarness(t, store.SQLite)
	b := newHeldBody(nil, true)
	defer close(b.release)
	r := bodyRequest(http.MethodPost, "/v1/usage", h.token(api.RoleCarrier, "carrier"), b, api.MaxUsageBodyBytes+1, nil)
	res := await(t, "oversized batch", h.send(r))
	checkOpenAPI(t, r, res)
	wantProblem(t, "usage batch with Content-Length 8 MiB + 1", res, http.StatusRequestEntityTooLarge, "body_too_large")
	if n := b.read.Load(); n != 0 {
		t.Errorf("%d bytes read, want 0", n)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		l  api.Limits
		ok bool
	}{
		{api.Limits{}, true},
		{api.Limits{BodyBytes: api.MaxUsageBodyBytes}, true},
		{api.Limits{BodyBytes: api.MaxUsageBodyBytes - 1}, false},
		{api.Limits{Reads: -1}, false},
		{api.Limits{Wait: -time.Second}, false},
	} {
		if err := tc.l.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.l, err, tc.ok)
		}
	}
}
