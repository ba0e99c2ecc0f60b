package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/api/certverify"
	"entitlements/billing"
)

// Certificate benchmarks, to compare as ratios with BenchmarkEntitlementRead
// (same harness, same car): a new certificate is the entitlement read's
// snapshot plus claims, JSON and an Ed25519 signature; a poll with the
// ETag of an unchanged certificate skips the signature, and so does a
// request answered from the certificate cache. The harness has the cache
// off, so that each request signs.

func certBenchHarness(b *testing.B) (*harness, string, string) {
	h := newHarness(b, "sqlite", withCertificates(b, newSigningKey(b)), withCertificateCache(0))
	v := vin("LSVAX4E10P2000900")
	h.activate(v, "owner-b", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	return h, v, h.token(api.RoleVehicle, v)
}

func BenchmarkCertificate(b *testing.B) {
	h, v, tok := certBenchHarness(b)
	benchGet(b, h, "/v1/vehicles/"+v+"/certificate", tok)
}

func BenchmarkCertificateNotModified(b *testing.B) {
	h, v, tok := certBenchHarness(b)
	path := "/v1/vehicles/" + v + "/certificate"
	_, etag := h.certificateOf(v)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("If-None-Match", etag)
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, r)
			if w.Code != http.StatusNotModified {
				b.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
			}
		}
	})
}

// BenchmarkCertificateSign is the claims, their JSON and the signature
// alone, without HTTP or the database.
func BenchmarkCertificateSign(b *testing.B) {
	ring, err := api.NewKeyring(newSigningKey(b))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)
	trial := testCatalog().Trial.TrialPeriod("LSVAX4E10P2000900", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai), shanghai)
	snap := billing.Snapshot{Vehicle: billing.Vehicle{VIN: trial.VIN}, Timeline: billing.NewTimeline([]billing.Period{trial})}
	terms := billing.CertificateTerms{TTL: 7 * 24 * time.Hour, Grace: 24 * time.Hour, Skew: 5 * time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		c := billing.IssueCertificate(snap, testCatalog(), terms, now, shanghai)
		payload, err := json.Marshal(certverify.ClaimsOf(c, issuer, shanghai))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ring.Sign(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCertificateCost measures, in one run and on one harness, the
// bare endpoint, the entitlement read, a new certificate, a 304 poll and
// a certificate answered from the cache (certificate-cached: the same
// request as certificate, on a server with the cache on), each with the process CPU time per request (cpu-ns/op) besides the
// wall time: on shared cores the wall time of each sub-benchmark depends
// on what else runs then, the CPU time much less, so the ratios of
// cpu-ns/op are the figures to compare.
func BenchmarkCertificateCost(b *testing.B) {
	h, v, tok := certBenchHarness(b)
	h.opts.BenchEndpoint = true
	h.reconfigure(func(*api.Options) {})
	_, etag := h.certificateOf(v)
	for _, bc := range []struct {
		name, path, etag string
		code             int
		cache            int // certificate.cache_entries
	}{
		{"ceiling", "/v1/_bench/static", "", http.StatusOK, 0},
		{"entitlement", "/v1/vehicles/" + v + "/entitlement", "", http.StatusOK, 0},
		{"certificate", "/v1/vehicles/" + v + "/certificate", "", http.StatusOK, 0},
		{"certificate-304", "/v1/vehicles/" + v + "/certificate", etag, http.StatusNotModified, 0},
		{"certificate-cached", "/v1/vehicles/" + v + "/certificate", "", http.StatusOK, api.DefaultCertificateCacheEntries},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.cache != h.opts.Certificates.CacheEntries {
				h.reconfigure(withCertificateCache(bc.cache))
			}
			if bc.cache > 0 {
				h.certificateOf(v) // signed once: every request below is a hit
			}
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodGet, bc.path, nil)
					r.Header.Set("Authorization", "Bearer "+tok)
					if bc.etag != "" {
						r.Header.Set("If-None-Match", bc.etag)
					}
					w := httptest.NewRecorder()
					h.handler.ServeHTTP(w, r)
					if w.Code != bc.code {
						b.Fatalf("GET %s = %d %s", bc.path, w.Code, w.Body)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system CPU time of the test process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
