package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Audit is one line of the audit log: who did what to which target.
type Audit struct {
	At     time.Time
	Actor  string // token name, or "operator" when auth is off
	Action string // sandbox.create, sandbox.exec, ...
	Target string // sandbox id
	Detail string
}

// AppendAudit writes one audit line.
func (db *DB) AppendAudit(ctx context.Context, a Audit) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
			ms(a.At), a.Actor, a.Action, a.Target, a.Detail)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
}

// AuditFor returns a target's audit lines, oldest first.
func (db *DB) AuditFor(ctx context.Context, target string) ([]Audit, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT at, actor, action, target, detail FROM audit_log WHERE target = ? ORDER BY id", target)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []Audit
	for rows.Next() {
		var a Audit
		var at int64
		if err := rows.Scan(&at, &a.Actor, &a.Action, &a.Target, &a.Detail); err != nil {
			return nil, err
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}
