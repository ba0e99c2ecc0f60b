package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestUsageRetentionConfig(t *testing.T) {
	shipped, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const base = "auth: {token_secret: s}\npayments: {webhook_secret: s}\nproducts: [{code: m, name: M, price_fen: 1, days: 1}]"
	tests := []struct {
		name    string
		yaml    string
		want    time.Duration
		problem string
	}{
		{"shipped config.yaml", string(shipped), 9600 * time.Hour, ""},
		{"default when absent", base, 9600 * time.Hour, ""},
		{"set", "usage: {retention: 720h}\n" + base, 720 * time.Hour, ""},
		{"too short", "usage: {retention: 1h}\n" + base, 0, "usage.retention must be at least 24h"},
	}
	for _, tc := range tests {
		c, err := ParseConfig([]byte(tc.yaml), func(string) string { return "" })
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
		if got := c.Usage.Retention.D(); got != tc.want {
			t.Errorf("%s: usage.retention = %s, want %s", tc.name, got, tc.want)
		}
	}
}
