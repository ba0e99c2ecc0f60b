package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// TestPayCommand pays an order through the real router with the signed
// notification the pay command builds from the configured secret.
func TestPayCommand(t *testing.T) {
	getenv := env(map[string]string{"ENTITLEMENTS_DATABASE_DSN": filepath.Join(t.TempDir(), "e.db")})
	cfg, err := LoadConfig("config.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, _, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := api.New(api.Options{Store: db, Catalog: cfg.Catalog(), Location: cfg.Location(),
		TokenSecret: []byte(cfg.Auth.TokenSecret), PaymentSecret: []byte(cfg.Payments.WebhookSecret),
		PaymentTolerance: cfg.Payments.Tolerance.D(), UnpaidTTL: cfg.Orders.UnpaidTTL.D()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	call := func(method, path string, role api.Role, sub, body string) map[string]any {
		t.Helper()
		tok, _ := api.MintToken([]byte(cfg.Auth.TokenSecret), role, sub, time.Hour, time.Now())
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Idempotency-Key", "k-"+path)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s = %d %v", method, path, res.StatusCode, out)
		}
		return out
	}
	vin := billing.FixCheckDigit("LSVAX4E10R1000001")
	call("POST", "/v1/vehicles/"+vin+"/activation", api.RoleOps, "ops",
		`{"activated_at":"`+time.Now().AddDate(-2, 0, 0).UTC().Format(time.RFC3339)+`","owner_id":"o1"}`)
	order := call("POST", "/v1/vehicles/"+vin+"/orders", api.RoleOwner, "o1", `{"product":"monthly"}`)["id"].(string)

	pay := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"pay", "--order", order, "--url", ts.URL}, args...), &out, &out, getenv)
		return out.String(), err
	}
	if _, err := pay("--amount", "1"); err == nil || !strings.Contains(err.Error(), "422") {
		t.Errorf("pay --amount 1 = %v, want the service's 422", err)
	}
	if out, err := pay("--status", "failed"); err != nil || !strings.Contains(out, `"status":"pending"`) {
		t.Errorf("pay --status failed = %v %s, want the order still pending", err, out)
	}
	if _, err := pay("--status", "refunded"); err == nil {
		t.Error("pay --status refunded = nil, want an error")
	}
	if out, err := pay(); err != nil || !strings.Contains(out, `"status":"paid"`) || !strings.Contains(out, `"amount_fen":1990`) {
		t.Errorf("pay = %v %s, want the order paid its amount", err, out)
	}
}
