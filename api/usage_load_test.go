package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store/storetest"
)

// usageBatch builds n entertainment records of size bytes over vins.
func usageBatch(prefix string, n int, size int64, vins []string, start time.Time) []map[string]any {
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = rec(fmt.Sprintf("%s-%06d", prefix, i), vins[i%len(vins)], "entertainment", size, start.Add(time.Duration(i)*time.Second))
	}
	return recs
}

// postConcurrently posts the same batch from n goroutines, through the
// handlers given in turn, and returns the sum of accepted and duplicates.
func postConcurrently(t *testing.T, hs []*harness, n int, recs []map[string]any) (accepted, duplicates int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(h *harness) {
			defer wg.Done()
			res := h.do(request{Method: http.MethodPost, Path: "/v1/usage", Token: h.token(api.RoleCarrier, "carrier-1"),
				Body: map[string]any{"records": recs}})
			if res.Code != http.StatusOK {
				t.Errorf("concurrent POST /v1/usage = %d %s", res.Code, res.Body)
				return
			}
			var out usageResult
			res.decode(t, &out)
			mu.Lock()
			accepted += out.Accepted
			duplicates += out.Duplicates
			mu.Unlock()
		}(hs[i%len(hs)])
	}
	wg.Wait()
	return accepted, duplicates
}

func checkConcurrentIngest(t *testing.T, hs []*harness) {
	h := hs[0]
	vins := []string{vin("LSVAX4E10P2100007"), vin("LSVAX4E10P2100008")}
	for _, v := range vins {
		h.activate(v, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
	}
	const n, posts = 500, 10
	// 250 records of 1% of the allowance each per vehicle: the batch
	// crosses 80% and 100%, which must give one notice each however many
	// posts race.
	size := 15 * gib / 100
	recs := usageBatch("race", n, size, vins, june14.Add(-6*time.Hour))
	accepted, duplicates := postConcurrently(t, hs, posts, recs)
	if accepted != n || duplicates != n*(posts-1) {
		t.Errorf("%d concurrent posts: accepted %d duplicates %d, want %d and %d", posts, accepted, duplicates, n, n*(posts-1))
	}
	for _, v := range vins {
		if d := h.data(v); d.UsedBytes != n/2*size {
			t.Errorf("%s used_bytes = %d, want %d (each record once)", v, d.UsedBytes, n/2*size)
		}
		if ns := h.quotaNotices(v); len(ns) != 2 {
			t.Errorf("%s has %d quota notices, want 2 (80%% and 100%%)", v, len(ns))
		}
	}
}

// withRacingUsage lets the race tests' posts all run at once, past the
// default limits.concurrent.usage.
func withRacingUsage(o *api.Options) { o.Limits.Usage = 16 }

func TestUsageConcurrentSameBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		checkConcurrentIngest(t, []*harness{newHarness(t, dialect, withUsage, withRacingUsage)})
	})
}

func TestUsageConcurrentTwoServers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		ha := newHarness(t, dialect, withUsage, withRacingUsage, func(o *api.Options) { o.Store = a })
		ha.db = a
		hb := newHarness(t, dialect, withUsage, withRacingUsage, func(o *api.Options) { o.Store, o.Now = b, ha.clock.Now })
		hb.db, hb.clock = b, ha.clock
		checkConcurrentIngest(t, []*harness{ha, hb})
	})
}

// BenchmarkIngestUsage posts batches of 10 000 records over 1000 (and
// 10 000) vehicles through the real router (JSON decoding, validation, one
// transaction) and reports records per second.
func BenchmarkIngestUsage(b *testing.B) {
	for _, dialect := range storetest.Backends {
		for _, cars := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d_vehicles", dialect, cars), func(b *testing.B) { benchIngest(b, dialect, cars) })
		}
	}
}

func benchIngest(b *testing.B, dialect string, cars int) {
	{
		{
			h := newHarness(b, dialect, withUsage)
			vins := make([]string, cars)
			for i := range vins {
				vins[i] = vin(fmt.Sprintf("LSVAX4E10P3%06d", i))
				h.activate(vins[i], "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
			}
			token := "Bearer " + h.token(api.RoleCarrier, "carrier-1")
			bodies := make([][]byte, b.N)
			for i := range bodies {
				recs := usageBatch(fmt.Sprintf("b%d", i), billing.MaxUsageBatch, 1000, vins, june14.Add(-100*24*time.Hour).Add(time.Duration(i%90)*24*time.Hour))
				raw, err := json.Marshal(map[string]any{"records": recs})
				if err != nil {
					b.Fatal(err)
				}
				bodies[i] = raw
			}
			// The first batch prepares the bulk statements (once per
			// process); measure the steady state.
			h.postUsage(usageBatch("warm", 10, 1000, vins, june14.Add(-200*24*time.Hour)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(http.MethodPost, "/v1/usage", bytes.NewReader(bodies[i]))
				r.Header.Set("Authorization", token)
				w := httptest.NewRecorder()
				h.handler.ServeHTTP(w, r)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"accepted":10000`) {
					b.Fatalf("POST /v1/usage = %d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.N*billing.MaxUsageBatch)/b.Elapsed().Seconds(), "records/s")
		}
	}
}
