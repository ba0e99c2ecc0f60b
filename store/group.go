package store

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// Group commit. On SQLite every write transaction queues for the one
// writer, and a payment's commit cost as much as all its statements
// (writing its pages to the WAL). groupTx lets the writes that wait at the
// same moment share one transaction: the caller that gets the write slot
// runs every queued write, each in a savepoint of its own, and commits
// them together. Each write still succeeds or fails on its own (a failing
// one is rolled back to its savepoint and gets its error), and none
// returns before the commit that makes it durable; if that commit fails,
// every write of the group gets the error and nothing of the group is
// applied. The writes of a group see each other as if run one after the
// other, which they are.

// maxGroup bounds the writes of one group, and so how long the writer is
// held at a time. The statements of a group do not run under the context
// of any one caller: SQLite rolls back the whole transaction when a
// statement in it is interrupted, so one caller going away must not
// cancel its neighbours' writes (see uninterrupted).
const maxGroup = 64

type groupState = int32

const (
	groupQueued groupState = iota
	groupTaken
	groupCancelled
)

type groupReq struct {
	fn    func(tx *gorm.DB) error
	state atomic.Int32
	done  chan error // buffered: the runner never blocks on a caller
}

type groupQueue struct {
	mu    sync.Mutex // protects queue
	queue []*groupReq
}

// groupTx runs fn in a write transaction, possibly shared with other
// groupTx calls (see above); fn must only use tx. On PostgreSQL, where
// transactions of different vehicles run in parallel, it is tx.
func (db *DB) groupTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if db.dialect != SQLite {
		return db.tx(ctx, fn)
	}
	req := &groupReq{fn: fn, done: make(chan error, 1)}
	db.group.mu.Lock()
	db.group.queue = append(db.group.queue, req)
	db.group.mu.Unlock()
	for {
		select {
		case err := <-req.done: // a group (perhaps run by this caller) included fn
			return err
		case db.writeSlot <- struct{}{}:
			// The slot is ours: run the oldest queued writes. fn is among
			// them unless more than maxGroup were queued before it; then
			// this caller waits, or runs the next group, like any other.
			db.runGroup()
			<-db.writeSlot
		case <-ctx.Done():
			if req.state.CompareAndSwap(groupQueued, groupCancelled) {
				return ctx.Err()
			}
			return <-req.done // taken already: its outcome is the truth
		}
	}
}

// runGroup runs the queued writes in one transaction; the caller holds
// writeSlot.
func (db *DB) runGroup() {
	db.group.mu.Lock()
	n := min(len(db.group.queue), maxGroup)
	batch := make([]*groupReq, 0, n)
	for _, r := range db.group.queue[:n] {
		if r.state.CompareAndSwap(groupQueued, groupTaken) {
			batch = append(batch, r)
		}
	}
	db.group.queue = append(db.group.queue[:0], db.group.queue[n:]...)
	db.group.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx := context.Background() // see uninterrupted
	errs := make([]error, len(batch))
	err := db.write.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := sqlTx(tx)
		if err != nil {
			return err
		}
		for i, r := range batch {
			if _, err := t.ExecContext(ctx, `SAVEPOINT grp`); err != nil {
				return fmt.Errorf("group commit: %w", err)
			}
			if errs[i] = runSafely(r.fn, tx); errs[i] != nil {
				if _, err := t.ExecContext(ctx, `ROLLBACK TO grp`); err != nil {
					return fmt.Errorf("group commit: %w", err)
				}
			}
			if _, err := t.ExecContext(ctx, `RELEASE grp`); err != nil {
				return fmt.Errorf("group commit: %w", err)
			}
		}
		return nil
	})
	db.promoteStatements()
	for i, r := range batch {
		if err != nil && errs[i] == nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

// runSafely runs fn, turning a panic into an error: it runs on another
// caller's goroutine, whose request must not die of it, and the rest of
// the group must still be answered.
func runSafely(fn func(tx *gorm.DB) error, tx *gorm.DB) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a grouped write: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(tx)
}
