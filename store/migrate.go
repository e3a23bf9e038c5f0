package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrate applies every numbered migration not yet recorded, each in its own transaction,
// so a crash leaves the schema at a whole step.
func migrate(ctx context.Context, db *sql.DB) error { return migrateBefore(ctx, db, "") }

// migrateBefore applies the migrations whose file names sort before stop ("" for all).
// Tests stop early to build a database as an older sandboxd left it.
func migrateBefore(ctx context.Context, db *sql.DB, stop string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := migrationVersion(base)
		if err != nil {
			return err
		}
		if other, dup := seen[version]; dup {
			return fmt.Errorf("migrations %s and %s share version %d", other, base, version)
		}
		seen[version] = base
		if stop != "" && base >= stop {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if err := applyMigration(ctx, db, version, base, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// migrationVersion is the number a migration is recorded under. "0005_x.sql" is 5. A
// letter after the number, "0005b_x.sql", marks a second migration of one issue written
// in parallel with the first (wave 2): it is recorded as 5*100 + 2 and applied after
// "0005_*" because names sort '_' before any letter. Versions of applied migrations never
// change, so plain numbers keep their old meaning.
func migrationVersion(base string) (int, error) {
	prefix, _, ok := strings.Cut(base, "_")
	digits := strings.TrimRight(prefix, "abcdefghijklmnopqrstuvwxyz")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || n < 1 || n >= 100 || len(prefix)-len(digits) > 1 {
		return 0, fmt.Errorf("migration %s: name must be a number from 1 to 99, at most one lowercase letter, then '_'", base)
	}
	if len(prefix) == len(digits) {
		return n, nil
	}
	return n*100 + int(prefix[len(prefix)-1]-'a'+1), nil
}

// rebuilds are the steps of migrations that SQL alone cannot write, by version. Each runs in
// its version's transaction before the version's SQL file, with foreign keys off.
func rebuilds() map[int]func(context.Context, *sql.Tx) error {
	return map[int]func(context.Context, *sql.Tx) error{
		6: allowPausedStatus, // issue 14
	}
}

func applyMigration(ctx context.Context, db *sql.DB, version int, name, body string) (err error) {
	// One connection for the pragma and the transaction: PRAGMA foreign_keys is per
	// connection, and a no-op inside a transaction.
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rebuild := rebuilds()[version]
	if rebuild != nil {
		// A table rebuild drops the old table. With foreign keys on, that drop deletes its
		// rows first and cascades to every table that references it: the ports, env,
		// labels and services of every sandbox would go. Off for the step, checked before
		// the commit, and on again after, whatever happened.
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
			return err
		}
		defer func() {
			if _, onErr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON"); onErr != nil {
				err = errors.Join(err, fmt.Errorf("foreign keys back on: %w", onErr))
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if rebuild != nil {
		if err := rebuild(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if rebuild != nil {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		version, name, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
