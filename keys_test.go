package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/api"
)

// TestKeysGenerate: `keys generate --out FILE` writes a PKCS#8 Ed25519
// key readable only by its owner, prints its kid, and never overwrites.
func TestKeysGenerate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "signing.pem")
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"keys", "generate", "--out", out}, &stdout, io.Discard, noEnv); err != nil {
		t.Fatalf("keys generate: %v", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	k, err := api.ParseSigningKey(raw)
	if err != nil {
		t.Fatalf("the written key: %v", err)
	}
	if kid := api.KeyID(k.Public().(ed25519.PublicKey)); !strings.Contains(stdout.String(), kid) {
		t.Errorf("output %q does not name the kid %s", stdout.String(), kid)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := run(context.Background(), []string{"keys", "generate", "--out", out}, io.Discard, io.Discard, noEnv); err == nil {
		t.Error("keys generate over an existing file: no error")
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, raw) {
		t.Error("keys generate overwrote an existing key")
	}
	for _, args := range [][]string{{"help", "keys"}, {"keys", "--help"}, {"keys", "generate", "-h"}} {
		var help bytes.Buffer
		if err := run(context.Background(), args, &help, io.Discard, noEnv); err != nil || !strings.Contains(help.String(), "-out") {
			t.Errorf("%v = %v, %q; want the flags, -out among them", args, err, help.String())
		}
	}
	for _, args := range [][]string{{"keys"}, {"keys", "generate"}, {"keys", "rotate"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard, noEnv); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func certConfig(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml), noEnv)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func newKeyFile(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := writeNewKey(path); err != nil {
		t.Fatal(err)
	}
	k, err := readKey(name, path)
	if err != nil {
		t.Fatal(err)
	}
	return path, api.KeyID(k.Public().(ed25519.PublicKey))
}

// TestCertificateKeys: the signing key signs; the next key and the
// retired ones are published, a retired one until retired_at + ttl; a dev
// key is generated once and flagged; no key is a warning, not an error; a
// bad key file stops start-up naming its key.
func TestCertificateKeys(t *testing.T) {
	base := "auth: {token_secret: s}\npayments: {webhook_secret: s}\nproducts: [{code: m, name: M, price_fen: 1, days: 31}]\n"
	dir := t.TempDir()
	signing, signingKID := newKeyFile(t, dir, "signing.pem")
	next, nextKID := newKeyFile(t, dir, "next.pem")
	retired, retiredKID := newKeyFile(t, dir, "retired.pem")

	t.Run("signing, next and retired", func(t *testing.T) {
		cfg := certConfig(t, base+"certificate: {signing_key_file: "+signing+", next_key_file: "+next+
			", retired_key_files: ["+retired+"], retired_at: \"2026-06-01T00:00:00Z\", ttl: 48h, grace: 24h, renew_after: 1h, cache_entries: 500}\n")
		opts, err := certificateOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if opts.Keys.KeyID() != signingKID || opts.Terms.TTL != 48*time.Hour || opts.RenewAfter != time.Hour || opts.Issuer != "entitlements" || opts.CacheEntries != 500 {
			t.Errorf("options = %+v, want the signing key and the configured terms", opts)
		}
		before, _, _ := opts.Keys.JWKS(time.Date(2026, 6, 2, 23, 59, 0, 0, time.UTC))
		after, _, _ := opts.Keys.JWKS(time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC))
		for _, kid := range []string{signingKID, nextKID, retiredKID} {
			if !strings.Contains(string(before), kid) {
				t.Errorf("JWKS before retired_at + ttl lacks %s: %s", kid, before)
			}
		}
		if strings.Contains(string(after), retiredKID) || !strings.Contains(string(after), nextKID) {
			t.Errorf("JWKS at retired_at + ttl = %s, want the retired key gone and the next key kept", after)
		}
	})
	t.Run("no key: a warning", func(t *testing.T) {
		var logs bytes.Buffer
		opts, err := certificateOptions(certConfig(t, base), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil || opts.Keys.CanSign() {
			t.Fatalf("certificateOptions() = %v, can sign %v; want no error and no signing key", err, opts.Keys.CanSign())
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "503") {
			t.Errorf("logs = %q, want a warning that certificates answer 503", logs.String())
		}
	})
	t.Run("dev key generated once", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "dev-only-certificate-key.pem")
		cfg := certConfig(t, base+"certificate: {signing_key_file: "+path+"}\n")
		var logs bytes.Buffer
		first, err := certificateOptions(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil || !first.Keys.CanSign() {
			t.Fatalf("first start: %v", err)
		}
		if !strings.Contains(logs.String(), "development only") {
			t.Errorf("logs = %q, want the generated key called development only", logs.String())
		}
		second, err := certificateOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil || second.Keys.KeyID() != first.Keys.KeyID() {
			t.Errorf("second start: kid %s, %v; want the key of the first start %s", second.Keys.KeyID(), err, first.Keys.KeyID())
		}
		if got := cfg.DevSecrets(); len(got) != 1 || got[0] != "certificate.signing_key_file" {
			t.Errorf("DevSecrets() = %v, want the dev key flagged", got)
		}
	})
	t.Run("bad key files stop start-up", func(t *testing.T) {
		notKey := filepath.Join(dir, "not-a-key.pem")
		os.WriteFile(notKey, []byte("hello"), 0o600)
		cfg := certConfig(t, base+"certificate: {signing_key_file: "+notKey+", next_key_file: "+filepath.Join(dir, "missing.pem")+"}\n")
		_, err := certificateOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.Contains(err.Error(), "certificate.signing_key_file") || !strings.Contains(err.Error(), "certificate.next_key_file") {
			t.Errorf("error = %v, want both bad keys named", err)
		}
	})
}

// TestCertificateCacheEntries: the cache is on by default, and 0 turns it
// off (it is not taken for "unset").
func TestCertificateCacheEntries(t *testing.T) {
	base := "auth: {token_secret: s}\npayments: {webhook_secret: s}\nproducts: [{code: m, name: M, price_fen: 1, days: 31}]\n"
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"", api.DefaultCertificateCacheEntries},
		{"certificate: {cache_entries: 0}\n", 0},
		{"certificate: {cache_entries: 100}\n", 100},
	} {
		opts, err := certificateOptions(certConfig(t, base+tc.yaml), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil || opts.CacheEntries != tc.want {
			t.Errorf("%q: cache entries %d, %v; want %d", tc.yaml, opts.CacheEntries, err, tc.want)
		}
	}
}

func TestCertificateConfigRules(t *testing.T) {
	base := "auth: {token_secret: s}\npayments: {webhook_secret: s}\nproducts: [{code: m, name: M, price_fen: 1, days: 31}]\n"
	for _, tc := range []struct{ yaml, want string }{
		{"certificate: {ttl: 0s}", "certificate.ttl"},
		{"certificate: {ttl: 24h, grace: 48h}", "certificate.grace"},
		{"certificate: {grace: 12h, renew_after: 12h}", "certificate.renew_after"},
		{"certificate: {retired_at: yesterday}", "certificate.retired_at"},
		{"certificate: {issuer: \"\"}", "certificate.issuer"},
		{"certificate: {cache_entries: -1}", "certificate.cache_entries"},
	} {
		_, err := ParseConfig([]byte(base+tc.yaml+"\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.want)
		}
	}
}

// TestServeGeneratesDevCertificateKey: the shipped config serves with a
// development key generated on first start, and says so.
func TestServeGeneratesDevCertificateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-only-certificate-key.pem")
	logs := serveOnce(t, map[string]string{"ENTITLEMENTS_CERTIFICATE_SIGNING_KEY_FILE": path})
	if _, err := os.Stat(path); err != nil {
		t.Errorf("dev key: %v", err)
	}
	for _, want := range []string{"development only", `"key":"certificate.signing_key_file"`, `"msg":"certificates signed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}
