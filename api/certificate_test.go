package api_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/api/certverify"
	"entitlements/billing"
	"entitlements/store/storetest"

	"github.com/getkin/kin-openapi/openapi3filter"
)

func init() {
	// A certificate is a compact JWS: text, checked against its pattern.
	openapi3filter.RegisterBodyDecoder("application/jwt", openapi3filter.PlainBodyDecoder)
}

const issuer = "entitlements-test"

// newSigningKey returns a fresh Ed25519 private key.
func newSigningKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	pemBytes, err := api.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := api.ParseSigningKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// withCertificates signs with key and publishes the other keys, with the
// terms of config.yaml and a cache of 1 000 certificates, and sells a 1 GiB package ("lite") besides the
// shipped ones, so that a switch-over changes the allowance.
func withCertificates(t testing.TB, key ed25519.PrivateKey, published ...api.PublishedKey) func(*api.Options) {
	ring, err := api.NewKeyring(key, published...)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *api.Options) {
		withPayments(o)
		withUsage(o)
		o.Catalog.Products = append(o.Catalog.Products,
			billing.Product{Code: "lite", Name: "Lite, 31 days", PriceFen: 990, Days: 31, DataBytesPerMonth: gib})
		o.Certificates = api.CertificateOptions{
			Keys: ring, Issuer: issuer, RenewAfter: 12 * time.Hour, CacheEntries: 1000,
			Terms: billing.CertificateTerms{TTL: 7 * 24 * time.Hour, Grace: 24 * time.Hour, Skew: 5 * time.Minute},
		}
	}
}

// eachCertificateBackend runs fn once per backend on a server that signs
// certificates.
func eachCertificateBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		fn(t, newHarness(t, dialect, withCertificates(t, newSigningKey(t))))
	})
}

// certificateOf fetches v's certificate as the car and fails unless 200.
func (h *harness) certificateOf(v string) (token, etag string) {
	h.t.Helper()
	res := h.get("/v1/vehicles/"+v+"/certificate", h.token(api.RoleVehicle, v))
	if res.Code != http.StatusOK {
		h.t.Fatalf("certificate %s = %d %s", v, res.Code, res.Body)
	}
	return string(res.Body), res.Header.Get("ETag")
}

