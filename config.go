package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store"

	"github.com/robfig/cron/v3"

	"go.yaml.in/yaml/v3"
)

// Config is config.yaml. Keys and environment overrides are the public
// interface of SPEC section 5.
type Config struct {
	HTTP struct {
		Addr           string   `yaml:"addr"`
		TrustedProxies []string `yaml:"trusted_proxies"`
		ReadTimeout    Duration `yaml:"read_timeout"`
		WriteTimeout   Duration `yaml:"write_timeout"`
		IdleTimeout    Duration `yaml:"idle_timeout"`
	} `yaml:"http"`
	Database struct {
		Driver          string   `yaml:"driver"`
		DSN             string   `yaml:"dsn"`
		MaxOpenConns    int      `yaml:"max_open_conns"`
		MaxIdleConns    int      `yaml:"max_idle_conns"`
		ConnMaxLifetime Duration `yaml:"conn_max_lifetime"`
		// SnapshotCache is how many vehicles' entitlement reads to keep in
		// memory; 0 turns it off. Unset: DefaultSnapshotCache on SQLite
		// (set 0 if several processes write one SQLite file), off on
		// PostgreSQL, where it may be turned on once every replica runs a
		// release that notifies the others of its writes (docs/scaling.md).
		SnapshotCache *int `yaml:"snapshot_cache"`
		// SnapshotCacheMiB bounds the snapshot cache's memory too; 0 = 48.
		SnapshotCacheMiB int `yaml:"snapshot_cache_mib"`
		// SnapshotCacheMaxAge is how long a cached read is served before
		// it is read again; 0 = none on SQLite, 1m on PostgreSQL.
		SnapshotCacheMaxAge Duration `yaml:"snapshot_cache_max_age"`
		// SQLiteCacheMiB is the SQLite writer's page cache; 0 = 32 MiB.
		SQLiteCacheMiB int `yaml:"sqlite_cache_mib"`
		// CheckpointEvery is how often the SQLite WAL is copied back into
		// the database file, in the background; 0 = every second.
		CheckpointEvery Duration `yaml:"checkpoint_every"`
	} `yaml:"database"`
	Timezone string `yaml:"timezone"`
	Auth     struct {
		TokenSecret string `yaml:"token_secret"`
		// Staff sign-in with an OpenID Connect identity provider: all
		// three of jwks_url, issuer and audience, or none (off).
		JWKSURL  string `yaml:"jwks_url"`
		Issuer   string `yaml:"issuer"`
		Audience string `yaml:"audience"`
		// RoleClaim and SubjectClaim name the claims mapped to the role
		// and the subject: "roles" and "sub" when empty.
		RoleClaim    string `yaml:"role_claim"`
		SubjectClaim string `yaml:"subject_claim"`
		// IdPRoles maps a value of the role claim to the role it grants;
		// nil: billing → billing, ops → ops.
		IdPRoles    map[string]string `yaml:"idp_roles"`
		JWKSRefresh Duration          `yaml:"jwks_refresh"`
	} `yaml:"auth"`
	Payments struct {
		WebhookSecret string   `yaml:"webhook_secret"`
		Tolerance     Duration `yaml:"tolerance"`
	} `yaml:"payments"`
	Trial struct {
		Months            int   `yaml:"months"`
		DataBytesPerMonth int64 `yaml:"data_bytes_per_month"`
	} `yaml:"trial"`
	Products []struct {
		Code              string `yaml:"code"`
		Name              string `yaml:"name"`
		PriceFen          Fen    `yaml:"price_fen"`
		Days              int    `yaml:"days"`
		DataBytesPerMonth int64  `yaml:"data_bytes_per_month"`
	} `yaml:"products"`
	Features struct {
		Basic   []string `yaml:"basic"`
		Premium []string `yaml:"premium"`
	} `yaml:"features"`
	Orders struct {
		UnpaidTTL Duration `yaml:"unpaid_ttl"`
	} `yaml:"orders"`
	Notices struct {
		ReminderDays    []int    `yaml:"reminder_days"`
		ExpiredMaxAge   Duration `yaml:"expired_max_age"`
		QuotaThresholds []int    `yaml:"quota_thresholds"`
		WebhookURL      string   `yaml:"webhook_url"`
		WebhookSecret   string   `yaml:"webhook_secret"`
		WebhookTimeout  Duration `yaml:"webhook_timeout"`
	} `yaml:"notices"`
	Usage struct {
		Retention Duration `yaml:"retention"` // raw usage records older than this are rejected and pruned
	} `yaml:"usage"`
	// Limits bound what the service holds for requests at once (see
	// api.Limits and docs/operations.md): past them, 503 with Retry-After.
	Limits struct {
		BodyBytesInFlight int64    `yaml:"body_bytes_in_flight"`
		Wait              Duration `yaml:"wait"`
		Concurrent        struct {
			Reads    int `yaml:"reads"`
			Writes   int `yaml:"writes"`
			Payments int `yaml:"payments"`
			Usage    int `yaml:"usage"`
		} `yaml:"concurrent"`
	} `yaml:"limits"`
	Log struct {
		// Level is the least severe level logged: debug, info, warn or
		// error. Every request is logged at info; warn keeps warnings and
		// errors only (see README, Performance).
		Level string `yaml:"level"`
	} `yaml:"log"`
	Certificate CertificateConfig `yaml:"certificate"`
	Scheduler   struct {
		Enabled      *bool  `yaml:"enabled"`
		Expire       string `yaml:"expire"`
		Remind       string `yaml:"remind"`
		Deliver      string `yaml:"deliver"`
		CancelUnpaid string `yaml:"cancel_unpaid"`
		Prune        string `yaml:"prune"`
	} `yaml:"scheduler"`

	loc      *time.Location
	logLevel slog.Level
	envErrs  []string // environment values that could not be read
}

