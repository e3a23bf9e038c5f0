package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Issue 15: a sandbox's egress policy lives in sandbox_network, one row per sandbox (none
// for a sandbox created without one, whose Egress reads as "").

// insertNetwork records sb's policy in a create's transaction, when it has one.
func insertNetwork(ctx context.Context, tx *sql.Tx, sb *Sandbox) error {
	if sb.Egress == "" {
		return nil
	}
	return upsertNetwork(ctx, tx, sb.ID, sb.Egress, sb.EgressAllow)
}

func upsertNetwork(ctx context.Context, tx *sql.Tx, id, egress string, allow []string) error {
	if allow == nil {
		allow = []string{}
	}
	list, err := json.Marshal(allow)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sandbox_network (sandbox_id, egress, allow) VALUES (?, ?, ?)
		ON CONFLICT (sandbox_id) DO UPDATE SET egress = excluded.egress, allow = excluded.allow`, id, egress, string(list))
	if err != nil {
		return fmt.Errorf("record network policy: %w", err)
	}
	return nil
}

// scanNetwork fills a sandbox's policy from its sandbox_network row.
func scanNetwork(sb *Sandbox, egress, allow string) error {
	sb.Egress = egress
	var list []string
	if err := json.Unmarshal([]byte(allow), &list); err != nil {
		return fmt.Errorf("network policy of %s: %w", sb.ID, err)
	}
	if len(list) > 0 {
		sb.EgressAllow = list
	}
	return nil
}

// SetNetwork replaces a sandbox's egress policy. It returns ErrNotFound when the sandbox
// is gone.
func (db *DB) SetNetwork(ctx context.Context, id, egress string, allow []string, now time.Time) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := touchSandbox(ctx, tx, id, now); err != nil {
			return err
		}
		return upsertNetwork(ctx, tx, id, egress, allow)
	})
}
