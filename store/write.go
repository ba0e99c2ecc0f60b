package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"entitlements/billing"

	sqlite3 "github.com/mattn/go-sqlite3"
	"gorm.io/gorm"
)

// The write path. Every change the store makes goes through DB.write (or
// writeAlone and writeBulk, the same path for large writes), and this
// file is the only one that reaches the writer pool or begins a transaction
// (TestOneWritePath checks it). write:
//
//   - takes the SQLite writer slot (one write transaction at a time, which
//     the checkpointer also takes to hold writers off), or on PostgreSQL
//     runs a transaction of its own;
//   - on SQLite, commits the writes waiting for the slot at the same
//     moment together (group commit, below);
//   - once the write's work has succeeded, records in its transaction a
//     timeline version of each vehicle whose timeline it changed
//     (history.go) and then its audit entries (audit.go);
//   - on PostgreSQL with the snapshot cache on, sends those VINs (below)
//     to every replica's listener with NOTIFY, last in the transaction, so
//     that only its commit delivers them (listen.go);
//   - after the transaction has ended, invalidates the cached snapshots of
//     the VINs it was given and of those the write touched (Tx.touch: the
//     helpers that write vehicles, periods and usage aggregates call it),
//     committed or not;
//   - on PostgreSQL, prepares on the pool the statements the transaction
//     was the first to use (stmtCache.promote); on SQLite the writer's
//     statements are prepared on its held connection once (heldConn).

// writer is the writer pool and what guards it.
type writer struct {
	writerPool *gorm.DB      // one connection on SQLite, which held keeps; the PostgreSQL pool
	held       *heldConn     // SQLite: the writer's connection, held for the store's life
	slot       chan struct{} // holds one token while an SQLite write transaction runs
	stmts      *stmtCache    // PostgreSQL: statements prepared on pool
	mu         sync.Mutex    // protects queue
	queue      []*groupReq   // SQLite writes waiting for a group commit
	// memJournals: the writer connection keeps temporary files, statement
	// journals included, in memory (PRAGMA temp_store); the slot guards it.
	memJournals bool
	groups      atomic.Int64 // SQLite write transactions run by runGroup
	grouped     atomic.Int64 // writes they ran
}

// WriteStats describes the SQLite group commit so far: how many write
// transactions the writer ran and how many writes they carried. Their
// ratio is the average group; near 1 under load, each write pays a
// commit (and its fsync) of its own.
type WriteStats struct {
	Transactions int64
	Writes       int64
}

// WriteStats returns the group commit's figures so far (zero on
// PostgreSQL, where each write is its own transaction).
func (db *DB) WriteStats() WriteStats {
	if db.wr == nil {
		return WriteStats{}
	}
	return WriteStats{Transactions: db.wr.groups.Load(), Writes: db.wr.grouped.Load()}
}

// journalsInMemory sets where the writer connection keeps its statement
// journals for the next transaction; the caller holds the slot. SQLite
// copies every existing page a statement changes inside a transaction to
// the statement's journal (and a savepoint's, for a write in a group),
// which past 64 KiB spills to a temporary file by default: two system
// calls a page, which every grouped payment and every notice of a job
// paid (BenchmarkApplyPayment; the harness's I/O system calls,
// docs/storage.md). Writes whose statements each change a few hundred
// pages at most (a payment, a job's batch of notices) keep them in
// memory. A writeBulk statement may change thousands of pages (a chunk
// of a usage batch) or a whole table (a migration), so it keeps the
// default file: in memory a usage batch's journals cost the service
// about 40 MB more at its peak, and the C allocator's churn of freeing
// and faulting them in again at every statement made ingest slower than
// with the file.
// A connection the pool opens anew starts at the default, so a stale
// memJournals can only leave journals in a file, never a bulk write's in
// memory.
func (w *writer) journalsInMemory(ctx context.Context, mem bool) error {
	if w.memJournals == mem {
		return nil
	}
	q := "PRAGMA temp_store = DEFAULT"
	if mem {
		q = "PRAGMA temp_store = MEMORY"
	}
	if _, err := w.held.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	w.memJournals = mem
	return nil
}

