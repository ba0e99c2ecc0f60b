package store

import (
	"context"
	"slices"
	"time"

	"entitlements/billing"
)

// MigrateOnly applies the given migrations, for tests that start from a
// database as an older release left it.
func (db *DB) MigrateOnly(ctx context.Context, versions ...int) ([]int, error) {
	return db.migrateWhere(ctx, func(v int) bool { return slices.Contains(versions, v) })
}

// HoldJobLock takes job's lock in a write transaction that stays open
// until release is called; release returns the transaction's error.
func (db *DB) HoldJobLock(ctx context.Context, job string) (release func() error) {
	held, done, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- db.jobWrite(ctx, job, writeSingle, func(*Tx) error {
			close(held)
			<-done
			return nil
		})
	}()
	select {
	case <-held:
		return func() error { close(done); return <-result }
	case err := <-result:
		return func() error { return err }
	}
}

// WriterPragma reads an integer PRAGMA on the writer's connection.
func (db *DB) WriterPragma(name string) (int64, error) {
	return db.writerPragma(context.Background(), name)
}

// ExecInWrite runs the statement q in a write transaction.
func (db *DB) ExecInWrite(ctx context.Context, q string) error {
	return db.write(ctx, nil, func(tx *Tx) error { return tx.raw(q) })
}

// WriteAudited runs a write that records e and then returns fail.
func (db *DB) WriteAudited(ctx context.Context, e billing.AuditEntry, fail error) error {
	return db.write(ctx, nil, func(tx *Tx) error {
		tx.audit(e)
		return fail
	})
}

// ListenerApp is the snapshot listener connection's application_name.
const ListenerApp = listenerApp

// SetListenerBackoff sets how long the snapshot listener waits before it
// reconnects after losing its connection.
func (db *DB) SetListenerBackoff(d time.Duration) { db.listen.backoff.Store(int64(d)) }

// SetListenerPing sets how long the snapshot listener's connection may be
// silent before the listener pings it.
func (db *DB) SetListenerPing(d time.Duration) { db.listen.idle.Store(int64(d)) }

// SeedChunk is how many vehicles Seed writes a transaction.
const SeedChunk = seedChunk
