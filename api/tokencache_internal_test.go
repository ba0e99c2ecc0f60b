package api

import (
	"fmt"
	"testing"
	"time"
)

func TestTokenCacheIsBounded(t *testing.T) {
	c := newTokenCache(8, 0)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		c.put(fmt.Sprint("token-", i), cachedToken{p: Principal{Role: RoleOps, Subject: fmt.Sprint(i)}, expires: now.Add(time.Hour)})
		if c.len() > 8 {
			t.Fatalf("after %d puts the cache holds %d tokens, want at most 8", i+1, c.len())
		}
	}
	if p, ok := c.get("token-99", now); !ok || p.Subject != "99" {
		t.Errorf("get(last token) = %+v, %v; want subject 99", p, ok)
	}
}

func TestTokenCacheTimeBounds(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := newTokenCache(8, 30*time.Second)
	c.put("a", cachedToken{p: Principal{Role: RoleOps, Subject: "a"}, expires: now, notBefore: now.Add(-time.Minute)})
	c.put("b", cachedToken{p: Principal{Role: RoleOps, Subject: "b"}, expires: now.Add(time.Hour), notBefore: now.Add(time.Minute)})
	for _, tc := range []struct {
		name, raw string
		at        time.Time
		want      bool
	}{
		{"at exp", "a", now, true},
		{"exp plus the leeway", "a", now.Add(30 * time.Second), true},
		{"past exp and the leeway", "a", now.Add(31 * time.Second), false},
		{"before nbf minus the leeway", "b", now.Add(29 * time.Second), false},
		{"at nbf minus the leeway", "b", now.Add(30 * time.Second), true},
		{"never stored", "c", now, false},
	} {
		if _, ok := c.get(tc.raw, tc.at); ok != tc.want {
			t.Errorf("%s: get = %v, want %v", tc.name, ok, tc.want)
		}
	}
}
