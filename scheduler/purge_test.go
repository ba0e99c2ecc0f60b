package scheduler_test

import (
	"context"
	"testing"
	"time"

	"entitlements/scheduler"
	"entitlements/store/storetest"
)

func TestPurgeKeysForgetsKeysAfterADay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		now := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
		for i, age := range []time.Duration{49 * time.Hour, 24*time.Hour + time.Second, 23 * time.Hour} {
			err := storetest.Exec(db, `INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, body, created_at) VALUES ('owner:alice', ?, 'h', 201, '{}', ?)`,
				string(rune('a'+i)), now.Add(-age))
			if err != nil {
				t.Fatal(err)
			}
		}
		for run := 0; run < 2; run++ { // a second run finds nothing more
			if err := (scheduler.PurgeKeys{Store: db}).Run(context.Background(), now); err != nil {
				t.Fatalf("Run() = %v", err)
			}
		}
		var left []string
		storetest.Query(db, &left, `SELECT idem_key FROM idempotency_keys ORDER BY idem_key`)
		if len(left) != 1 || left[0] != "c" {
			t.Errorf("keys left = %v, want [c] (the one younger than a day)", left)
		}
	})
}
