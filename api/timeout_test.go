package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// TestSlowBodyIs408: a request body that has not arrived when the
// server's read timeout (http.Server.ReadTimeout, set from
// http.read_timeout) passes is answered 408 request_timeout in
// problem+json, not 400 malformed_body. The body is sent by hand, half of
// it, to a real server with a short read timeout.
func TestSlowBodyIs408(t *testing.T) {
	h := newHarness(t, "sqlite")
	car := vin("LSVAX4E10P2900001")
	h.activate(car, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
	srv := httptest.NewUnstartedServer(h.handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	for _, path := range []string{"/v1/vehicles/" + car + "/owner", "/v1/payments/notifications"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		body := `{"owner_id":"bob"}`
		method := "PUT"
		if path == "/v1/payments/notifications" {
			method = "POST"
		}
		// A well-formed signature, so that the payment endpoint reads the body.
		sig := billing.SignPayment(paymentSecret, []byte(body), h.clock.Now())
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nPayment-Signature: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			method, path, h.token(api.RoleOps, "ops"), sig, len(body), body[:8])
		// The rest never comes: the read timeout passes first.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Fatalf("%s %s: no response: %v", method, path, err)
		}
		var p api.Problem
		decErr := json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		conn.Close()
		if res.StatusCode != http.StatusRequestTimeout || res.Header.Get("Content-Type") != "application/problem+json" ||
			decErr != nil || p.Code != "request_timeout" || p.Status != http.StatusRequestTimeout {
			t.Errorf("%s %s with a slow body = %d %s %+v (%v), want 408 problem+json request_timeout",
				method, path, res.StatusCode, res.Header.Get("Content-Type"), p, decErr)
		}
	}
}
