package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Audit is one line of the audit log: who did what to which target, and how it ended.
type Audit struct {
	Seq       int64 // the row's place in the log; set when read
	At        time.Time
	Actor     string // token name, or "operator" when auth is off
	Tenant    string // the acting token's tenant; "" for admin tokens
	Action    string // the route, like "POST /v1/sandboxes/{id}/stop"
	Target    string // sandbox id, or "token:<name>"
	Detail    string
	Status    int    // the HTTP status answered
	Result    string // "ok", or the error code answered
	RequestID string // X-Request-Id of the request, as in the request log
}

// DefaultAuditMaxRows is the audit log's row cap when DB.AuditMaxRows is zero.
const DefaultAuditMaxRows = 200000

// auditPruneEvery is how many appends pass between two prunes: the log may hold this many
// rows over its cap for a moment, and a prune's cost is spread over them.
const auditPruneEvery = 256

// AppendAudit writes one audit line. Every auditPruneEvery lines it drops the oldest rows
// past AuditMaxRows, so the log never grows without bound.
func (db *DB) AppendAudit(ctx context.Context, a Audit) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, tenant, action, target, detail, status, result, request_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ms(a.At), a.Actor, a.Tenant, a.Action, a.Target, a.Detail, a.Status, a.Result, a.RequestID)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil || id%auditPruneEvery != 0 {
			return nil
		}
		// The row keep rows back from the newest is the oldest kept; an empty subquery
		// (fewer rows than that) compares as NULL and deletes nothing.
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE id < (SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?)`,
			db.auditMaxRows()-1); err != nil {
			return fmt.Errorf("prune audit log: %w", err)
		}
		return nil
	})
}

func (db *DB) auditMaxRows() int {
	if db.AuditMaxRows > 0 {
		return db.AuditMaxRows
	}
	return DefaultAuditMaxRows
}

// AuditQuery filters ListAudit. Zero values mean no filter.
type AuditQuery struct {
	Target string
	Tenant string
	Since  time.Time // lines at or after
	After  int64     // cursor: lines whose Seq is greater
	Limit  int       // 0: 100
}

// ListAudit returns audit lines oldest first.
func (db *DB) ListAudit(ctx context.Context, q AuditQuery) ([]Audit, error) {
	var where []string
	var args []any
	for _, f := range []struct {
		cond string
		on   bool
		arg  any
	}{
		{"target = ?", q.Target != "", q.Target},
		{"tenant = ?", q.Tenant != "", q.Tenant},
		{"at >= ?", !q.Since.IsZero(), ms(q.Since)},
		{"id > ?", q.After > 0, q.After},
	} {
		if f.on {
			where = append(where, f.cond)
			args = append(args, f.arg)
		}
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, at, actor, tenant, action, target, detail, status, result, request_id
		FROM audit_log `+clause+fmt.Sprintf(" ORDER BY id LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []Audit
	for rows.Next() {
		var a Audit
		var at int64
		if err := rows.Scan(&a.Seq, &at, &a.Actor, &a.Tenant, &a.Action, &a.Target, &a.Detail, &a.Status, &a.Result, &a.RequestID); err != nil {
			return nil, err
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AuditFor returns a target's audit lines, oldest first (at most 1000).
func (db *DB) AuditFor(ctx context.Context, target string) ([]Audit, error) {
	return db.ListAudit(ctx, AuditQuery{Target: target, Limit: 1000})
}
