package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBackupUnsupported is returned by Backup on PostgreSQL, whose server
// owns its files: pg_dump (or the server's own base backups and WAL
// archiving) backs it up.
var ErrBackupUnsupported = errors.New("backup writes SQLite databases only: back up PostgreSQL with pg_dump (or the server's base backups and WAL archiving)")

// Backup writes a copy of the SQLite database to path, a file that must
// not exist yet. The copy is one consistent snapshot: every write
// committed before Backup was called, and nothing half-applied. It runs
// VACUUM INTO on a connection of its own, a read transaction, so the service
// keeps serving and committing meanwhile; writes committed after the
// snapshot began are not in the copy. The copy is a single file (no WAL
// beside it), synced to disk before Backup returns, and opens with Open.
func (db *DB) Backup(ctx context.Context, path string) error {
	if db.dialect != SQLite {
		return ErrBackupUnsupported
	}
	abs, err := filepath.Abs(path) // never read as a file: URI by SQLite
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Creating the file exclusively refuses an existing one, without a
	// window in which another could appear; SQLite's VACUUM INTO accepts
	// an empty file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("backup: %s already exists: choose a new file", path)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(abs)
		}
	}()
	// A connection of its own: the reader pool's are query-only, which
	// refuses VACUUM INTO's writes to the copy.
	r, err := sql.Open("sqlite3", db.file)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer r.Close()
	if _, err := r.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	// Whatever sync SQLite did while writing the copy, make it and its
	// directory entry durable before saying it is done.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(abs)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("backup: sync directory of %s: %w", path, err)
		}
	}
	ok = true
	return nil
}