// Duration reads "5m", "168h" and the like.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 30m or 168h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Fen is an amount of money in fen. It accepts only YAML integers: the
// plain decoder would silently truncate 19.9 to 19.
type Fen int64

func (f *Fen) UnmarshalYAML(n *yaml.Node) error {
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return fmt.Errorf("line %d: %q is not an integer number of fen (19.9 CNY is 1990)", n.Line, n.Value)
	}
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("line %d: %q is not an integer number of fen: %w", n.Line, n.Value, err)
	}
	*f = Fen(v)
	return nil
}

// LogLevel is log.level, parsed.
func (c *Config) LogLevel() slog.Level { return c.logLevel }

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Shipped development secrets; using them outside development is logged.
const (
	devSecret        = "dev-only"
	devWebhookSecret = "whsec_ZGV2LW9ubHktd2ViaG9vay1rZXk=" // base64 of "dev-only-webhook-key"
)

// envOverrides maps environment variables to the config fields they set,
// each with how its value is read.
func (c *Config) envOverrides() map[string]envSetter {
	return map[string]envSetter{
		"ENTITLEMENTS_HTTP_ADDR":                    envString(&c.HTTP.Addr),
		"ENTITLEMENTS_DATABASE_DRIVER":              envString(&c.Database.Driver),
		"ENTITLEMENTS_DATABASE_DSN":                 envString(&c.Database.DSN),
		"ENTITLEMENTS_TIMEZONE":                     envString(&c.Timezone),
		"ENTITLEMENTS_AUTH_TOKEN_SECRET":            envString(&c.Auth.TokenSecret),
		"ENTITLEMENTS_AUTH_JWKS_URL":                envString(&c.Auth.JWKSURL),
		"ENTITLEMENTS_AUTH_ISSUER":                  envString(&c.Auth.Issuer),
		"ENTITLEMENTS_AUTH_AUDIENCE":                envString(&c.Auth.Audience),
		"ENTITLEMENTS_PAYMENTS_WEBHOOK_SECRET":      envString(&c.Payments.WebhookSecret),
		"ENTITLEMENTS_NOTICES_WEBHOOK_URL":          envString(&c.Notices.WebhookURL),
		"ENTITLEMENTS_NOTICES_WEBHOOK_SECRET":       envString(&c.Notices.WebhookSecret),
		"ENTITLEMENTS_SCHEDULER_EXPIRE":             envString(&c.Scheduler.Expire),
		"ENTITLEMENTS_SCHEDULER_REMIND":             envString(&c.Scheduler.Remind),
		"ENTITLEMENTS_SCHEDULER_DELIVER":            envString(&c.Scheduler.Deliver),
		"ENTITLEMENTS_SCHEDULER_CANCEL_UNPAID":      envString(&c.Scheduler.CancelUnpaid),
		"ENTITLEMENTS_SCHEDULER_PRUNE":              envString(&c.Scheduler.Prune),
		"ENTITLEMENTS_LOG_LEVEL":                    envString(&c.Log.Level),
		"ENTITLEMENTS_CERTIFICATE_SIGNING_KEY_FILE": envString(&c.Certificate.SigningKeyFile),
		"ENTITLEMENTS_SCHEDULER_ENABLED":            envParsed(&c.Scheduler.Enabled, strconv.ParseBool, "true or false"),
		// How each replica sets the cache from its environment: on
		// PostgreSQL it is off unless set (docs/scaling.md).
		"ENTITLEMENTS_DATABASE_SNAPSHOT_CACHE": envParsed(&c.Database.SnapshotCache, strconv.Atoi, "a whole number of vehicles"),
	}
}