func newWriter(ctx context.Context, pool *gorm.DB, dialect string) (*writer, error) {
	s, err := pool.DB()
	if err != nil {
		return nil, err
	}
	w := &writer{writerPool: pool, slot: make(chan struct{}, 1), stmts: newStmtCache(s, dialect)}
	if dialect == SQLite {
		conn, err := s.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("open the sqlite writer's connection: %w", err)
		}
		w.held = &heldConn{conn: conn, stmts: map[string]*sql.Stmt{}}
	}
	return w, nil
}

// sqlDB is the writer pool's database/sql handle, for Close.
func (w *writer) sqlDB() (*sql.DB, error) { return w.writerPool.DB() }

// ping checks that the writer reaches the database: on SQLite its held
// connection (the pool has no other to give).
func (w *writer) ping(ctx context.Context) error {
	if w.held != nil {
		return w.held.conn.PingContext(ctx)
	}
	s, err := w.sqlDB()
	if err != nil {
		return err
	}
	return s.PingContext(ctx)
}

// close releases the held connection and its statements, so that the
// pool can close it. It waits for the write transaction in progress;
// writes after it fail with database/sql's ErrConnDone.
func (w *writer) close() error {
	if w.held == nil {
		return nil
	}
	return w.betweenWrites(func(*sql.Conn) error { return w.held.close() })
}

// betweenWrites runs fn on the SQLite writer's held connection while it
// holds the write slot, so between write transactions.
func (w *writer) betweenWrites(fn func(c *sql.Conn) error) error {
	w.slot <- struct{}{}
	defer func() { <-w.slot }()
	return fn(w.held.conn)
}

// close closes the statements and the connection, once; the caller holds
// the slot.
func (h *heldConn) close() error {
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	for _, s := range h.stmts {
		errs = append(errs, s.Close())
	}
	clear(h.stmts)
	errs = append(errs, h.conn.Close())
	return errors.Join(errs...)
}

// heldConn is the SQLite writer's one connection, taken from the writer
// pool when the store opens and kept until it closes. The write slot
// guards it: write transactions (BEGIN IMMEDIATE ... COMMIT, run by hand)
// and the PRAGMAs the store sets on it. Its statements are prepared on it
// once and kept (stmts, bounded like stmtCache's keys). A database/sql
// transaction would cost every statement a rebinding of the pool's
// prepared statement to it (Tx.StmtContext) and every query a goroutine
// watching the transaction's context; on the one writer's thread those
// were about a tenth of a payment's CPU.
type heldConn struct {
	conn   *sql.Conn
	stmts  map[string]*sql.Stmt
	closed bool // by writer.close
}

// prepared returns st prepared on the connection; the caller holds the
// slot.
func (h *heldConn) prepared(ctx context.Context, st statement) (*sql.Stmt, error) {
	if s := h.stmts[st.key]; s != nil {
		return s, nil
	}
	s, err := h.conn.PrepareContext(ctx, st.query())
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", st.key, err)
	}
	h.stmts[st.key] = s
	return s, nil
}

// transaction runs fn in a write transaction on the connection: BEGIN
// IMMEDIATE (the writer's lock at once, as the pool's _txlock did), and
// COMMIT when fn succeeds; otherwise, or when COMMIT fails, ROLLBACK if a
// transaction is still open (SQLite ends one itself after some errors).
// The caller holds the slot.
func (h *heldConn) transaction(ctx context.Context, fn func() error) (err error) {
	if _, err := h.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil && h.inTransaction() {
			if _, rerr := h.conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	if _, err := h.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inTransaction reports whether the connection is inside a transaction.
func (h *heldConn) inTransaction() bool {
	open := true
	h.conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok {
			open = !c.AutoCommit()
		}
		return nil
	})
	return open
}

