package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// Benchmarks of the hot read paths through the real router and SQLite,
// next to the bare endpoint behind the same middleware: compare them as
// ratios (go test -bench . -run ^$ ./api).

func benchHarness(b *testing.B) (*harness, string, string) {
	h := newHarness(b, "sqlite", func(o *api.Options) { o.BenchEndpoint = true })
	v := vin("LSVAX4E10P2000900")
	h.activate(v, "owner-b", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	return h, v, h.token(api.RoleVehicle, v)
}

func benchGet(b *testing.B, h *harness, path, token string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
			}
		}
	})
}

func BenchmarkCeiling(b *testing.B) {
	h, _, tok := benchHarness(b)
	benchGet(b, h, "/v1/_bench/static", tok)
}

func BenchmarkEntitlementRead(b *testing.B) {
	h, v, tok := benchHarness(b)
	benchGet(b, h, "/v1/vehicles/"+v+"/entitlement", tok)
}

func BenchmarkFeatureCheck(b *testing.B) {
	h, v, tok := benchHarness(b)
	benchGet(b, h, "/v1/vehicles/"+v+"/features/video_streaming", tok)
}

// BenchmarkPaymentNotification pays pending orders created beforehand, one
// signed notification each, through the router on SQLite.
func BenchmarkPaymentNotification(b *testing.B) {
	h := newHarness(b, "sqlite")
	const cars = 200
	for i := 0; i < cars; i++ {
		h.activate(vin(fmt.Sprintf("LSVAX4E10P%07d", i)), fmt.Sprintf("owner-%d", i), time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	}
	orders := make([]orderBody, b.N)
	for i := range orders {
		orders[i] = h.createOrder(vin(fmt.Sprintf("LSVAX4E10P%07d", i%cars)), fmt.Sprintf("owner-%d", i%cars), "monthly")
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // 8 per core: notifications arriving together, as from the provider
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o := orders[next.Add(1)-1]
			body, _ := json.Marshal(succeeded(o, "evt-"+o.ID, h.clock.Now()))
			r := httptest.NewRequest(http.MethodPost, "/v1/payments/notifications", bytes.NewReader(body))
			r.Header.Set("Payment-Signature", billing.SignPayment(paymentSecret, body, h.clock.Now()))
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, r) // not h.do: no OpenAPI check inside the timing
			if w.Code != http.StatusOK {
				b.Fatalf("notify = %d %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkEntitlementReadPostgres is BenchmarkEntitlementRead on
// PostgreSQL (ENTITLEMENTS_TEST_POSTGRES_DSN), whose snapshot read is a
// round trip to the server rather than a cached call into SQLite.
func BenchmarkEntitlementReadPostgres(b *testing.B) {
	h := newHarness(b, "postgres", func(o *api.Options) { o.BenchEndpoint = true })
	v := vin("LSVAX4E10P2000900")
	h.activate(v, "owner-b", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	benchGet(b, h, "/v1/vehicles/"+v+"/entitlement", h.token(api.RoleVehicle, v))
}
