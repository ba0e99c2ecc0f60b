package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store"

	"github.com/golang-jwt/jwt/v5"
)

func noEnv(string) string { return "" }

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestShippedConfigIsValid(t *testing.T) {
	cfg, err := LoadConfig("config.yaml", noEnv)
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	cat := cfg.Catalog()
	if p, ok := cat.Product("monthly"); !ok || p.PriceFen != 1990 || p.Days != 31 {
		t.Errorf("monthly = %+v, want 1990 fen for 31 days", p)
	}
	if p, ok := cat.Product("yearly"); !ok || p.PriceFen != 19900 || p.Days != 365 {
		t.Errorf("yearly = %+v, want 19900 fen for 365 days", p)
	}
	if cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.Database.Driver != "sqlite" || cfg.Database.DSN != "data/entitlements.db" {
		t.Errorf("defaults = %+v %+v", cfg.HTTP, cfg.Database)
	}
	if cfg.Location().String() != "Asia/Shanghai" || cfg.Trial.Months != 12 || cfg.Orders.UnpaidTTL.D() != 30*time.Minute {
		t.Errorf("timezone %v, trial %d, ttl %v", cfg.Location(), cfg.Trial.Months, cfg.Orders.UnpaidTTL.D())
	}
	if got := cfg.DevSecrets(); len(got) != 3 {
		t.Errorf("DevSecrets() = %v, want both shipped secrets and the dev certificate key flagged", got)
	}
	// The shipped notices secret is flagged once notices are sent.
	cfg, err = LoadConfig("config.yaml", env(map[string]string{"ENTITLEMENTS_NOTICES_WEBHOOK_URL": "http://127.0.0.1:9000/hook"}))
	if err != nil {
		t.Fatalf("config.yaml with a webhook URL: %v", err)
	}
	if got := cfg.DevSecrets(); len(got) != 4 || got[2] != "notices.webhook_secret" {
		t.Errorf("DevSecrets() = %v with a webhook URL, want notices.webhook_secret flagged too", got)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	cfg, err := LoadConfig("config.yaml", env(map[string]string{
		"ENTITLEMENTS_HTTP_ADDR":                    "0.0.0.0:9090",
		"ENTITLEMENTS_DATABASE_DRIVER":              "postgres",
		"ENTITLEMENTS_DATABASE_DSN":                 "host=db",
		"ENTITLEMENTS_TIMEZONE":                     "UTC",
		"ENTITLEMENTS_AUTH_TOKEN_SECRET":            "s1",
		"ENTITLEMENTS_PAYMENTS_WEBHOOK_SECRET":      "s2",
		"ENTITLEMENTS_NOTICES_WEBHOOK_URL":          "https://hooks.example.com/n",
		"ENTITLEMENTS_NOTICES_WEBHOOK_SECRET":       "whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
		"ENTITLEMENTS_CERTIFICATE_SIGNING_KEY_FILE": "/etc/entitlements/certificate.pem",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.HTTP.Addr, cfg.Database.Driver, cfg.Database.DSN, cfg.Location().String(),
		cfg.Auth.TokenSecret, cfg.Payments.WebhookSecret, cfg.Notices.WebhookURL, cfg.Notices.WebhookSecret, cfg.Certificate.SigningKeyFile}
	want := []string{"0.0.0.0:9090", "postgres", "host=db", "UTC", "s1", "s2", "https://hooks.example.com/n", "whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
		"/etc/entitlements/certificate.pem"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("overridden = %v, want %v", got, want)
	}
	if len(cfg.DevSecrets()) != 0 {
		t.Errorf("DevSecrets() = %v after overriding them all", cfg.DevSecrets())
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	raw := `
http: {addr: ""}
database: {driver: mysql, dsn: ""}
timezone: Mars/Olympus
log: {level: loud}
auth: {token_secret: ""}
payments: {webhook_secret: "", tolerance: 0s}
trial: {months: 0, data_bytes_per_month: -1}
products:
  - {code: monthly, name: "", price_fen: 0, days: 0}
  - {code: monthly, name: x, price_fen: 19.9, days: 31}
`
	_, err := ParseConfig([]byte(raw), noEnv)
	if err == nil {
		t.Fatal("ParseConfig() = nil, want an error")
	}
	// 19.9 is not an integer number of fen: the YAML decoder refuses it.
	if !strings.Contains(err.Error(), "19.9") {
		t.Errorf("error %q does not name the fractional price", err)
	}
	raw = strings.Replace(raw, "price_fen: 19.9", "price_fen: 1990", 1)
	_, err = ParseConfig([]byte(raw), noEnv)
	if err == nil {
		t.Fatal("ParseConfig() = nil, want an error")
	}
	for _, want := range []string{"http.addr", "database.driver", "database.dsn", "timezone", "log.level", "auth.token_secret",
		"payments.webhook_secret", "payments.tolerance", "trial.months", "trial.data_bytes_per_month",
		"products[0].name", "products[0].price_fen", "products[0].days", "products[1].code"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not list %s:\n%v", want, err)
		}
	}
}

func TestConfigRejectsUnknownKeysAndBadDurations(t *testing.T) {
	for name, raw := range map[string]string{
		"unknown key":      "htp: {addr: x}\n",
		"bad duration":     "orders: {unpaid_ttl: soon}\n",
		"webhook no whsec": "notices: {webhook_url: 'https://x.example', webhook_secret: plain}\n",
	} {
		base, _ := os.ReadFile("config.yaml")
		if _, err := ParseConfig(append(base, []byte(raw)...), noEnv); err == nil {
			t.Errorf("%s: ParseConfig() = nil, want an error", name)
		}
	}
}

func TestConfigRejectsNegativeSQLiteTuning(t *testing.T) {
	base, _ := os.ReadFile("config.yaml")
	for _, key := range []string{"sqlite_cache_mib: -1", "checkpoint_every: -1s", "snapshot_cache_mib: -1", "snapshot_cache_max_age: -1s"} {
		raw := strings.Replace(string(base), "dsn: data/entitlements.db}", "dsn: data/entitlements.db, "+key+"}", 1)
		if raw == string(base) {
			t.Fatal("config.yaml's database line changed; update this test")
		}
		_, err := ParseConfig([]byte(raw), noEnv)
		if err == nil || !strings.Contains(err.Error(), strings.Split(key, ":")[0]) {
			t.Errorf("%s: ParseConfig() = %v, want an error naming it", key, err)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"token", "--role", "owner", "--sub", "owner-42", "--ttl", "2h"}, &out, &errOut, noEnv)
	if err != nil {
		t.Fatalf("token: %v (%s)", err, errOut.String())
	}
	var claims api.Claims
	_, err = jwt.ParseWithClaims(strings.TrimSpace(out.String()), &claims, func(*jwt.Token) (any, error) { return []byte("dev-only"), nil })
	if err != nil || claims.Role != api.RoleOwner || claims.Subject != "owner-42" {
		t.Fatalf("token claims = %+v, %v", claims, err)
	}
	if ttl := claims.ExpiresAt.Sub(claims.IssuedAt.Time); ttl != 2*time.Hour {
		t.Errorf("ttl = %v, want 2h", ttl)
	}
	for _, args := range [][]string{
		{"token", "--role", "admin", "--sub", "x"},
		{"token", "--role", "vehicle", "--sub", "NOT-A-VIN"},
		{"token", "--role", "ops"},
	} {
		if err := run(context.Background(), args, &out, &errOut, noEnv); err == nil {
			t.Errorf("run(%v) = nil, want an error", args)
		}
	}
}

// TestServeAndGracefulShutdown starts the real service on a free port with
// a temporary SQLite file, talks to it, then cancels it as SIGTERM would.
func TestServeAndGracefulShutdown(t *testing.T) {
	logs := serveOnce(t, nil)
	if !strings.Contains(logs, `"msg":"created the database directory"`) {
		t.Errorf("the missing database directory was created without a log line:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"route":"/readyz"`) {
		t.Errorf("at log.level info, no request line for /readyz:\n%s", logs)
	}
}

// TestStartIsAudited: every start records the configuration in the audit
// trail: the secrets still at their development value, by name only.
func TestStartIsAudited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	for range 2 {
		serveOnce(t, map[string]string{"ENTITLEMENTS_DATABASE_DSN": path})
	}
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, _, err := db.AuditEntries(context.Background(), billing.AuditQuery{Action: billing.AuditConfigLoaded, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("%d config.loaded entries after two starts, want 2", len(es))
	}
	e := es[0]
	if e.Actor != "system:startup" || fmt.Sprint(e.After["dev_only_secrets"]) != "[auth.token_secret payments.webhook_secret certificate.signing_key_file]" ||
		e.After["database_driver"] != "sqlite" || e.After["timezone"] != "Asia/Shanghai" {
		t.Errorf("entry %+v, want system:startup naming the development secrets", e)
	}
	if fmt.Sprint(es[1].After["applied_migrations"]) == "[]" || fmt.Sprint(e.After["applied_migrations"]) != "[]" {
		t.Errorf("applied migrations %v then %v, want the first start's only", es[1].After["applied_migrations"], e.After["applied_migrations"])
	}
	if raw := fmt.Sprint(e); strings.Contains(raw, "dev-only") {
		t.Errorf("entry holds a secret's value: %s", raw)
	}
}

// TestLogLevelWarnDropsRequestLines: at warn the service logs no request
// lines (the per-request cost that docs/performance.md measured) but
// still logs its warnings and the start-up line with its address.
func TestLogLevelWarnDropsRequestLines(t *testing.T) {
	logs := serveOnce(t, map[string]string{"ENTITLEMENTS_LOG_LEVEL": "warn"})
	if strings.Contains(logs, `"msg":"request"`) {
		t.Errorf("at log.level warn, request lines were logged:\n%s", logs)
	}
	// Only the start-up lines operators look for are kept at info.
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"INFO"`) && !strings.Contains(l, `"msg":"listening"`) &&
			!strings.Contains(l, `"msg":"created the database directory"`) {
			t.Errorf("at log.level warn, an info line was logged: %s", l)
		}
	}
	if !strings.Contains(logs, `"msg":"listening","addr":"127.0.0.1:`) {
		t.Errorf("at log.level warn, the start-up line with the address is missing:\n%s", logs)
	}
	if !strings.Contains(logs, "development default") {
		t.Errorf("at log.level warn, the dev-secret warning is missing:\n%s", logs)
	}
}

// serveOnce runs the service on a fresh SQLite file with the shipped
// config and the extra environment, checks /readyz and /metrics, stops it
// and returns everything it logged.
func serveOnce(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	vars := map[string]string{
		"ENTITLEMENTS_HTTP_ADDR":       addr,
		"ENTITLEMENTS_DATABASE_DSN":    filepath.Join(dir, "sub", "e.db"),
		"ENTITLEMENTS_DATABASE_DRIVER": "sqlite",
		// The shipped dev key, generated in the test's directory, not in data/.
		"ENTITLEMENTS_CERTIFICATE_SIGNING_KEY_FILE": filepath.Join(dir, "keys", "dev-only-certificate-key.pem"),
	}
	for k, v := range extra {
		vars[k] = v
	}
	getenv := env(vars)
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--config", "config.yaml"}, &logs, &logs, getenv) }()
	stopped := false
	t.Cleanup(func() { // a failed check below must not leave the service running
		if !stopped {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
	})

	var res *http.Response
	for i := 0; i < 100; i++ {
		if res, err = http.Get("http://" + addr + "/readyz"); err == nil {
			break
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("the service stopped before it served: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("service did not come up: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("readyz = %d", res.StatusCode)
	}
	if _, err := os.Stat(vars["ENTITLEMENTS_DATABASE_DSN"]); err != nil {
		t.Errorf("database file: %v", err)
	}
	if res, err = http.Get("http://" + addr + "/metrics"); err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, name := range []string{"sqlite_wal_frames ", "sqlite_checkpoint_held_passes_total ", "sqlite_checkpoint_held_seconds_total ", "sqlite_write_transactions_total ", "sqlite_writes_total "} {
		if !bytes.Contains(metrics, []byte("\n"+name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) && extra["ENTITLEMENTS_LOG_LEVEL"] == "" {
		t.Errorf("logs lack the shutdown line:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "development default") {
		t.Errorf("logs lack the dev-secret warning:\n%s", logs.String())
	}
	return logs.String()
}