// Tx is one write's transaction. Its statements run under ctx (on SQLite
// without cancellation: see uninterrupted).
type Tx struct {
	db   *DB
	sql  sqlConn   // what raw statements run on
	ptx  *sql.Tx   // PostgreSQL: the transaction, which stmt's statements are bound to
	held *heldConn // SQLite: the writer's connection, inside a transaction
	// group numbers the SQLite write transaction the write runs in (of
	// WriteStats.Transactions): writes of one group commit share it.
	group int64
	ctx   context.Context
	stmt  *stmtCache
	vins  []billing.VIN // snapshots to invalidate once the transaction has ended
	// local holds the statements this transaction prepared itself (not
	// yet on the pool), so that one used again in it is not prepared again.
	local map[string]*sql.Stmt

	actor     billing.Actor                // who the write's context says acts
	entries   []billing.AuditEntry         // audit entries to insert when fn succeeds (audit.go)
	versioned []*versionDraft              // what fn changed of timelines: a version is recorded when fn succeeds (history.go)
	guards    map[billing.VIN]versionGuard // version guards read with a timeline before any change (timelineForWrite)
}

// sqlConn is what a write's statements run on: a *sql.Tx, or the SQLite
// writer's *sql.Conn inside a transaction begun by hand.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// prepared returns st for this transaction.
func (tx *Tx) prepared(st statement) (*sql.Stmt, error) {
	if tx.held != nil {
		return tx.held.prepared(tx.ctx, st)
	}
	if s := tx.local[st.key]; s != nil {
		return s, nil
	}
	s, own, err := tx.stmt.inTx(tx.ctx, tx.ptx, st)
	if err == nil && own {
		if tx.local == nil {
			tx.local = map[string]*sql.Stmt{}
		}
		tx.local[st.key] = s
	}
	return s, err
}

// touch marks vins' snapshots to be invalidated after the transaction.
func (tx *Tx) touch(vins ...billing.VIN) { tx.vins = append(tx.vins, vins...) }

// query runs st in the transaction (a querier).
func (tx *Tx) query(st statement, args ...any) (*sql.Rows, error) {
	s, err := tx.prepared(st)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(tx.ctx, args...)
}

// exec runs st in the transaction.
func (tx *Tx) exec(st statement, args ...any) (sql.Result, error) {
	s, err := tx.prepared(st)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(tx.ctx, args...)
}

// update runs st and returns how many rows it changed.
func (tx *Tx) update(st statement, args ...any) (int64, error) {
	res, err := tx.exec(st, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs st and scans its first row into dest; found is false
// when there is none.
func (tx *Tx) queryRow(st statement, args []any, dest ...any) (found bool, err error) {
	rows, err := tx.query(st, args...)
	if err != nil {
		return false, err
	}
	err = eachRow(rows, func() error {
		if found {
			return nil
		}
		found = true
		return rows.Scan(dest...)
	})
	return found, err
}

// savepoint runs fn inside a savepoint named name. When fn fails, what it
// did is rolled back and the transaction goes on: fnErr is its error, and
// err is a failure of the savepoint statements themselves (which leaves
// the transaction unusable).
func (tx *Tx) savepoint(name string, fn func() error) (fnErr, err error) {
	if err := tx.raw(`SAVEPOINT ` + name); err != nil {
		return nil, err
	}
	if fnErr = fn(); fnErr != nil {
		if err := tx.raw(`ROLLBACK TO SAVEPOINT ` + name); err != nil {
			return fnErr, err
		}
	}
	return fnErr, tx.raw(`RELEASE SAVEPOINT ` + name)
}

// raw runs a statement without arguments that is not worth preparing.
func (tx *Tx) raw(q string) error {
	if _, err := tx.sql.ExecContext(tx.ctx, q); err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	return nil
}

// write runs fn in a write transaction and then invalidates the cached
// snapshots of vins and of the VINs fn touched. When fn succeeds, the
// audit entries it recorded (Tx.audit) are inserted in the same
// transaction, with the actor and request id ctx carries
// (billing.WithActor). fn must do its database
// work through tx alone; on SQLite it may run on another caller's
// goroutine, in a transaction shared with other writes (group commit), and
// an error or a panic in it undoes its own work only.
func (db *DB) write(ctx context.Context, vins []billing.VIN, fn func(tx *Tx) error) error {
	return db.run(ctx, vins, fn, writeGrouped)
}

// writeAlone is write for a job's batch: on SQLite it gets a
// transaction of its own rather than a savepoint in a group, since inside
// a savepoint SQLite first copies each page a write changes to its
// statement journal, which costs a large write more than a shared commit
// saves. Each of its statements must change at most a few hundred pages
// (a job's batch of notices), since its statement journals are kept in
// memory (writer.journalsInMemory).
func (db *DB) writeAlone(ctx context.Context, fn func(tx *Tx) error) error {
	return db.run(ctx, nil, fn, writeSingle)
}

// writeBulk is writeAlone for a write whose statements may each change
// thousands of pages (a chunk of a usage batch) or a whole table (a
// migration, a tool's statement, a seed chunk, pruning): its statement
// journals go to a temporary file (BenchmarkIngestUsage).
func (db *DB) writeBulk(ctx context.Context, fn func(tx *Tx) error) error {
	return db.run(ctx, nil, fn, writeUnbounded)
}

// writeMode is how a write runs on SQLite.
type writeMode int

const (
	writeGrouped   writeMode = iota // in a savepoint of a group commit, or alone when none waits with it
	writeSingle                     // in a transaction of its own
	writeUnbounded                  // in a transaction of its own, its statement journals in a file
)

func (db *DB) run(ctx context.Context, vins []billing.VIN, fn func(tx *Tx) error, mode writeMode) error {
	if db.dialect == SQLite {
		return db.groupWrite(ctx, vins, fn, mode)
	}
	actor, _ := billing.ActorFrom(ctx)
	tx := &Tx{db: db, ctx: ctx, stmt: db.wr.stmts, vins: slices.Clone(vins), actor: actor}
	err := db.wr.writerPool.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		if err := tx.bind(g); err != nil {
			return err
		}
		if err := runAudited(fn, tx); err != nil {
			return err
		}
		return tx.notifySnapshots()
	})
	db.wr.stmts.promote(context.WithoutCancel(ctx))
	db.forget(tx.vins...)
	return err
}

