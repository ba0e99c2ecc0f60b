package billing

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerifyPayment holds the Payment-Signature check to its contract:
// any header, body and secret give nil or EBadSignature (never a panic);
// a header made by SignPayment verifies within the tolerance; and a
// header or body that differs from the signed one in a single byte is
// refused. The one single-byte change that is allowed to verify is a
// change of letter case inside a v1 value: hex digits name the same
// signature bytes in either case.
func FuzzVerifyPayment(f *testing.F) {
	f.Add("t=1781491200,v1=0000000000000000000000000000000000000000000000000000000000000000", []byte(`{"event_id":"evt_1"}`), []byte("secret"), int64(1781491200), uint16(3), byte('x'))
	f.Add("", []byte(""), []byte("s"), int64(0), uint16(0), byte(0))
	f.Add("t=1,t=2", []byte("{}"), []byte("k"), int64(-1), uint16(40), byte('A'))
	f.Add("v1=zz, t=5,v0=abc,,", []byte("\x00"), []byte{0}, int64(1<<40), uint16(9), byte(','))
	f.Add("t=+1781491200,v1="+strings.Repeat("ab", 32), []byte("x"), []byte("secret"), int64(1781491200), uint16(70), byte('='))
	f.Fuzz(func(t *testing.T, header string, body, secret []byte, unix int64, pos uint16, b byte) {
		// Keep the instant where time.Unix and Time.Unix round-trip.
		unix %= 1 << 40
		now := time.Unix(unix, 0)
		const tolerance = 5 * time.Minute

		// Arbitrary input: no panic, and the only error is EBadSignature.
		if err := VerifyPayment(header, body, secret, now, tolerance); err != nil && !IsCode(err, EBadSignature) {
			t.Fatalf("VerifyPayment(%q) error %v has code %q, want %q", header, err, ErrorCode(err), EBadSignature)
		}
		if len(secret) == 0 {
			return
		}

		// A signed body verifies, at the edges of the tolerance too.
		signed := SignPayment(secret, body, now)
		for _, at := range []time.Time{now, now.Add(tolerance), now.Add(-tolerance)} {
			if err := VerifyPayment(signed, body, secret, at, tolerance); err != nil {
				t.Fatalf("VerifyPayment(SignPayment(...)) at %+d s = %v, want nil", at.Unix()-unix, err)
			}
		}
		if err := VerifyPayment(signed, body, secret, now.Add(tolerance+time.Second), tolerance); err == nil {
			t.Fatalf("VerifyPayment accepted a signature older than the tolerance")
		}
		// Rotation: the right signature among others verifies.
		rotated := signed + ",v1=" + strings.Repeat("0", 64) + ",v0=ignored"
		if err := VerifyPayment(rotated, body, secret, now, tolerance); err != nil {
			t.Fatalf("VerifyPayment(%q) = %v, want nil", rotated, err)
		}
		// Another secret does not verify. (Appending zero bytes would not
		// make another secret: HMAC pads short keys with zeros.)
		other := append([]byte(nil), secret...)
		other[0] ^= b | 1
		if err := VerifyPayment(signed, body, other, now, tolerance); err == nil {
			t.Fatalf("VerifyPayment accepted the signature under another secret")
		}

		// One byte of the body changed: refused.
		if len(body) > 0 {
			changed := append([]byte(nil), body...)
			i := int(pos) % len(changed)
			if changed[i] == b {
				b ^= 0x80
			}
			changed[i] = b
			if err := VerifyPayment(signed, changed, secret, now, tolerance); err == nil {
				t.Fatalf("VerifyPayment accepted body %q signed as %q", changed, body)
			}
		}

		// One byte of the header changed: refused, unless only the case of
		// a hex digit in the v1 value changed.
		h := []byte(signed)
		i := int(pos) % len(h)
		old := h[i]
		if old == b {
			b ^= 0x80
		}
		h[i] = b
		sigStart := strings.Index(signed, "v1=") + len("v1=")
		caseOnly := i >= sigStart && strings.EqualFold(string(old), string(b))
		if err := VerifyPayment(string(h), body, secret, now, tolerance); err == nil && !caseOnly {
			t.Fatalf("VerifyPayment accepted header %q changed from %q at byte %d", h, signed, i)
		}
	})
}
