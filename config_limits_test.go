package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"entitlements/api"
)

func TestLimitsConfig(t *testing.T) {
	shipped, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const base = "auth: {token_secret: s}\npayments: {webhook_secret: s}\nproducts: [{code: m, name: M, price_fen: 1, days: 1}]\n"
	defaults := api.Limits{BodyBytes: 64 << 20, Wait: time.Second, Reads: 1024, Writes: 256, Payments: 256, Usage: 4}
	tests := []struct {
		name    string
		yaml    string
		want    api.Limits
		problem string
	}{
		{"shipped config.yaml", string(shipped), defaults, ""},
		{"default when absent", base, defaults, ""},
		{"set", base + "limits: {body_bytes_in_flight: 16777216, wait: 250ms, concurrent: {reads: 10, writes: 5, payments: 3, usage: 1}}",
			api.Limits{BodyBytes: 16 << 20, Wait: 250 * time.Millisecond, Reads: 10, Writes: 5, Payments: 3, Usage: 1}, ""},
		{"one class set, the others default", base + "limits: {concurrent: {usage: 2}}",
			api.Limits{BodyBytes: 64 << 20, Wait: time.Second, Reads: 1024, Writes: 256, Payments: 256, Usage: 2}, ""},
		{"budget below the largest body", base + "limits: {body_bytes_in_flight: 1048576}", api.Limits{}, "limits.body_bytes_in_flight must be at least 8388608"},
		{"zero budget", base + "limits: {body_bytes_in_flight: 0}", api.Limits{}, "limits.body_bytes_in_flight must be positive"},
		{"zero wait", base + "limits: {wait: 0s}", api.Limits{}, "limits.wait must be positive"},
		{"negative class", base + "limits: {concurrent: {payments: -1}}", api.Limits{}, "limits.concurrent.payments must be positive"},
		{"unknown class", base + "limits: {concurrent: {refunds: 3}}", api.Limits{}, "refunds"},
	}
	for _, tc := range tests {
		c, err := ParseConfig([]byte(tc.yaml), noEnv)
		if tc.problem != "" {
			if err == nil || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("%s: ParseConfig error = %v, want %q", tc.name, err, tc.problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: ParseConfig: %v", tc.name, err)
			continue
		}
		if got := c.APILimits(); got != tc.want {
			t.Errorf("%s: limits = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