// envSetter sets a config field from an environment variable's value, or
// says what the value should have been.
type envSetter func(v string) (want string, ok bool)

func envString(p *string) envSetter {
	return func(v string) (string, bool) { *p = v; return "", true }
}

// envParsed sets *p to the value parse reads; want names what it accepts.
func envParsed[T any](p **T, parse func(string) (T, error), want string) envSetter {
	return func(v string) (string, bool) {
		x, err := parse(v)
		if err != nil {
			return want, false
		}
		*p = &x
		return "", true
	}
}

// LoadConfig reads path (which must exist), applies environment overrides
// from getenv and validates the result, listing every problem at once.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(raw, getenv)
}

// ParseConfig is LoadConfig on bytes.
func ParseConfig(raw []byte, getenv func(string) string) (*Config, error) {
	c := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	for k, set := range c.envOverrides() {
		if v := getenv(k); v != "" {
			if want, ok := set(v); !ok {
				c.envErrs = append(c.envErrs, fmt.Sprintf("%s %q is not %s", k, v, want))
			}
		}
	}
	slices.Sort(c.envErrs) // the same message whatever the map's order
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func defaultConfig() *Config {
	c := &Config{}
	c.HTTP.Addr = "127.0.0.1:8080"
	c.HTTP.ReadTimeout = Duration(10 * time.Second)
	c.HTTP.WriteTimeout = Duration(30 * time.Second)
	c.HTTP.IdleTimeout = Duration(120 * time.Second)
	c.Database.Driver = store.SQLite
	c.Database.DSN = "data/entitlements.db"
	c.Timezone = "Asia/Shanghai"
	c.Log.Level = "info"
	c.Auth.JWKSRefresh = Duration(time.Hour)
	c.Payments.Tolerance = Duration(5 * time.Minute)
	c.Trial.Months = 12
	c.Trial.DataBytesPerMonth = 15 << 30
	c.Orders.UnpaidTTL = Duration(30 * time.Minute)
	c.Notices.ReminderDays = []int{30, 7, 1}
	c.Notices.ExpiredMaxAge = Duration(168 * time.Hour)
	c.Notices.QuotaThresholds = []int{80, 100}
	c.Notices.WebhookTimeout = Duration(10 * time.Second)
	c.Usage.Retention = Duration(9600 * time.Hour) // 400 days: last year's same month stays replay-safe
	c.Limits.BodyBytesInFlight = api.DefaultBodyBytes
	c.Limits.Wait = Duration(api.DefaultLimitWait)
	c.Limits.Concurrent.Reads = api.DefaultReadsInFlight
	c.Limits.Concurrent.Writes = api.DefaultWritesInFlight
	c.Limits.Concurrent.Payments = api.DefaultPaymentsInFlight
	c.Limits.Concurrent.Usage = api.DefaultUsageInFlight
	c.Certificate.Issuer = "entitlements"
	c.Certificate.TTL = Duration(168 * time.Hour)
	c.Certificate.Grace = Duration(24 * time.Hour)
	c.Certificate.RenewAfter = Duration(12 * time.Hour)
	c.Certificate.CacheEntries = api.DefaultCertificateCacheEntries
	c.Scheduler.Expire = "@every 1m"
	c.Scheduler.Remind = "@every 10m"
	c.Scheduler.Deliver = "@every 5s"
	c.Scheduler.CancelUnpaid = "@every 5m"
	c.Scheduler.Prune = "@every 1h"
	return c
}

// validate checks every rule and reports all failures together.
func (c *Config) validate() error {
	errs := append([]string(nil), c.envErrs...)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	c.validateService(bad)
	c.validateSecrets(bad)
	c.validateCatalog(bad)
	c.validateNotices(bad)
	c.validateSchedules(bad)
	errs = append(errs, c.Certificate.validate()...)
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  - %s", strings.Join(errs, "\n  - "))
	}
	return nil
}

