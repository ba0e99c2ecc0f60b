package billing

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerifyPayment(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"event_id":"e1"}`)
	now := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
	sig := SignPayment(secret, body, now)
	v1 := strings.Split(sig, ",")[1]
	tests := []struct {
		name   string
		header string
		body   []byte
		secret []byte
		ok     bool
	}{
		{"valid", sig, body, secret, true},
		{"valid with spaces and an unknown scheme", "t=" + strings.TrimPrefix(strings.Split(sig, ",")[0], "t=") + ", v0=abc, " + v1, body, secret, true},
		{"second v1 matches", sig[:strings.Index(sig, ",")] + ",v1=" + strings.Repeat("00", 32) + "," + v1, body, secret, true},
		{"4m59s old", SignPayment(secret, body, now.Add(-299*time.Second)), body, secret, true},
		{"5m1s old", SignPayment(secret, body, now.Add(-301*time.Second)), body, secret, false},
		{"5m1s ahead", SignPayment(secret, body, now.Add(301*time.Second)), body, secret, false},
		{"wrong secret", SignPayment([]byte("other"), body, now), body, secret, false},
		{"body changed", sig, []byte(`{"event_id":"e2"}`), secret, false},
		{"empty", "", body, secret, false},
		{"two t", sig + ",t=1", body, secret, false},
		{"no secret configured", sig, body, nil, false},
		{"short v1", "t=1,v1=abcd", body, secret, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyPayment(tc.header, tc.body, tc.secret, now, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Fatalf("VerifyPayment() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !IsCode(err, EBadSignature) {
				t.Errorf("VerifyPayment() code = %s, want %s", ErrorCode(err), EBadSignature)
			}
		})
	}
}

// CheckPaymentHeader refuses, without the body, every header that
// VerifyPayment would refuse whatever the body, and lets through every
// header whose only fault could be the body.
func TestCheckPaymentHeader(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
	ts := strconv.FormatInt(now.Unix(), 10)
	v1 := "v1=" + strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		header string
		secret []byte
		ok     bool
	}{
		{"well-formed (any signature)", "t=" + ts + "," + v1, secret, true},
		{"rotation: two v1", "t=" + ts + "," + v1 + ",v1=" + strings.Repeat("00", 32), secret, true},
		{"missing", "", secret, false},
		{"no secret configured", "t=" + ts + "," + v1, nil, false},
		{"garbage", "garbage", secret, false},
		{"no v1", "t=" + ts, secret, false},
		{"no t", v1, secret, false},
		{"t not digits", "t=soon," + v1, secret, false},
		{"two t", "t=" + ts + ",t=" + ts + "," + v1, secret, false},
		{"v1 not hex", "t=" + ts + ",v1=" + strings.Repeat("zz", 32), secret, false},
		{"v1 of 63 hex digits", "t=" + ts + ",v1=" + strings.Repeat("a", 63), secret, false},
		{"v1 of 66 hex digits", "t=" + ts + ",v1=" + strings.Repeat("a", 66), secret, false},
		{"t 5m1s old", "t=" + strconv.FormatInt(now.Unix()-301, 10) + "," + v1, secret, false},
		{"t 5m1s ahead", "t=" + strconv.FormatInt(now.Unix()+301, 10) + "," + v1, secret, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPaymentHeader(tc.header, tc.secret, now, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckPaymentHeader(%q) = %v, want ok=%v", tc.header, err, tc.ok)
			}
			if err != nil && !IsCode(err, EBadSignature) {
				t.Errorf("CheckPaymentHeader() code = %s, want %s", ErrorCode(err), EBadSignature)
			}
			if verr := VerifyPayment(tc.header, []byte("{}"), tc.secret, now, 5*time.Minute); !tc.ok && verr == nil {
				t.Errorf("VerifyPayment accepts a header CheckPaymentHeader refuses")
			}
		})
	}
}

func TestEffectivePaidAt(t *testing.T) {
	created := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
	now := created.Add(10 * time.Minute)
	o := Order{CreatedAt: created}
	tests := []struct {
		name   string
		paidAt time.Time
		want   time.Time
	}{
		{"as reported", created.Add(time.Minute), created.Add(time.Minute)},
		{"missing: now", time.Time{}, now},
		{"in the future: now", now.Add(time.Hour), now},
		{"before the order: its creation", created.Add(-time.Hour), created},
	}
	for _, tc := range tests {
		if got := (Payment{PaidAt: tc.paidAt}).EffectivePaidAt(o, now); !got.Equal(tc.want) {
			t.Errorf("%s: EffectivePaidAt() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOrderStatusAt(t *testing.T) {
	created := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
	o := NewOrder("V", "alice", Product{Code: "monthly", PriceFen: 1990, Days: 31}, created, 30*time.Minute)
	if got := o.StatusAt(created.Add(29 * time.Minute)); got != OrderPending {
		t.Errorf("StatusAt(+29m) = %s, want pending", got)
	}
	if got := o.StatusAt(created.Add(30 * time.Minute)); got != OrderCancelled {
		t.Errorf("StatusAt(+30m) = %s, want cancelled", got)
	}
	o.Status = OrderPaid
	if got := o.StatusAt(created.Add(time.Hour)); got != OrderPaid {
		t.Errorf("paid StatusAt(+1h) = %s, want paid", got)
	}
}