func (tx *Tx) bind(g *gorm.DB) error {
	t, err := sqlTx(g)
	if err != nil {
		return err
	}
	tx.sql, tx.ptx = t, t
	return nil
}

// sqlTx returns the *sql.Tx under a gorm transaction (gorm's own
// statement cache is off: see Open).
func sqlTx(g *gorm.DB) (*sql.Tx, error) {
	if t, ok := g.Statement.ConnPool.(*sql.Tx); ok {
		return t, nil
	}
	return nil, fmt.Errorf("not in a database/sql transaction (%T)", g.Statement.ConnPool)
}

// Group commit. On SQLite every write transaction queues for the one
// writer, and a payment's commit cost as much as all its statements
// (writing its pages to the WAL; BenchmarkApplyPayment). The writes that
// wait at the same moment therefore share one transaction: the caller
// that gets the write slot runs every queued write, each in a savepoint of
// its own, and commits them together. Each write still succeeds or fails
// on its own (a failing one is rolled back to its savepoint and gets its
// error), and none returns before the commit that makes it durable; if
// that commit fails, every write of the group gets the error and nothing
// of the group is applied. The writes of a group see each other as if run
// one after the other, which they are.

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
	fn    func(tx *Tx) error
	vins  []billing.VIN
	actor billing.Actor // of the caller's context
	mode  writeMode
	state atomic.Int32
	done  chan error // buffered: the runner never blocks on a caller
}

func (db *DB) groupWrite(ctx context.Context, vins []billing.VIN, fn func(tx *Tx) error, mode writeMode) error {
	w := db.wr
	actor, _ := billing.ActorFrom(ctx)
	req := &groupReq{fn: fn, vins: slices.Clone(vins), actor: actor, mode: mode, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, req)
	w.mu.Unlock()
	for {
		select {
		case err := <-req.done: // a group (perhaps run by this caller) included fn
			return err
		case w.slot <- struct{}{}:
			// The slot is ours: run the oldest queued writes. fn is among
			// them unless more than maxGroup were queued before it; then
			// this caller waits, or runs the next group, like any other.
			db.runGroup()
			<-w.slot
		case <-ctx.Done():
			if req.state.CompareAndSwap(groupQueued, groupCancelled) {
				return ctx.Err()
			}
			return <-req.done // taken already: its outcome is the truth
		}
	}
}