// problem records one configuration error (validate collects them all).
type problem func(format string, args ...any)

// validateService checks http, database, timezone and log; it sets the
// parsed location and log level.
func (c *Config) validateService(bad problem) {
	if c.HTTP.Addr == "" {
		bad("http.addr is required")
	}
	switch c.Database.Driver {
	case store.SQLite, store.Postgres:
	default:
		bad("database.driver must be %q or %q, got %q", store.SQLite, store.Postgres, c.Database.Driver)
	}
	if c.Database.DSN == "" {
		bad("database.dsn is required")
	}
	if c.Database.SnapshotCache != nil && *c.Database.SnapshotCache < 0 {
		bad("database.snapshot_cache must not be negative")
	}
	if c.Database.SnapshotCacheMiB < 0 {
		bad("database.snapshot_cache_mib must not be negative")
	}
	if c.Database.SnapshotCacheMaxAge.D() < 0 {
		bad("database.snapshot_cache_max_age must not be negative")
	}
	if c.Database.SQLiteCacheMiB < 0 {
		bad("database.sqlite_cache_mib must not be negative")
	}
	if c.Database.CheckpointEvery.D() < 0 {
		bad("database.checkpoint_every must not be negative")
	}
	if loc, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		bad("timezone %q is not a known IANA zone", c.Timezone)
	} else {
		c.loc = loc
	}
	if strings.EqualFold(c.Log.Level, "warning") {
		c.Log.Level = "warn"
	}
	if err := c.logLevel.UnmarshalText([]byte(c.Log.Level)); err != nil {
		bad("log.level must be debug, info, warn or error, got %q", c.Log.Level)
	}
}

// validateSecrets checks the auth and payment secrets.
func (c *Config) validateSecrets(bad problem) {
	if c.Auth.TokenSecret == "" {
		bad("auth.token_secret is required")
	}
	c.validateIdP(bad)
	if c.Payments.WebhookSecret == "" {
		bad("payments.webhook_secret is required")
	}
	if c.Payments.Tolerance.D() <= 0 {
		bad("payments.tolerance must be positive")
	}
}

// validateCatalog checks the trial, the products and the features.
func (c *Config) validateCatalog(bad problem) {
	if c.Trial.Months < 1 || c.Trial.Months > 120 {
		bad("trial.months must be between 1 and 120, got %d", c.Trial.Months)
	}
	if c.Trial.DataBytesPerMonth < 0 {
		bad("trial.data_bytes_per_month must not be negative")
	}
	if len(c.Products) == 0 {
		bad("products: at least one product is required")
	}
	codes := map[string]bool{}
	for i, p := range c.Products {
		switch {
		case p.Code == "" || p.Code == string(billing.SourceTrial):
			bad("products[%d].code must be set and not %q", i, billing.SourceTrial)
		case codes[p.Code]:
			bad("products[%d].code %q is repeated", i, p.Code)
		}
		codes[p.Code] = true
		if p.Name == "" {
			bad("products[%d].name is required", i)
		}
		if p.PriceFen <= 0 {
			bad("products[%d].price_fen must be positive (fen, an integer)", i)
		}
		if p.Days < 1 || p.Days > 3660 {
			bad("products[%d].days must be between 1 and 3660", i)
		}
		if p.DataBytesPerMonth < 0 {
			bad("products[%d].data_bytes_per_month must not be negative", i)
		}
	}
	feats := map[string]bool{}
	for _, f := range append(append([]string{}, c.Features.Basic...), c.Features.Premium...) {
		if f == "" || feats[f] {
			bad("features: %q is empty or listed twice", f)
		}
		feats[f] = true
	}
}

