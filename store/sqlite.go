package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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

// writerPragmas tune the one writer connection:
//   - a page cache of cacheMiB: a write touches index pages spread over
//     the whole file (a notice per vehicle, a period per payment), and
//     with SQLite's default 2 MiB each one is read again from the OS and
//     dirty pages spill to the WAL in the middle of a transaction;
//   - no automatic checkpoint: SQLite would run it inside the commit that
//     crosses 1 000 WAL pages, and the writer (every API write queued
//     behind it) would wait for the copy back and its fsync. The
//     checkpointer does it on its own connection instead.
func writerPragmas(cacheMiB int) []string {
	return []string{
		fmt.Sprintf("PRAGMA cache_size = -%d", cacheMiB*1024),
		"PRAGMA wal_autocheckpoint = 0",
		// The writer restarts the WAL from its beginning after a complete
		// checkpoint, and truncates the file to this size then.
		"PRAGMA journal_size_limit = 67108864",
	}
}

// checkpointer copies the WAL back into the database file in the
// background, PASSIVE (it never blocks the writer or readers), on its own
// connection, every interval while the store is open. Frames a reader
// still needs are copied on a later pass; SQLite restarts the WAL from
// its beginning once a pass has copied everything, and the writer's
// journal_size_limit truncates the file then, so the WAL stays bounded by
// what is written between two passes.
type checkpointer struct {
	conn     *sql.DB
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startCheckpointer(dsn string, interval time.Duration) (*checkpointer, error) {
	conn, err := sql.Open(sqliteDriver([]string{"PRAGMA journal_size_limit = 67108864"}), dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	conn.SetMaxOpenConns(1)
	c := &checkpointer{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
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
			c.checkpoint("PASSIVE")
		}
	}
}

// checkpoint runs one pass. A failure (SQLITE_BUSY while another
// checkpoint runs) is left for the next pass: the WAL only grows meanwhile.
func (c *checkpointer) checkpoint(mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = c.conn.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")")
}

// Close stops the checkpointer. It may be called more than once.
func (c *checkpointer) Close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.conn.Close()
}
