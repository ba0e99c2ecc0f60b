package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache is the store's one statement cache: statements prepared once
// on a pool (the writer's, or the readers'), by a short key. Every
// statement the store sends by hand goes through one: SQLite compiles a
// statement in about as long as a payment's writes take to run, and the
// bulk statements of usage ingest hold thousands of variables.
//
// A statement is prepared on the pool, not in a transaction: database/sql
// binds a statement prepared in a transaction to it, and prepares it again
// in every later one, while Tx.Stmt reuses a pool's statement on every
// connection where it was prepared once. A statement first used inside a
// transaction is prepared in it and remembered (pending), and promote
// prepares it on the pool once that transaction has ended. The SQLite
// writer's statements do not come from a stmtCache: they are prepared on
// the connection it holds (heldConn). The set of keys is fixed (see
// chunkSizes), so the cache is bounded.
type stmtCache struct {
	pool    *sql.DB
	dialect string     // statements are rebound to it
	mu      sync.Mutex // protects the following fields
	stmts   map[string]*sql.Stmt
	pending map[string]func() string
}

// statement is a query to prepare under a key; query builds its text,
// which is only needed when the statement is not prepared yet.
type statement struct {
	key   string
	query func() string
}

func newStmtCache(pool *sql.DB, dialect string) *stmtCache {
	return &stmtCache{pool: pool, dialect: dialect, stmts: map[string]*sql.Stmt{}}
}

// text is st's SQL in the dialect's placeholders.
func (c *stmtCache) text(st statement) string { return rebind(c.dialect, st.query()) }

func (c *stmtCache) get(key string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[key]
}

// onPool returns st prepared on the pool, preparing it the first time.
// The caller must not hold a transaction of a pool with one connection.
func (c *stmtCache) onPool(ctx context.Context, st statement) (*sql.Stmt, error) {
	if s := c.get(st.key); s != nil {
		return s, nil
	}
	s, err := c.pool.PrepareContext(ctx, c.text(st))
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", st.key, err)
	}
	return c.keep(st.key, s), nil
}

// keep stores s under key unless another caller prepared it first, and
// returns the statement kept.
func (c *stmtCache) keep(key string, s *sql.Stmt) *sql.Stmt {
	c.mu.Lock()
	prev := c.stmts[key]
	if prev == nil {
		c.stmts[key] = s
	}
	c.mu.Unlock()
	if prev != nil {
		// Closed after the lock is released: closing may wait for the
		// connections s was prepared on, and a transaction holding one
		// looks statements up under the lock.
		s.Close()
		return prev
	}
	return s
}

// inTx returns st for use in t: the pool's statement bound to t, or one
// prepared in t (own), which promote prepares on the pool afterwards.
func (c *stmtCache) inTx(ctx context.Context, t *sql.Tx, st statement) (_ *sql.Stmt, own bool, err error) {
	c.mu.Lock()
	s := c.stmts[st.key]
	if s == nil {
		if c.pending == nil {
			c.pending = map[string]func() string{}
		}
		c.pending[st.key] = st.query
	}
	c.mu.Unlock()
	if s != nil {
		return t.StmtContext(ctx, s), false, nil
	}
	if s, err = t.PrepareContext(ctx, c.text(st)); err != nil {
		return nil, false, fmt.Errorf("prepare %s: %w", st.key, err)
	}
	return s, true, nil
}

// promote prepares on the pool the statements first used in a
// transaction. The caller holds no transaction of the pool. A statement
// that fails to prepare (a table a later migration creates) stays
// unprepared until it is used again.
func (c *stmtCache) promote(ctx context.Context) {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for key, query := range pending {
		if s, err := c.pool.PrepareContext(ctx, rebind(c.dialect, query())); err == nil {
			c.keep(key, s)
		}
	}
}