// validateNotices checks orders, notices, usage retention and the
// webhook.
func (c *Config) validateNotices(bad problem) {
	if c.Orders.UnpaidTTL.D() <= 0 {
		bad("orders.unpaid_ttl must be positive")
	}
	for _, d := range c.Notices.ReminderDays {
		if d < 1 || d > 365 {
			bad("notices.reminder_days: %d is not between 1 and 365", d)
		}
	}
	if c.Notices.ExpiredMaxAge.D() <= 0 {
		bad("notices.expired_max_age must be positive")
	}
	for _, q := range c.Notices.QuotaThresholds {
		if q < 1 || q > 100 {
			bad("notices.quota_thresholds: %d is not a percentage between 1 and 100", q)
		}
	}
	if r := c.Usage.Retention.D(); r < 24*time.Hour {
		bad("usage.retention must be at least 24h (records arrive a day or more late), got %s", r)
	}
	for _, l := range []struct {
		key string
		n   int64
	}{
		{"limits.body_bytes_in_flight", c.Limits.BodyBytesInFlight},
		{"limits.wait", int64(c.Limits.Wait)},
		{"limits.concurrent.reads", int64(c.Limits.Concurrent.Reads)},
		{"limits.concurrent.writes", int64(c.Limits.Concurrent.Writes)},
		{"limits.concurrent.payments", int64(c.Limits.Concurrent.Payments)},
		{"limits.concurrent.usage", int64(c.Limits.Concurrent.Usage)},
	} {
		if l.n <= 0 {
			bad("%s must be positive", l.key)
		}
	}
	if b := c.Limits.BodyBytesInFlight; b > 0 && b < api.MaxUsageBodyBytes {
		bad("limits.body_bytes_in_flight must be at least %d (the largest request body, a usage batch), got %d", api.MaxUsageBodyBytes, b)
	}
	if u := c.Notices.WebhookURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("notices.webhook_url %q is not an http(s) URL", u)
		}
		if _, err := scheduler.ParseSecret(c.Notices.WebhookSecret); err != nil {
			bad("notices.webhook_secret must be whsec_<base64 key> when notices.webhook_url is set: %v", err)
		}
	}
	if t := c.Notices.WebhookTimeout.D(); t <= 0 || t > 5*time.Minute {
		bad("notices.webhook_timeout must be between 0 and 5m, got %s", t)
	}
}

// validateSchedules checks every job's cron schedule.
func (c *Config) validateSchedules(bad problem) {
	for _, j := range []struct{ key, spec string }{
		{"scheduler.expire", c.Scheduler.Expire},
		{"scheduler.remind", c.Scheduler.Remind},
		{"scheduler.deliver", c.Scheduler.Deliver},
		{"scheduler.cancel_unpaid", c.Scheduler.CancelUnpaid},
		{"scheduler.prune", c.Scheduler.Prune},
	} {
		if _, err := cron.ParseStandard(j.spec); err != nil {
			bad("%s %q is not a cron schedule (like \"@every 1m\" or \"*/5 * * * *\"): %v", j.key, j.spec, err)
		}
	}
}

// APILimits is the limits block for package api.
func (c *Config) APILimits() api.Limits {
	return api.Limits{
		BodyBytes: c.Limits.BodyBytesInFlight,
		Wait:      c.Limits.Wait.D(),
		Reads:     c.Limits.Concurrent.Reads,
		Writes:    c.Limits.Concurrent.Writes,
		Payments:  c.Limits.Concurrent.Payments,
		Usage:     c.Limits.Concurrent.Usage,
	}
}

