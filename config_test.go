package main

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"entitlements/store"
)

func TestSchedulerConfig(t *testing.T) {
	base, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const shipped = `scheduler: {enabled: true, expire: "@every 1m", remind: "@every 10m", deliver: "@every 5s", cancel_unpaid: "@every 5m", prune: "@every 1h"}`
	if !strings.Contains(string(base), shipped) {
		t.Fatalf("config.yaml has no line %s: update this test", shipped)
	}
	cases := []struct {
		name        string
		scheduler   string // replaces the shipped line
		env         map[string]string
		wantEnabled bool
		wantErr     string // substring; empty: valid
		wantRemind  string
	}{
		{name: "shipped", scheduler: shipped, wantEnabled: true, wantRemind: "@every 10m"},
		{name: "enabled left out is on", scheduler: `scheduler: {remind: "@every 1h"}`, wantEnabled: true, wantRemind: "@every 1h"},
		{name: "disabled", scheduler: `scheduler: {enabled: false}`, wantEnabled: false, wantRemind: "@every 10m"},
		{name: "disabled by env", scheduler: shipped, env: map[string]string{"ENTITLEMENTS_SCHEDULER_ENABLED": "false"}, wantEnabled: false, wantRemind: "@every 10m"},
		{name: "schedule from env", scheduler: shipped, env: map[string]string{"ENTITLEMENTS_SCHEDULER_REMIND": "@every 2s"}, wantEnabled: true, wantRemind: "@every 2s"},
		{name: "bad enabled env", scheduler: shipped, env: map[string]string{"ENTITLEMENTS_SCHEDULER_ENABLED": "maybe"}, wantErr: "ENTITLEMENTS_SCHEDULER_ENABLED"},
		{name: "bad schedules all listed", scheduler: `scheduler: {expire: "every minute", deliver: "* * *"}`, wantErr: "scheduler.expire"},
		{name: "bad webhook key", scheduler: shipped, env: map[string]string{
			"ENTITLEMENTS_NOTICES_WEBHOOK_URL": "http://127.0.0.1:9000/hook", "ENTITLEMENTS_NOTICES_WEBHOOK_SECRET": "whsec_not*base64"}, wantErr: "notices.webhook_secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := strings.Replace(string(base), shipped, c.scheduler, 1)
			cfg, err := ParseConfig([]byte(raw), func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("ParseConfig() error = %v, want one naming %s", err, c.wantErr)
				}
				if c.name == "bad schedules all listed" && !strings.Contains(err.Error(), "scheduler.deliver") {
					t.Errorf("ParseConfig() error = %v, want scheduler.deliver listed too", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig() error = %v", err)
			}
			if cfg.SchedulerEnabled() != c.wantEnabled || cfg.Scheduler.Remind != c.wantRemind {
				t.Errorf("enabled = %v, remind = %q; want %v, %q", cfg.SchedulerEnabled(), cfg.Scheduler.Remind, c.wantEnabled, c.wantRemind)
			}
			if cfg.Notices.WebhookTimeout.D() != 10*time.Second {
				t.Errorf("webhook_timeout = %s, want 10s", cfg.Notices.WebhookTimeout.D())
			}
		})
	}
}

// The snapshot cache's size comes from the environment too, where a
// container sets it; what is not a number is refused, a negative number
// by the same check as the file's.
func TestSnapshotCacheFromEnvironment(t *testing.T) {
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env     string
		want    *int
		wantErr string
	}{
		{env: "", want: nil},
		{env: "65536", want: new(65536)},
		{env: "0", want: new(0)},
		{env: "lots", wantErr: "ENTITLEMENTS_DATABASE_SNAPSHOT_CACHE"},
		{env: "-1", wantErr: "database.snapshot_cache must not be negative"},
	} {
		cfg, err := ParseConfig(raw, func(k string) string {
			if k == "ENTITLEMENTS_DATABASE_SNAPSHOT_CACHE" {
				return c.env
			}
			return ""
		})
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: ParseConfig() error = %v, want one naming %s", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.env, err)
		}
		got := cfg.Database.SnapshotCache
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%q: snapshot_cache = %v, want %v", c.env, got, c.want)
		}
	}
}