// verifier builds a verifier from the served JWKS.
func (h *harness) verifier() *certverify.Verifier {
	h.t.Helper()
	res := h.get("/.well-known/jwks.json", "")
	if res.Code != http.StatusOK {
		h.t.Fatalf("jwks = %d %s", res.Code, res.Body)
	}
	v, err := certverify.NewVerifier(res.Body, issuer)
	if err != nil {
		h.t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// online asks the online feature check, as the car, at the harness clock;
// an unknown feature is reported as certverify.ErrUnknownFeature.
func (h *harness) online(v, feature, conn string) (certverify.Decision, error) {
	h.t.Helper()
	res := h.get("/v1/vehicles/"+v+"/features/"+feature+"?connection="+conn, h.token(api.RoleVehicle, v))
	switch {
	case res.Code == http.StatusNotFound && res.problem(h.t).Code == billing.EUnknownFeature:
		return certverify.Decision{}, certverify.ErrUnknownFeature
	case res.Code != http.StatusOK:
		h.t.Fatalf("feature %s = %d %s", feature, res.Code, res.Body)
	}
	var d certverify.Decision
	res.decode(h.t, &d)
	return d, nil
}

// TestOfflineCertificateAgreesWithOnlineCheck: for each case the car
// fetches its certificate and the JWKS; then, at instants across the
// certificate's validity (every 5 hours and the last second), the
// verifier and the online feature check give the same answer for every
// configured feature, an unknown one, and both connections.
func TestOfflineCertificateAgreesWithOnlineCheck(t *testing.T) {
	june15 := time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)
	cases := []struct {
		name  string
		issue time.Time
		setup func(h *harness, v string)
		// want checks the verifier's answers at a few instants (cellular).
		want map[time.Duration]billing.Reason
	}{
		{"trial", june15, func(h *harness, v string) {
			h.activate(v, "o", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		}, map[time.Duration]billing.Reason{0: billing.ReasonCovered}},
		{"stacked packages after the trial", june15, func(h *harness, v string) {
			h.activate(v, "o", time.Date(2025, 6, 17, 8, 0, 0, 0, shanghai)) // trial ends 06-17 00:00
			h.pay(h.createOrder(v, "o", "monthly"))
			h.pay(h.createOrder(v, "o", "yearly"))
		}, map[time.Duration]billing.Reason{0: billing.ReasonCovered, 100 * time.Hour: billing.ReasonCovered}},
		{"scheduled package with a smaller allowance switches over throttled", june15, func(h *harness, v string) {
			h.activate(v, "o", time.Date(2025, 6, 18, 8, 0, 0, 0, shanghai)) // trial ends 06-18 00:00
			h.pay(h.createOrder(v, "o", "lite"))                             // 1 GiB from 06-18
			h.postUsage([]map[string]any{rec("u-sched", v, "entertainment", 2*gib, time.Date(2026, 6, 10, 9, 0, 0, 0, shanghai))})
		}, map[time.Duration]billing.Reason{0: billing.ReasonCovered, 60 * time.Hour: billing.ReasonQuotaExhausted}},
		{"lapsed", june15, func(h *harness, v string) {
			h.activate(v, "o", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		}, map[time.Duration]billing.Reason{0: billing.ReasonNotCovered}},
		{"package bought after the lapse ends within the validity", june15, func(h *harness, v string) {
			h.activate(v, "o", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
			h.clock.Set(time.Date(2026, 5, 18, 12, 0, 0, 0, shanghai))
			h.pay(h.createOrder(v, "o", "monthly")) // to 06-18 12:00
			h.clock.Set(june15)
		}, map[time.Duration]billing.Reason{0: billing.ReasonCovered, 73 * time.Hour: billing.ReasonNotCovered}},
		{"throttled, into a new cycle", time.Date(2026, 6, 28, 12, 0, 0, 0, shanghai), func(h *harness, v string) {
			h.activate(v, "o", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
			h.postUsage([]map[string]any{rec("u-thr", v, "entertainment", 16*gib, time.Date(2026, 6, 20, 9, 0, 0, 0, shanghai))})
		}, map[time.Duration]billing.Reason{0: billing.ReasonQuotaExhausted, 4 * 24 * time.Hour: billing.ReasonCovered}},
	}
	features := append(append([]string{}, testCatalog().Features.Basic...), testCatalog().Features.Premium...)
	features = append(features, "teleport")
	eachCertificateBackend(t, func(t *testing.T, h *harness) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h.t = t
				v := vin(fmt.Sprintf("LSVAX4E10P27%05d", i))
				h.clock.Set(tc.issue)
				tc.setup(h, v)
				h.clock.Set(tc.issue)
				token, _ := h.certificateOf(v)
				cert, err := h.verifier().Verify(token, v, tc.issue, 0)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				exp := cert.Expires()
				for off, want := range tc.want {
					if d, err := cert.Decide("video_streaming", "cellular", tc.issue.Add(off)); err != nil || d.Reason != want {
						t.Errorf("video_streaming at +%s = %+v, %v; want %s", off, d, err, want)
					}
				}
				var instants []time.Time
				for at := tc.issue; at.Before(exp); at = at.Add(5 * time.Hour) {
					instants = append(instants, at)
				}
				instants = append(instants, exp.Add(-time.Second))
				for _, at := range instants {
					h.clock.Set(at)
					for _, conn := range []string{"cellular", "hotspot"} {
						for _, f := range features {
							want, wantErr := h.online(v, f, conn)
							got, err := cert.Decide(f, conn, at)
							if got != want || !errors.Is(err, wantErr) {
								t.Errorf("%s %s at %s: offline %+v, %v; online %+v, %v", f, conn, at.Format(time.RFC3339), got, err, want, wantErr)
							}
						}
					}
				}
				if _, err := cert.Decide("navigation", "cellular", exp); !errors.Is(err, certverify.ErrExpired) {
					t.Errorf("Decide at exp: %v, want ErrExpired", err)
				}
			})
		}
	})
}
