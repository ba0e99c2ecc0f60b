package store

import (
	"context"
	"fmt"
	"time"

	"entitlements/billing"
)

type idempotencyRow struct {
	Scope       string `gorm:"primaryKey"`
	IdemKey     string `gorm:"primaryKey"`
	RequestHash string
	Status      int
	Body        string
	CreatedAt   time.Time
}

func (idempotencyRow) TableName() string { return "idempotency_keys" }

// claimKey claims k inside tx, the transaction of the write it guards, so
// that the key and the write commit or roll back together: a request that
// fails leaves the key free for a retry. When the key was already used it
// returns the stored response (same request) or EIdempotencyKeyReused
// (another request). On PostgreSQL a concurrent claim of the same key
// waits for the first transaction and then sees its result.
func claimKey(tx *Tx, k billing.IdempotencyKey, now time.Time) (*billing.StoredResponse, error) {
	n, err := tx.update(claimKeyStmt, k.Scope, k.Key, k.RequestHash, tx.db.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n == 1 {
		return nil, nil
	}
	var got idempotencyRow
	found, err := tx.queryRow(findKeyStmt, []any{k.Scope, k.Key}, &got.RequestHash, &got.Status, &got.Body)
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if !found {
		return nil, billing.Errorf(billing.EIdempotencyInFlight, "a request with this Idempotency-Key is in progress; retry")
	}
	if got.RequestHash != k.RequestHash {
		return nil, billing.Errorf(billing.EIdempotencyKeyReused, "this Idempotency-Key was used for another request")
	}
	if got.Status == 0 {
		return nil, billing.Errorf(billing.EIdempotencyInFlight, "a request with this Idempotency-Key is in progress; retry")
	}
	return &billing.StoredResponse{Status: got.Status, Body: []byte(got.Body), Replayed: true}, nil
}

var (
	claimKeyStmt = statement{"idem/claim", func() string {
		return `INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, body, created_at)
			VALUES (?, ?, ?, 0, '', ?) ON CONFLICT DO NOTHING`
	}}
	findKeyStmt = statement{"idem/find", func() string {
		return `SELECT request_hash, status, body FROM idempotency_keys WHERE scope = ? AND idem_key = ?`
	}}
	storeResponseStmt = statement{"idem/store", func() string {
		return `UPDATE idempotency_keys SET status = ?, body = ? WHERE scope = ? AND idem_key = ?`
	}}
)

// storeResponse records the response of the request that claimed k.
func storeResponse[T any](tx *Tx, k billing.IdempotencyKey, v T, render billing.Render[T]) (billing.StoredResponse, error) {
	status, body, err := render(v)
	if err != nil {
		return billing.StoredResponse{}, err
	}
	if _, err := tx.exec(storeResponseStmt, status, string(body), k.Scope, k.Key); err != nil {
		return billing.StoredResponse{}, fmt.Errorf("store idempotent response: %w", err)
	}
	return billing.StoredResponse{Status: status, Body: body}, nil
}

// PurgeIdempotencyKeys deletes the keys claimed before cutoff and returns
// how many it deleted. Clients retry within minutes; a day (as Stripe
// keeps them) is plenty. Meant for a scheduler job.
func (db *DB) PurgeIdempotencyKeys(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := db.writeBulk(ctx, func(tx *Tx) error {
		var err error
		n, err = tx.update(purgeKeysStmt, db.timeArg(cutoff))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return int(n), nil
}

var purgeKeysStmt = statement{"idem/purge", func() string {
	return `DELETE FROM idempotency_keys WHERE created_at < ?`
}}
