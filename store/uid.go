package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNoUID is returned by AssignUID when every uid of the range is taken.
var ErrNoUID = errors.New("no free uid in the range")

// AssignUID returns the uid of sandbox id, allocating the lowest free one of [first, last]
// when it has none (issue 12). A uid, once given, stays with its id through delete and
// re-create, so a kept workspace finds its owner again; ReleaseUID (purge) frees it. An id
// that already holds a uid outside the range keeps it: the caller decides what to do.
func (db *DB) AssignUID(ctx context.Context, id string, first, last int) (int, error) {
	if first <= 0 || last < first {
		return 0, fmt.Errorf("uid range %d-%d is empty", first, last)
	}
	var uid int
	err := db.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "SELECT uid FROM sandbox_uids WHERE sandbox_id = ?", id).Scan(&uid)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read uid: %w", err)
		}
		// The lowest free uid: first itself, or the smallest taken one whose successor
		// is free. Both walk the uid index.
		var free sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT CASE
			WHEN NOT EXISTS (SELECT 1 FROM sandbox_uids WHERE uid = ?1) THEN ?1
			ELSE (SELECT min(u.uid) + 1 FROM sandbox_uids u
				WHERE u.uid >= ?1 AND u.uid < ?2
				AND NOT EXISTS (SELECT 1 FROM sandbox_uids v WHERE v.uid = u.uid + 1))
			END`, first, last).Scan(&free)
		if err != nil {
			return fmt.Errorf("find a free uid: %w", err)
		}
		if !free.Valid {
			return ErrNoUID
		}
		uid = int(free.Int64)
		if _, err := tx.ExecContext(ctx, "INSERT INTO sandbox_uids (sandbox_id, uid) VALUES (?, ?)", id, uid); err != nil {
			return fmt.Errorf("record uid: %w", err)
		}
		return nil
	})
	return uid, err
}

// ReleaseUID frees the uid of sandbox id, if it has one.
func (db *DB) ReleaseUID(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM sandbox_uids WHERE sandbox_id = ?", id)
		return err
	})
}

// ReassignUID replaces the uid of sandbox id with a new one from [first, last], for an id
// whose stored uid lies outside the range the operator configures now.
func (db *DB) ReassignUID(ctx context.Context, id string, first, last int) (int, error) {
	if err := db.ReleaseUID(ctx, id); err != nil {
		return 0, err
	}
	return db.AssignUID(ctx, id, first, last)
}
