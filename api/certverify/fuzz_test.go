package certverify_test

import (
	"strings"
	"testing"
	"time"

	"entitlements/api/certverify"
	"entitlements/billing"
)

// FuzzVerify: whatever the head unit is handed, Verify returns an error
// or a certificate, never panics, and accepts no header or payload but
// those the key signed (the signature's own base64 may be spelled another
// way that decodes to the same bytes).
func FuzzVerify(f *testing.F) {
	jwks, token := issue()
	v, err := certverify.NewVerifier(jwks, "entitlements")
	if err != nil {
		f.Fatal(err)
	}
	vin := billing.FixCheckDigit("LSVAX4E10P2000900")
	now := time.Date(2026, 6, 16, 8, 0, 0, 0, time.UTC)
	parts := strings.Split(token, ".")
	for _, seed := range []string{token, "", "a.b.c", parts[0] + ".." + parts[2], parts[0] + "." + parts[1] + ".",
		strings.Repeat(".", 5), parts[1] + "." + parts[0] + "." + parts[2], "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify(s, vin, now, 0)
		signed := parts[0] + "." + parts[1] + "."
		if err == nil && !strings.HasPrefix(s, signed) {
			t.Fatalf("Verify(%q) accepted a token the key did not sign", s)
		}
		if err == nil {
			if _, err := c.Decide("karaoke", "", now); err != nil {
				t.Fatalf("Decide on a verified certificate: %v", err)
			}
		}
	})
}
