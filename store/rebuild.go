package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// SQLite changes a column's CHECK constraint only by rebuilding the table: create the new
// table, copy the rows, drop the old one, rename the new one into its place. The rebuild
// here works from the table's CREATE statement as the database holds it, not from one
// written out in a migration: another migration numbered before this one (several land
// from parallel branches) may have added columns, indexes or triggers, and a rebuild with
// a fixed column list would silently drop them.
//
// The order matters. Renaming the OLD table away first (the tempting way) would, with
// foreign keys on or legacy_alter_table off, repoint every REFERENCES to the old name, and
// dropping it would then cascade or leave the children pointing at nothing. Creating the
// new table under a scratch name and renaming it last changes no reference: the children
// name "sandboxes" before and after. The caller runs this with foreign keys off
// (applyMigration) and checks them before committing.

// allowPausedStatus lets sandboxes.status be 'paused' (issue 14: tiered sleep), which
// migration 0001's CHECK refuses.
func allowPausedStatus(ctx context.Context, tx *sql.Tx) error {
	return rebuildTable(ctx, tx, "sandboxes", func(create string) (string, error) {
		const before = `CHECK (status IN ('creating','running','stopping','stopped','error'))`
		const after = `CHECK (status IN ('creating','running','paused','stopping','stopped','error'))`
		if strings.Count(create, before) != 1 {
			return "", errors.New("sandboxes.status has not the CHECK migration 0001 made; refusing to guess")
		}
		return strings.Replace(create, before, after, 1), nil
	})
}

// rebuildTable replaces table by one made with edit(its CREATE statement), keeping its rows,
// its indexes and its triggers. Run it in a transaction with foreign keys off.
func rebuildTable(ctx context.Context, tx *sql.Tx, table string, edit func(create string) (string, error)) error {
	var create string
	err := tx.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&create)
	if err != nil {
		return fmt.Errorf("read the schema of %s: %w", table, err)
	}
	edited, err := edit(create)
	if err != nil {
		return err
	}
	head := regexp.MustCompile(`^CREATE TABLE\s+(?:"` + regexp.QuoteMeta(table) + `"|` + regexp.QuoteMeta(table) + `)\s*\(`)
	loc := head.FindStringIndex(edited)
	if loc == nil {
		return fmt.Errorf("the schema of %s does not begin with CREATE TABLE %s (", table, table)
	}
	scratch := table + "_rebuilt"
	edited = "CREATE TABLE " + scratch + " (" + edited[loc[1]:]

	// Indexes and triggers go with the dropped table; their statements make them again.
	// (Automatic indexes of PRIMARY KEY and UNIQUE have no statement and come back with
	// the table.)
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_master
		WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name`, table)
	if err != nil {
		return fmt.Errorf("read the indexes of %s: %w", table, err)
	}
	var again []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		again = append(again, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	steps := []string{
		edited,
		// Same statement, same column order: SELECT * copies every column.
		"INSERT INTO " + scratch + " SELECT * FROM " + table,
		"DROP TABLE " + table,
		"ALTER TABLE " + scratch + " RENAME TO " + table,
	}
	for _, s := range append(steps, again...) {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("rebuild %s: %w", table, err)
		}
	}
	return nil
}

// foreignKeyCheck fails when any row references a row that does not exist.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign key check: %w", err)
		}
		return fmt.Errorf("foreign key check: a row of %s references a missing row of %s", table, parent)
	}
	return rows.Err()
}
