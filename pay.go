package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

// pay signs a payment notification for an order with the configured
// payments.webhook_secret and posts it to the service, as the payment
// provider would. It is for development and support: in production the
// provider sends the notifications. It prints the service's answer and
// fails unless that is 200.
func pay(ctx context.Context, cfg *Config, a *cliArgs, stdout io.Writer) error {
	if a.order == "" {
		return fmt.Errorf("pay: --order is required")
	}
	if a.status != string(billing.PaymentSucceeded) && a.status != string(billing.PaymentFailed) {
		return fmt.Errorf("pay: --status must be succeeded or failed, got %q", a.status)
	}
	base := strings.TrimRight(a.url, "/")
	if base == "" {
		base = "http://" + cfg.HTTP.Addr
	}
	client := &http.Client{Timeout: 30 * time.Second}
	amount := a.amount
	if amount <= 0 {
		var err error
		if amount, err = orderAmount(ctx, client, cfg, base, a.order); err != nil {
			return err
		}
	}
	now := time.Now()
	body, err := json.Marshal(map[string]any{
		"event_id":       "evt_" + randomHex(8),
		"order_id":       a.order,
		"status":         a.status,
		"amount_fen":     amount,
		"currency":       "CNY",
		"paid_at":        now.UTC().Format(time.RFC3339),
		"transaction_id": "tx_" + randomHex(8),
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/payments/notifications", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Payment-Signature", billing.SignPayment([]byte(cfg.Payments.WebhookSecret), body, now))
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("pay: the service answered %d: %s", res.StatusCode, bytes.TrimSpace(answer))
	}
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(answer))
	return nil
}

// orderAmount reads the order's amount from the service with a
// short-lived billing token minted from the configured secret.
func orderAmount(ctx context.Context, client *http.Client, cfg *Config, base, order string) (int64, error) {
	tok, err := api.MintToken([]byte(cfg.Auth.TokenSecret), api.RoleBilling, "pay-command", time.Minute, time.Now())
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+order, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("pay: read the order: %w", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("pay: reading order %s answered %d: %s (pass --amount to skip the read)", order, res.StatusCode, bytes.TrimSpace(raw))
	}
	var o struct {
		AmountFen *int64 `json:"amount_fen"`
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.AmountFen == nil {
		return 0, fmt.Errorf("pay: order %s: no amount_fen in %s", order, raw)
	}
	return *o.AmountFen, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
