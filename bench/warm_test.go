package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// The warm-up asks each sample car's entitlement once, and its
// certificate once only when the certificate phase runs.
func TestWarmAsksEachCarOnce(t *testing.T) {
	for _, tc := range []struct {
		phases string
		certs  bool
	}{
		{"ceiling,entitlement,certificate", true},
		{"entitlement,feature,payment", false},
	} {
		var mu sync.Mutex
		asked := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked[r.URL.Path]++
			mu.Unlock()
			w.Write([]byte("{}"))
		}))
		d := &driver{base: srv.URL, o: options{phases: tc.phases, client: "raw"}}
		for i := range 100 {
			d.vins = append(d.vins, fmt.Sprintf("VIN%04d", i))
			d.tokens = append(d.tokens, "token")
		}
		if err := d.warm(); err != nil {
			t.Fatalf("phases %s: warm() = %v", tc.phases, err)
		}
		srv.Close()
		for _, vin := range d.vins {
			base := "/v1/vehicles/" + vin
			if asked[base+"/entitlement"] != 1 {
				t.Errorf("phases %s: %s's entitlement asked %d times, want once", tc.phases, vin, asked[base+"/entitlement"])
			}
			if want := map[bool]int{true: 1, false: 0}[tc.certs]; asked[base+"/certificate"] != want {
				t.Errorf("phases %s: %s's certificate asked %d times, want %d", tc.phases, vin, asked[base+"/certificate"], want)
			}
		}
		if len(asked) != len(d.vins)*map[bool]int{true: 2, false: 1}[tc.certs] {
			t.Errorf("phases %s: asked %d distinct paths: %v", tc.phases, len(asked), asked)
		}
	}
}
