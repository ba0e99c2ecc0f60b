package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// CertificateConfig is config.yaml's certificate section: offline coverage
// certificates and the keys that sign them (docs/certificate.md).
type CertificateConfig struct {
	// SigningKeyFile is the Ed25519 private key (PEM, PKCS#8) that signs
	// certificates. Empty: the certificate endpoint answers 503. A file
	// whose name starts with "dev-only" is a development key: generated
	// when missing, and warned about at every start.
	SigningKeyFile string `yaml:"signing_key_file"`
	// NextKeyFile is the key that will sign after the next rotation: its
	// public key is published in the JWKS now, before it signs anything.
	NextKeyFile string `yaml:"next_key_file"`
	// RetiredKeyFiles are keys that signed before a rotation; their public
	// keys stay in the JWKS until RetiredAt + TTL (the last certificate
	// they signed has expired by then), or for as long as they are listed
	// when RetiredAt is empty.
	RetiredKeyFiles []string `yaml:"retired_key_files"`
	// RetiredAt is when the retired keys last signed: the deployment of
	// the rotation (RFC 3339). Later is safe; earlier drops a key early.
	RetiredAt  string   `yaml:"retired_at"`
	Issuer     string   `yaml:"issuer"`      // the iss claim
	TTL        Duration `yaml:"ttl"`         // longest validity of a certificate
	Grace      Duration `yaml:"grace"`       // validity past the end of the last coverage window
	RenewAfter Duration `yaml:"renew_after"` // age after which If-None-Match no longer gets 304
	// CacheEntries bounds the cache of recently signed certificates (one
	// per car, about 300 bytes each); 0 turns it off.
	CacheEntries int `yaml:"cache_entries"`

	retiredAt time.Time
}

// certificateSkew is how long before its iat a certificate is valid (nbf),
// for a car whose clock runs a little behind the service's.
const certificateSkew = 5 * time.Minute

// devKeyPrefix marks a development signing key file, as devSecret marks
// a development secret.
const devKeyPrefix = "dev-only"

func (c *CertificateConfig) devKey() bool {
	return c.SigningKeyFile != "" && strings.HasPrefix(filepath.Base(c.SigningKeyFile), devKeyPrefix)
}

func (c *CertificateConfig) validate() []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Issuer == "" {
		bad("certificate.issuer is required")
	}
	ttl, grace, renew := c.TTL.D(), c.Grace.D(), c.RenewAfter.D()
	if ttl <= 0 || ttl > 90*24*time.Hour {
		bad("certificate.ttl must be between 0 and 2160h, got %s", ttl)
	}
	if grace <= 0 || grace > ttl {
		bad("certificate.grace must be positive and at most certificate.ttl, got %s", grace)
	}
	if renew <= 0 || renew >= grace {
		bad("certificate.renew_after must be positive and below certificate.grace (a car must renew before its certificate expires), got %s", renew)
	}
	if c.CacheEntries < 0 {
		bad("certificate.cache_entries must not be negative (0 turns the cache off), got %d", c.CacheEntries)
	}
	if c.RetiredAt != "" {
		t, err := time.Parse(time.RFC3339, c.RetiredAt)
		if err != nil {
			bad("certificate.retired_at %q is not an RFC 3339 time", c.RetiredAt)
		}
		c.retiredAt = t
	}
	return errs
}

// certificateOptions loads the configured keys (generating a missing
// development key) and returns the API's certificate options. A missing
// signing key is not an error: the endpoint answers 503, and this logs why.
func certificateOptions(cfg *Config, log *slog.Logger) (api.CertificateOptions, error) {
	c := &cfg.Certificate
	var errs []error
	var signing ed25519.PrivateKey
	switch {
	case c.SigningKeyFile == "":
		log.Warn("certificate.signing_key_file is not set: GET /v1/vehicles/{vin}/certificate answers 503 certificate_unavailable")
	default:
		if c.devKey() {
			created, err := ensureDevKey(c.SigningKeyFile)
			if err != nil {
				errs = append(errs, err)
			} else if created {
				log.Warn("generated a development certificate signing key; for development only: set certificate.signing_key_file before production",
					slog.String("file", c.SigningKeyFile))
			}
		}
		k, err := readKey("certificate.signing_key_file", c.SigningKeyFile)
		signing = k
		errs = append(errs, err)
	}
	var published []api.PublishedKey
	if c.NextKeyFile != "" {
		k, err := readKey("certificate.next_key_file", c.NextKeyFile)
		errs = append(errs, err)
		if k != nil {
			published = append(published, api.PublishedKey{Key: k.Public().(ed25519.PublicKey)})
		}
	}
	var until time.Time
	if !c.retiredAt.IsZero() {
		until = c.retiredAt.Add(c.TTL.D())
	}
	for i, f := range c.RetiredKeyFiles {
		k, err := readKey(fmt.Sprintf("certificate.retired_key_files[%d]", i), f)
		errs = append(errs, err)
		if k != nil {
			published = append(published, api.PublishedKey{Key: k.Public().(ed25519.PublicKey), Until: until})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return api.CertificateOptions{}, err
	}
	ring, err := api.NewKeyring(signing, published...)
	if err != nil {
		return api.CertificateOptions{}, err
	}
	if ring.CanSign() {
		log.Info("certificates signed", slog.String("kid", ring.KeyID()))
	}
	return api.CertificateOptions{
		Keys: ring, Issuer: c.Issuer, RenewAfter: c.RenewAfter.D(), CacheEntries: c.CacheEntries,
		Terms: billing.CertificateTerms{TTL: c.TTL.D(), Grace: c.Grace.D(), Skew: certificateSkew},
	}, nil
}

func readKey(key, path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	k, err := api.ParseSigningKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", key, path, err)
	}
	return k, nil
}

// ensureDevKey writes a new key to path unless a file is there. Replicas
// starting together on one machine agree on one key: the key is written
// to a temporary file and linked into place, which fails if another
// process got there first.
func ensureDevKey(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("certificate.signing_key_file: %w", err)
	}
	pemBytes, err := api.GenerateSigningKey()
	if err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, ".dev-key-*") // mode 0600
	if err != nil {
		return false, fmt.Errorf("certificate.signing_key_file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(pemBytes)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("certificate.signing_key_file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("certificate.signing_key_file: %w", err)
	}
	return true, nil
}

// writeNewKey writes a new Ed25519 key to path (mode 0600), never over an
// existing file.
func writeNewKey(path string) error {
	pemBytes, err := api.GenerateSigningKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// keysCommand runs `keys generate --out FILE`: a new certificate signing
// key, for certificate.signing_key_file or certificate.next_key_file. It
// prints the key's kid, which the JWKS will list. It reads no config.
func keysCommand(args []string, stdout, stderr io.Writer) error {
	generate := len(args) > 0 && args[0] == "generate"
	if generate {
		args = args[1:]
	}
	a, err := parseFlags("keys", args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if !generate {
		return errors.New("usage: entitlements keys generate --out FILE")
	}
	if a.out == "" {
		return errors.New("keys generate: --out FILE is required")
	}
	if err := writeNewKey(a.out); err != nil {
		return fmt.Errorf("keys generate: %w", err)
	}
	k, err := readKey("--out", a.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (kid %s)\n", a.out, api.KeyID(k.Public().(ed25519.PublicKey)))
	return nil
}
