package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Connection settings that mattn/go-sqlite3's DSN cannot carry are applied
// by a ConnectHook, on every connection a pool opens. Each distinct set of
// PRAGMAs is registered once as its own database/sql driver name.
var (
	driversMu sync.Mutex
	drivers   = map[string]string{} // PRAGMA list -> driver name
)

// sqliteDriver returns the name of a driver that runs pragmas on each new
// connection.
func sqliteDriver(pragmas []string) string {
	key := fmt.Sprint(pragmas)
	driversMu.Lock()
	defer driversMu.Unlock()
	if name, ok := drivers[key]; ok {
		return name
	}
	name := fmt.Sprintf("sqlite3-entitlements-%d", len(drivers))
	sql.Register(name, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, p := range pragmas {
			if _, err := c.Exec(p, nil); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	}})
	drivers[key] = name
	return name
}

// defaultWALLimit is the WAL size the writer truncates the file back to
// when it restarts it. The checkpointer holds writers off for a pass when
// the WAL has grown past a quarter of it (see checkpointer), so under a
// steady stream of writes the WAL restarts before it reaches the limit
// and the file is reused rather than truncated and grown again (growing
// it costs the kernel a block allocation and zeroing per page).
const defaultWALLimit = 256 << 20

// writerPragmas tune the one writer connection:
//   - a page cache of cacheMiB: a write touches index pages spread over
//     the whole file (a notice per vehicle, a period per payment), and
//     with SQLite's default 2 MiB each one is read again from the OS and
//     dirty pages spill to the WAL in the middle of a transaction;
//   - no automatic checkpoint: SQLite would run it inside the commit that
//     crosses 1 000 WAL pages, and the writer (every API write queued
//     behind it) would wait for the copy back and its fsync. The
//     checkpointer does it on its own connection instead.
//
// Where its statement journals go is set per transaction (see
// writer.journalsInMemory).
func writerPragmas(cacheMiB int, walLimit int64) []string {
	return []string{
		fmt.Sprintf("PRAGMA cache_size = -%d", cacheMiB*1024),
		"PRAGMA wal_autocheckpoint = 0",
		// The writer restarts the WAL from its beginning after a complete
		// checkpoint, and truncates the file to this size then.
		fmt.Sprintf("PRAGMA journal_size_limit = %d", walLimit),
	}
}

// checkpointer copies the WAL back into the database file in the
// background, on its own connection, every interval while the store is
// open.
//
// A pass is PASSIVE: it never blocks the writer or readers, and it copies
// every frame no reader still needs. That alone does not bound the WAL.
// SQLite writes the WAL from its beginning again only when a write
// transaction begins while every frame has been copied. Under a steady
// stream of writes (payments, a usage feed, a job) a commit always lands
// between the end of a pass and the next transaction, so the file grows
// for as long as the stream lasts (TestWALStaysBoundedUnderSteadyWrites
// shows it without the held pass). Every frame appended past the end of the file
// costs the kernel a block allocation and zeroing, and the WAL index
// that every page read searches grows too.
//
// So when the WAL has grown past a quarter of its size limit, the
// checkpointer takes the store's write slot, which keeps new write
// transactions from starting, and runs a second pass. That pass copies
// only what was committed during the first one. The next write
// transaction then restarts the WAL, and the writer truncates the file
// to the limit (journal_size_limit) if a burst made it larger.
//
// Holding writers off costs them one pass: the copy of what was committed
// during the first pass, and two fsyncs (CheckpointStats reports how
// often and how long; docs/storage.md). A reader
// still on an old snapshot keeps a pass from copying everything; writers
// are not held then (it would not help), and the WAL grows until that
// reader ends.
type checkpointer struct {
	conn     *sql.DB
	slot     chan struct{} // the store's writeSlot
	limit    int64         // WAL bytes above which a pass holds writers off: a quarter of journal_size_limit
	frame    int64         // bytes of one WAL frame: a page and its 24-byte header
	frames   atomic.Int64  // frames in the WAL at the last pass
	held     atomic.Int64  // passes run with writers held off
	heldNs   atomic.Int64  // nanoseconds writers were held off, in all
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startCheckpointer(dsn string, interval time.Duration, slot chan struct{}, limit int64) (*checkpointer, error) {
	conn, err := sql.Open(sqliteDriver([]string{fmt.Sprintf("PRAGMA journal_size_limit = %d", limit)}), dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	conn.SetMaxOpenConns(1)
	var page int64
	if err := conn.QueryRow("PRAGMA page_size").Scan(&page); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open sqlite checkpointer: page size: %w", err)
	}
	c := &checkpointer{conn: conn, slot: slot, limit: limit / 4, frame: page + 24, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(interval)
	return c, nil
}

func (c *checkpointer) run(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return // the last connection to close checkpoints and removes the WAL
		case <-t.C:
			c.pass()
		}
	}
}

// pass runs one PASSIVE checkpoint and, when the WAL has grown past the
// limit and that pass copied every frame it saw, a second one with writers
// held off. A pass that left frames behind was kept from them by a reader
// on an old snapshot (a long export, say): holding writers off could not
// let the WAL restart until that reader ends, so they are not held.
func (c *checkpointer) pass() {
	frames, copied, ok := c.checkpoint()
	if ok {
		c.frames.Store(frames)
	}
	if !ok || frames*c.frame <= c.limit || copied < frames {
		return
	}
	select {
	case c.slot <- struct{}{}:
	case <-c.stop:
		return
	}
	start := time.Now()
	c.checkpoint()
	<-c.slot
	c.held.Add(1)
	c.heldNs.Add(int64(time.Since(start)))
}

// checkpoint runs one PASSIVE checkpoint and returns the number of frames
// in the WAL when it started and how many of them are copied. A failure
// (SQLITE_BUSY while another checkpoint runs) is left for the next pass:
// the WAL only grows meanwhile.
func (c *checkpointer) checkpoint() (frames, copied int64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy int64
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return 0, 0, false
	}
	return frames, copied, busy == 0
}

// CheckpointStats describes the SQLite WAL and its checkpointer, for
// monitoring. It is zero on PostgreSQL and for an in-memory database.
type CheckpointStats struct {
	WALFrames  int64         // frames in the WAL at the last checkpoint pass
	HeldPasses int64         // passes that held writers off so that the WAL could restart
	Held       time.Duration // how long writers were held off by them, in all
}

// CheckpointStats returns the checkpointer's figures so far.
func (db *DB) CheckpointStats() CheckpointStats {
	c := db.ckpt
	if c == nil {
		return CheckpointStats{}
	}
	return CheckpointStats{WALFrames: c.frames.Load(), HeldPasses: c.held.Load(), Held: time.Duration(c.heldNs.Load())}
}

// Close stops the checkpointer. It may be called more than once.
func (c *checkpointer) Close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.conn.Close()
}

// Checkpoint copies the whole WAL back into the SQLite database file and
// truncates the WAL, holding writers off meanwhile, for tools that time
// work from a checkpointed file (the benchmark's jobs phase). It does
// nothing on PostgreSQL and for an in-memory database.
func (db *DB) Checkpoint(ctx context.Context) error {
	c := db.ckpt
	if c == nil {
		return nil
	}
	select {
	case c.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.slot }()
	var busy, frames, copied int64
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint: a reader kept %d of %d WAL frames from being copied", frames-copied, frames)
	}
	return nil
}
