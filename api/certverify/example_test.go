package certverify_test

import (
	"encoding/json"
	"fmt"
	"time"

	"entitlements/api"
	"entitlements/api/certverify"
	"entitlements/billing"
)

// issue plays the service: a car activated on 2025-06-18 (trial until
// 2026-06-18 00:00 Shanghai time) with a 31-day package bought after it,
// certified on 2026-06-15 at noon. It returns the JWKS and the certificate
// as the car downloads them.
func issue() (jwks []byte, token string) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	pemKey, _ := api.GenerateSigningKey()
	key, _ := api.ParseSigningKey(pemKey)
	ring, _ := api.NewKeyring(key)
	vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000900"))
	trial := billing.TrialTerms{Months: 12, DataBytesPerMonth: 15 << 30}.TrialPeriod(vin, time.Date(2025, 6, 18, 9, 0, 0, 0, loc), loc)
	pkg := billing.Period{Source: billing.SourceOrder, DataBytesPerMonth: 15 << 30, Seq: 1,
		StartsAt: trial.EndsAt, EndsAt: billing.PaidEnd(trial.EndsAt, 31, loc)}
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, loc)
	snap := billing.Snapshot{Vehicle: billing.Vehicle{VIN: vin}, Timeline: billing.NewTimeline([]billing.Period{trial, pkg})}
	catalog := billing.Catalog{Features: billing.Features{Basic: []string{"navigation"}, Premium: []string{"karaoke"}}}
	cert := billing.IssueCertificate(snap, catalog, billing.CertificateTerms{TTL: 7 * 24 * time.Hour, Grace: 24 * time.Hour}, now, loc)
	payload, _ := json.Marshal(certverify.ClaimsOf(cert, "entitlements", loc))
	token, _ = ring.Sign(payload)
	jwks, _, _ = ring.JWKS(now)
	return jwks, token
}

// The head unit keeps the JWKS and its certificate from when it was last
// online, and decides features from them with its own clock (GNSS time
// when it has a fix).
func Example() {
	jwks, token := issue()
	vin := billing.FixCheckDigit("LSVAX4E10P2000900")
	loc, _ := time.LoadLocation("Asia/Shanghai")
	carClock := time.Date(2026, 6, 20, 21, 30, 0, 0, loc) // in a tunnel, five days later

	v, err := certverify.NewVerifier(jwks, "entitlements")
	if err != nil {
		fmt.Println(err)
		return
	}
	cert, err := v.Verify(token, vin, carClock, 0) // 0: the highest epoch seen online
	if err != nil {
		fmt.Println("no valid certificate:", err)
		return
	}
	for _, f := range []struct{ feature, conn string }{
		{"karaoke", "cellular"}, {"karaoke", "hotspot"}, {"navigation", "cellular"},
	} {
		d, err := cert.Decide(f.feature, f.conn, carClock)
		fmt.Println(f.feature, f.conn, d.Allowed, d.Reason, err)
	}
	_, err = cert.Decide("karaoke", "cellular", cert.Expires())
	fmt.Println("at exp:", err)
	// Output:
	// karaoke cellular true covered <nil>
	// karaoke hotspot true external_network <nil>
	// navigation cellular true basic_feature <nil>
	// at exp: certificate has expired
}
