package api

import (
	"strings"
	"testing"
	"time"

	"entitlements/billing"
)

// FuzzDecodeCursor holds the opaque page cursor to its round trip: any
// string decodes or is refused without a panic; a cursor that decodes has
// an id of 1 to 64 bytes and encodes to a canonical cursor that decodes to
// the same position; and every position the store hands out (an instant
// in microseconds and an id) comes back unchanged.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", "%%%", "MTc4MTQ5MTIwMDAwMDAwMC5yZl8x", "MC4", "LTEueA", "MTIz\nLng",
		"OTIyMzM3MjAzNjg1NDc3NTgwNy5h", "KzEuYQ", "MS4uLg", "MS5h==", *encodeCursor(&billing.Cursor{At: time.Unix(0, 0), ID: strings.Repeat("x", 64)})} {
		f.Add(s, int64(1781491200000000), "ord_1")
	}
	f.Fuzz(func(t *testing.T, s string, micros int64, id string) {
		if c, ok := decodeCursor(s); ok {
			if c.ID == "" || len(c.ID) > 64 {
				t.Fatalf("decodeCursor(%q) = id %q, want 1 to 64 bytes", s, c.ID)
			}
			again, ok := decodeCursor(*encodeCursor(c))
			if !ok || !again.At.Equal(c.At) || again.ID != c.ID {
				t.Fatalf("decodeCursor(%q) = %v %q, which encodes to %q and decodes to %v", s, c.At, c.ID, *encodeCursor(c), again)
			}
		} else if c != nil {
			t.Fatalf("decodeCursor(%q) refused it but returned %v", s, c)
		}
		if id == "" || len(id) > 64 {
			return
		}
		at := time.UnixMicro(micros).UTC()
		enc := encodeCursor(&billing.Cursor{At: at, ID: id})
		c, ok := decodeCursor(*enc)
		if !ok || !c.At.Equal(at) || c.ID != id {
			t.Fatalf("cursor of (%v, %q) is %q, decodes to %v, %v", at, id, *enc, c, ok)
		}
	})
}
