package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"gorm.io/gorm"
)

// stmtCache holds statements prepared on the writer's *sql.DB, for the
// bulk paths whose statements are large (multi-row INSERTs of thousands of
// variables) and costly to compile. Statements are named by a short key.
//
// gorm's PrepareStmt cache does not help inside transactions: a statement
// it first prepares in a transaction belongs to that transaction, and
// database/sql's Tx.Stmt prepares it again in every later transaction. A
// statement prepared on the *sql.DB instead is reused by Tx.Stmt on every
// connection where it was prepared once. The set of keys is fixed (see
// chunkSizes), so the cache is bounded.
type stmtCache struct {
	mu     sync.Mutex // protects the following fields
	stmts  map[string]*sql.Stmt
	groups map[string]bool
}

// statement is a query to prepare under a key; query builds its text,
// which is only needed when the statement is not prepared yet.
type statement struct {
	key   string
	query func() string
}

// prepareWrites prepares the group's statements on the writer pool once,
// for txStmt. It must run outside a transaction: on SQLite the writer pool
// has one connection, which a transaction holds. The cache's lock is not
// held while preparing, which waits for that connection: a transaction
// holding it looks statements up (txStmt) and must not wait for the lock.
func (db *DB) prepareWrites(ctx context.Context, group string, build func() []statement) error {
	c := &db.stmts
	c.mu.Lock()
	done := c.groups[group]
	c.mu.Unlock()
	if done {
		return nil
	}
	w, err := db.write.DB()
	if err != nil {
		return err
	}
	prepared := map[string]*sql.Stmt{}
	closeAll := func() {
		for _, s := range prepared {
			s.Close()
		}
	}
	for _, st := range build() {
		s, err := w.PrepareContext(ctx, st.query())
		if err != nil {
			closeAll()
			return fmt.Errorf("prepare %s: %w", st.key, err)
		}
		prepared[st.key] = s
	}
	c.mu.Lock()
	dup := c.groups[group] // prepared by another caller meanwhile
	if !dup {
		if c.stmts == nil {
			c.stmts, c.groups = map[string]*sql.Stmt{}, map[string]bool{}
		}
		for k, s := range prepared {
			c.stmts[k] = s
		}
		c.groups[group] = true
	}
	c.mu.Unlock()
	if dup {
		// Not under the lock: closing waits for the connections the
		// statements were prepared on, which transactions may hold
		// while they look statements up.
		closeAll()
	}
	return nil
}

func (c *stmtCache) get(key string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[key]
}

// sqlTx returns the *sql.Tx under a gorm transaction.
func sqlTx(tx *gorm.DB) (*sql.Tx, error) {
	switch p := tx.Statement.ConnPool.(type) {
	case *sql.Tx:
		return p, nil
	case *gorm.PreparedStmtTX:
		if t, ok := p.Tx.(*sql.Tx); ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("not in a database/sql transaction (%T)", tx.Statement.ConnPool)
}

// txStmt returns the statement st for use in tx: the one prepareWrites
// prepared under its key (compiled once per connection), or else one
// prepared in tx.
func (db *DB) txStmt(tx *gorm.DB, st statement) (*sql.Stmt, error) {
	t, err := sqlTx(tx)
	if err != nil {
		return nil, err
	}
	ctx := tx.Statement.Context
	if s := db.stmts.get(st.key); s != nil {
		return t.StmtContext(ctx, s), nil
	}
	return t.PrepareContext(ctx, st.query())
}

// txQuery runs st with args in tx through txStmt.
func (db *DB) txQuery(tx *gorm.DB, st statement, args ...any) (*sql.Rows, error) {
	s, err := db.txStmt(tx, st)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(tx.Statement.Context, args...)
}

// txExec runs st with args in tx through txStmt.
func (db *DB) txExec(tx *gorm.DB, st statement, args ...any) (sql.Result, error) {
	s, err := db.txStmt(tx, st)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(tx.Statement.Context, args...)
}
