package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Preview access (issue 13).
const (
	AccessPublic  = "public"  // anyone who knows the URL
	AccessPrivate = "private" // only requests that carry a preview token
)

// Previews is who may open a sandbox's preview ports.
type Previews struct {
	// Access is AccessPublic or AccessPrivate; "" follows the operator's default (a
	// sandbox from before issue 13, or one whose access was never set).
	Access string
	// Ports are ports whose access is their own, whatever Access says.
	Ports map[int]string
}

// insertPreviews stores a new sandbox's previews and token key, in CreateSandbox's
// transaction. A sandbox with neither has no row.
func insertPreviews(ctx context.Context, tx *sql.Tx, sb *Sandbox) error {
	if sb.Previews.Access == "" && len(sb.Previews.Ports) == 0 && len(sb.PreviewKey) == 0 {
		return nil
	}
	ports, err := encodePorts(sb.Previews.Ports)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO sandbox_previews (sandbox_id, access, ports, token_key) VALUES (?, ?, ?, ?)",
		sb.ID, sb.Previews.Access, ports, keyBytes(sb.PreviewKey))
	if err != nil {
		return fmt.Errorf("insert previews: %w", err)
	}
	return nil
}

// fillPreviews loads the previews and keys of the sandboxes in list (one query for all).
func (db *DB) fillPreviews(ctx context.Context, list []Sandbox, index map[string]int, in string, ids []any) error {
	rows, err := db.r.QueryContext(ctx, "SELECT sandbox_id, access, ports, token_key FROM sandbox_previews WHERE sandbox_id IN "+in, ids...)
	if err != nil {
		return fmt.Errorf("query previews: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, access, ports string
		var key []byte
		if err := rows.Scan(&id, &access, &ports, &key); err != nil {
			return fmt.Errorf("scan previews: %w", err)
		}
		sb := &list[index[id]]
		sb.Previews.Access = access
		if sb.Previews.Ports, err = decodePorts(ports); err != nil {
			return fmt.Errorf("previews of %s: %w", id, err)
		}
		if len(key) > 0 {
			sb.PreviewKey = key
		}
	}
	return rows.Err()
}

// SetPreviews replaces who may open a sandbox's previews; its token key stays.
func (db *DB) SetPreviews(ctx context.Context, id string, p Previews, now time.Time) error {
	ports, err := encodePorts(p.Ports)
	if err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := touchSandbox(ctx, tx, id, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sandbox_previews (sandbox_id, access, ports) VALUES (?, ?, ?)
			ON CONFLICT (sandbox_id) DO UPDATE SET access = excluded.access, ports = excluded.ports`, id, p.Access, ports)
		return err
	})
}

// SetPreviewKey replaces a sandbox's token key: every token signed with the old one stops
// verifying.
func (db *DB) SetPreviewKey(ctx context.Context, id string, key []byte, now time.Time) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := touchSandbox(ctx, tx, id, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sandbox_previews (sandbox_id, token_key) VALUES (?, ?)
			ON CONFLICT (sandbox_id) DO UPDATE SET token_key = excluded.token_key`, id, keyBytes(key))
		return err
	})
}

// touchSandbox sets updated_at, or answers ErrNotFound for a sandbox that is gone.
func touchSandbox(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx, "UPDATE sandboxes SET updated_at = ? WHERE id = ?", ms(now), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// keyBytes keeps a nil key out of the NOT NULL column.
func keyBytes(k []byte) []byte {
	if k == nil {
		return []byte{}
	}
	return k
}

func encodePorts(ports map[int]string) (string, error) {
	m := make(map[string]string, len(ports))
	for p, a := range ports {
		m[strconv.Itoa(p)] = a
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodePorts(s string) (map[int]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	ports := make(map[int]string, len(m))
	for k, a := range m {
		p, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", k, err)
		}
		ports[p] = a
	}
	return ports, nil
}