// runGroup runs the oldest queued writes in one transaction; the caller
// holds the slot. A write that must run alone forms a group by itself.
// A group of one runs without a savepoint: its transaction is its unit.
func (db *DB) runGroup() {
	w := db.wr
	w.mu.Lock()
	var batch []*groupReq
	taken := 0
	for _, r := range w.queue {
		if len(batch) == maxGroup || (len(batch) > 0 && r.mode != writeGrouped) {
			break
		}
		taken++
		if r.state.CompareAndSwap(groupQueued, groupTaken) {
			batch = append(batch, r)
			if r.mode != writeGrouped {
				break
			}
		}
	}
	w.queue = append(w.queue[:0], w.queue[taken:]...)
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	group := w.groups.Add(1)
	w.grouped.Add(int64(len(batch)))
	ctx := context.Background() // see uninterrupted
	errs := make([]error, len(batch))
	err := w.journalsInMemory(ctx, batch[0].mode != writeUnbounded)
	if err == nil {
		err = w.held.transaction(ctx, func() error {
			for i, r := range batch {
				tx := &Tx{db: db, ctx: ctx, sql: w.held.conn, held: w.held, group: group, vins: r.vins, actor: r.actor}
				if len(batch) == 1 {
					errs[i] = runSafely(r.fn, tx)
					r.vins = tx.vins
					return errs[i]
				}
				ferr, err := tx.savepoint("grp", func() error { return runSafely(r.fn, tx) })
				errs[i], r.vins = ferr, tx.vins
				if err != nil {
					return fmt.Errorf("group commit: %w", err)
				}
			}
			return nil
		})
	}
	for i, r := range batch {
		db.forget(r.vins...)
		if err != nil && errs[i] == nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

// runSafely runs fn, turning a panic into an error: it runs on another
// caller's goroutine, whose request must not die of it, and the rest of
// the group must still be answered.
func runSafely(fn func(tx *Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a grouped write: %v\n%s", p, debug.Stack())
		}
	}()
	return runAudited(fn, tx)
}

// runAudited runs fn and then records a timeline version of every
// vehicle whose timeline it changed (history.go) and inserts the audit
// entries it recorded; an fn that fails records nothing.
func runAudited(fn func(tx *Tx) error, tx *Tx) error {
	if err := fn(tx); err != nil {
		tx.entries, tx.versioned = nil, nil
		return err
	}
	if err := tx.flushVersions(); err != nil {
		tx.entries = nil
		return err
	}
	return tx.flushAudit()
}

// withWriterPragmas runs fn with the SQLite writer connection's PRAGMAs
// set as given (name to value), and sets them back to the values they had
// before, also when fn fails. Meant for bulk loads; a no-op wrapper on
// PostgreSQL.
func (db *DB) withWriterPragmas(ctx context.Context, set []pragma, fn func() error) (err error) {
	if db.dialect != SQLite || len(set) == 0 {
		return fn()
	}
	exec := func(q string) error {
		return db.wr.betweenWrites(func(c *sql.Conn) error {
			_, err := c.ExecContext(ctx, q)
			return err
		})
	}
	prev := make([]pragma, 0, len(set))
	defer func() {
		for _, p := range slices.Backward(prev) {
			if e := exec("PRAGMA " + p.name + " = " + strconv.FormatInt(p.value, 10)); e != nil {
				err = errors.Join(err, fmt.Errorf("restore PRAGMA %s: %w", p.name, e))
			}
		}
	}()
	for _, p := range set {
		old, err := db.writerPragma(ctx, p.name)
		if err != nil {
			return fmt.Errorf("read PRAGMA %s: %w", p.name, err)
		}
		if err := exec("PRAGMA " + p.name + " = " + strconv.FormatInt(p.value, 10)); err != nil {
			return fmt.Errorf("set PRAGMA %s: %w", p.name, err)
		}
		prev = append(prev, pragma{p.name, old})
	}
	return fn()
}

// writerPragma reads an integer PRAGMA of the SQLite writer's connection,
// between write transactions.
func (db *DB) writerPragma(ctx context.Context, name string) (int64, error) {
	var v int64
	err := db.wr.betweenWrites(func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	})
	return v, err
}

// pragma is an integer SQLite setting.
type pragma struct {
	name  string
	value int64
}
