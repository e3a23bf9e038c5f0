// Package store owns sandboxd's SQLite database: the desired state of every sandbox,
// its ports, env, labels and services, tasks with their events, and the audit log.
//
// It is the only package that holds a *sql.DB. Writes go through one connection in
// IMMEDIATE transactions, so writers queue in Go instead of failing with SQLITE_BUSY;
// reads use a separate pool of read-only connections that WAL lets run beside the writer.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Errors returned by queries. Callers match them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
)

// DB is the database. It is safe for concurrent use.
type DB struct {
	// AuditMaxRows caps the audit log: the oldest lines past it are dropped (issue 13).
	// Zero means DefaultAuditMaxRows. Set it before the first append.
	AuditMaxRows int

	w *sql.DB // one connection: every write
	r *sql.DB // read-only pool

	path string
	file fileID  // of path once opened: CheckFile compares the path with it
	seal *Sealer // env and service env values at rest
}

// Option configures Open.
type Option func(*options)

type options struct{ sealer *Sealer }

// WithSealer seals secret values with s. Without it, Open uses the key in the file
// secret.key beside the database, creating it (mode 0600) when absent.
func WithSealer(s *Sealer) Option { return func(o *options) { o.sealer = s } }

// KeyFile is the name of the default secrets key file, beside the database.
const KeyFile = "secret.key"

// Open opens (creating when absent) the database at path and applies pending migrations.
// The database and its -wal and -shm files are readable by their owner only, deleted
// content is overwritten (secure_delete), and secret values are sealed (issue 12): any
// still stored in clear, or under a key that is no longer the current one, are sealed
// again with the current key before Open returns.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.sealer == nil {
		key, err := LoadOrCreateKey(filepath.Join(filepath.Dir(path), KeyFile))
		if err != nil {
			return nil, err
		}
		if o.sealer, err = NewSealer(key); err != nil {
			return nil, err
		}
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	q.Set("_secure_delete", "on")
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	db := &DB{w: w, path: path, seal: o.sealer}
	if err := db.reseal(ctx); err != nil {
		w.Close()
		return nil, err
	}
	// The -wal and -shm files exist now; SQLite made them with the database file's mode,
	// but a database from before issue 12 was 0644.
	if err := ownerOnly(path); err != nil {
		w.Close()
		return nil, err
	}
	q.Set("_txlock", "deferred")
	q.Set("_query_only", "1")
	r, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	// The migrations above opened the file, so this is the file the connections hold.
	id, err := statID(path)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	db.r, db.file = r, id
	return db, nil
}

// Sealer is the Sealer the store seals secret values with, for other files that hold
// them.
func (db *DB) Sealer() *Sealer { return db.seal }

// ownerOnly sets the database file and its -wal and -shm to mode 0600 where they exist.
func ownerOnly(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("database file mode: %w", err)
		}
	}
	return nil
}

// Checkpoint copies the write-ahead log into the database and truncates it to zero bytes,
// so deleted rows leave no copy behind in the -wal file (purge calls it). secure_delete
// has already zeroed them in the database's own pages.
func (db *DB) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpoint: a reader held the log; it is truncated at the next checkpoint")
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// Ping checks that the database answers a read.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// write runs fn in one IMMEDIATE transaction on the writer connection.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