// validateIdP checks the identity provider keys of auth.
func (c *Config) validateIdP(bad func(string, ...any)) {
	a := &c.Auth
	if a.JWKSURL == "" && a.Issuer == "" && a.Audience == "" {
		if a.RoleClaim != "" || a.SubjectClaim != "" || a.IdPRoles != nil {
			bad("auth.role_claim, subject_claim and idp_roles need auth.jwks_url, issuer and audience")
		}
		return
	}
	for _, k := range []struct{ key, v string }{{"auth.jwks_url", a.JWKSURL}, {"auth.issuer", a.Issuer}, {"auth.audience", a.Audience}} {
		if k.v == "" {
			bad("%s is required when any of auth.jwks_url, issuer and audience is set", k.key)
		}
	}
	if a.JWKSURL != "" {
		u, err := url.Parse(a.JWKSURL)
		switch {
		case err != nil || u.Host == "":
			bad("auth.jwks_url %q is not a URL", a.JWKSURL)
		case u.Scheme == "https":
		case u.Scheme == "http" && isLoopback(u.Hostname()):
		default:
			bad("auth.jwks_url %q must be https (http only on a loopback address): the keys it serves decide who is staff", a.JWKSURL)
		}
	}
	if a.IdPRoles != nil && len(a.IdPRoles) == 0 {
		bad("auth.idp_roles must map at least one claim value to a role")
	}
	for name, r := range a.IdPRoles {
		if name == "" || !slices.Contains(api.Roles, api.Role(r)) {
			bad("auth.idp_roles: %q → %q: want a claim value and one of %v", name, r, api.Roles)
		}
	}
	if d := a.JWKSRefresh.D(); d < time.Minute || d > 24*time.Hour {
		bad("auth.jwks_refresh must be between 1m and 24h, got %s", d)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IdP is the identity provider's configuration for package api; ok is
// false when auth.jwks_url is not set.
func (c *Config) IdP() (idp api.IdPConfig, ok bool) {
	a := c.Auth
	if a.JWKSURL == "" {
		return api.IdPConfig{}, false
	}
	idp = api.IdPConfig{
		JWKSURL: a.JWKSURL, Issuer: a.Issuer, Audience: a.Audience,
		RoleClaim: a.RoleClaim, SubjectClaim: a.SubjectClaim, Refresh: a.JWKSRefresh.D(),
	}
	if a.IdPRoles != nil {
		idp.Roles = make(map[string]api.Role, len(a.IdPRoles))
		for name, r := range a.IdPRoles {
			idp.Roles[name] = api.Role(r)
		}
	}
	return idp, true
}

// SchedulerEnabled reports whether serve runs the background jobs
// (scheduler.enabled, default true).
func (c *Config) SchedulerEnabled() bool { return c.Scheduler.Enabled == nil || *c.Scheduler.Enabled }

// Location is the validated time zone.
func (c *Config) Location() *time.Location { return c.loc }

// Catalog is the configured offer for package billing.
func (c *Config) Catalog() billing.Catalog {
	cat := billing.Catalog{
		Trial:    billing.TrialTerms{Months: c.Trial.Months, DataBytesPerMonth: c.Trial.DataBytesPerMonth},
		Features: billing.Features{Basic: c.Features.Basic, Premium: c.Features.Premium},
	}
	for _, p := range c.Products {
		cat.Products = append(cat.Products, billing.Product{
			Code: p.Code, Name: p.Name, PriceFen: int64(p.PriceFen), Days: p.Days, DataBytesPerMonth: p.DataBytesPerMonth,
		})
	}
	return cat
}

// StoreConfig is the database part for package store.
func (c *Config) StoreConfig() store.Config {
	return store.Config{
		Driver: c.Database.Driver, DSN: c.Database.DSN,
		MaxOpenConns: c.Database.MaxOpenConns, MaxIdleConns: c.Database.MaxIdleConns,
		ConnMaxLifetime:     c.Database.ConnMaxLifetime.D(),
		SnapshotCache:       c.snapshotCache(),
		CacheMiB:            c.Database.SQLiteCacheMiB,
		SnapshotCacheMiB:    c.Database.SnapshotCacheMiB,
		CheckpointEvery:     c.Database.CheckpointEvery.D(),
		SnapshotCacheMaxAge: c.Database.SnapshotCacheMaxAge.D(),
	}
}

// DefaultSnapshotCache is the SQLite snapshot cache size when config does
// not say: about 60 MB for 65 536 vehicles. On PostgreSQL the cache is
// off unless config says how many.
const DefaultSnapshotCache = 65536

func (c *Config) snapshotCache() int {
	if c.Database.SnapshotCache == nil {
		if c.Database.Driver == store.Postgres {
			return 0
		}
		return DefaultSnapshotCache
	}
	return *c.Database.SnapshotCache
}

// DevSecrets lists the secrets still at their shipped development value.
func (c *Config) DevSecrets() []string {
	var out []string
	if c.Auth.TokenSecret == devSecret {
		out = append(out, "auth.token_secret")
	}
	if c.Payments.WebhookSecret == devSecret {
		out = append(out, "payments.webhook_secret")
	}
	if c.Notices.WebhookURL != "" && c.Notices.WebhookSecret == devWebhookSecret {
		out = append(out, "notices.webhook_secret")
	}
	if c.Certificate.devKey() {
		out = append(out, "certificate.signing_key_file")
	}
	return out
}
