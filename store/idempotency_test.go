package store_test

import (
	"context"
	"testing"
	"time"

	"entitlements/store/storetest"
)

func TestPurgeIdempotencyKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		now := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
		for i, age := range []time.Duration{48 * time.Hour, 25 * time.Hour, time.Hour} {
			err := storetest.Exec(db, `INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, body, created_at) VALUES ('owner:alice', ?, 'h', 201, '{}', ?)`,
				string(rune('a'+i)), now.Add(-age))
			if err != nil {
				t.Fatal(err)
			}
		}
		n, err := db.PurgeIdempotencyKeys(context.Background(), now.Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PurgeIdempotencyKeys() = %d, %v, want 2, nil", n, err)
		}
		var left int64
		storetest.Query(db, &left, `SELECT COUNT(*) FROM idempotency_keys`)
		if left != 1 {
			t.Errorf("keys left = %d, want 1", left)
		}
	})
}
