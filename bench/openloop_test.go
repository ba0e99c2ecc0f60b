package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Both open-loop clients send every request due, count the service's
// errors, and charge a request the time it waited behind a slow one: the
// server answers one request at a time, each after 20 ms, so requests due
// every 10 ms queue and the later ones wait far longer than 20 ms.
func TestOpenLoopCountsFromWhenDue(t *testing.T) {
	for _, client := range []string{"raw", "nethttp"} {
		t.Run(client, func(t *testing.T) {
			var served atomic.Int64
			var one sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fail" {
					http.Error(w, "no", http.StatusInternalServerError)
					return
				}
				one.Lock()
				time.Sleep(20 * time.Millisecond)
				one.Unlock()
				served.Add(1)
				w.Write([]byte(`{}`))
			}))
			defer srv.Close()
			d := &driver{base: srv.URL, o: options{client: client, concurrency: 2}}
			r := d.openLoop(func(i int) (string, string) {
				if i%10 == 0 {
					return "/fail", "tok"
				}
				return "/ok", "tok"
			}, 100, time.Second)
			if r.errors < 9 || r.errors > 11 {
				t.Errorf("errors = %d; want the 10 requests that failed", r.errors)
			}
			if n := served.Load(); n < 85 || n > 95 {
				t.Errorf("served %d; want the 90 requests due in a second at 100/s", n)
			}
			// Ninety requests of 20 ms each take 1.8 s: the last one, due
			// at about 1 s, is answered about 0.8 s after it was due.
			if r.p99 < 500*time.Millisecond {
				t.Errorf("p99 = %s; want the queueing behind the one-at-a-time server counted", r.p99)
			}
		})
	}
}