// Every environment value that cannot be read is reported, all at once
// and in the same order every time, and each names what it should be.
func TestBadEnvironmentValuesAreListedTogether(t *testing.T) {
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"ENTITLEMENTS_DATABASE_SNAPSHOT_CACHE": "lots",
		"ENTITLEMENTS_SCHEDULER_ENABLED":       "maybe",
		"ENTITLEMENTS_HTTP_ADDR":               "127.0.0.1:9999",
	}
	var first string
	for range 5 {
		_, err := ParseConfig(raw, func(k string) string { return env[k] })
		if err == nil {
			t.Fatal("ParseConfig() accepted a snapshot cache of \"lots\" and scheduler \"maybe\"")
		}
		msg := err.Error()
		for _, want := range []string{
			`ENTITLEMENTS_DATABASE_SNAPSHOT_CACHE "lots" is not a whole number of vehicles`,
			`ENTITLEMENTS_SCHEDULER_ENABLED "maybe" is not true or false`,
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("ParseConfig() error = %q, want it to say %q", msg, want)
			}
		}
		if first == "" {
			first = msg
		} else if msg != first {
			t.Fatalf("ParseConfig() error changed between runs:\n%s\n%s", first, msg)
		}
	}
}

func TestLogLevel(t *testing.T) {
	for _, c := range []struct {
		env  string
		want slog.Level
	}{
		{"", slog.LevelInfo}, // config.yaml's info
		{"debug", slog.LevelDebug},
		{"WARN", slog.LevelWarn},
		{"warning", slog.LevelWarn},
		{"error", slog.LevelError},
	} {
		raw, err := os.ReadFile("config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig(raw, env(map[string]string{"ENTITLEMENTS_LOG_LEVEL": c.env}))
		if err != nil {
			t.Fatalf("ENTITLEMENTS_LOG_LEVEL=%q: %v", c.env, err)
		}
		if got := cfg.LogLevel(); got != c.want {
			t.Errorf("ENTITLEMENTS_LOG_LEVEL=%q: level %s, want %s", c.env, got, c.want)
		}
	}
	if _, err := ParseConfig([]byte("log: {level: loud}\n"), noEnv); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("log.level loud: error %v, want one naming log.level", err)
	}
}

// The snapshot cache is on by default on SQLite, off on PostgreSQL (a
// replica of an older release would not notify the others of its writes)
// until config sizes it; its entries age only when config says so, or
// after the store's PostgreSQL default.
func TestSnapshotCacheConfig(t *testing.T) {
	base, _ := os.ReadFile("config.yaml")
	env := func(driver string) func(string) string {
		return func(k string) string {
			if k == "ENTITLEMENTS_DATABASE_DRIVER" {
				return driver
			}
			return ""
		}
	}
	for _, tc := range []struct {
		driver, extra string
		entries       int
		maxAge        time.Duration
	}{
		{store.SQLite, "", DefaultSnapshotCache, 0},
		{store.Postgres, "", 0, 0},
		{store.Postgres, "snapshot_cache: 100000, snapshot_cache_max_age: 30s", 100000, 30 * time.Second},
		{store.SQLite, "snapshot_cache: 0", 0, 0},
	} {
		raw := string(base)
		if tc.extra != "" {
			raw = strings.Replace(raw, "dsn: data/entitlements.db}", "dsn: data/entitlements.db, "+tc.extra+"}", 1)
		}
		c, err := ParseConfig([]byte(raw), env(tc.driver))
		if err != nil {
			t.Fatalf("%s %q: %v", tc.driver, tc.extra, err)
		}
		if sc := c.StoreConfig(); sc.SnapshotCache != tc.entries || sc.SnapshotCacheMaxAge != tc.maxAge {
			t.Errorf("%s %q: snapshot cache %d, max age %v; want %d, %v", tc.driver, tc.extra, sc.SnapshotCache, sc.SnapshotCacheMaxAge, tc.entries, tc.maxAge)
		}
	}
}
