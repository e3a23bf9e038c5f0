package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// APIToken is a token an admin created through the API (issue 13). The secret itself is
// never stored: Hash is its SHA-256, computed by the caller.
type APIToken struct {
	Name      string
	Hash      []byte
	Tenant    string // "" : an admin token
	Kind      string // "api" or "e2b": the shape of the secret
	Hint      string // the secret's first characters, to tell tokens apart in a list
	CreatedAt time.Time
	CreatedBy string // the actor that created it
}

// MaxAPITokens bounds the stored tokens: each is a row and a way in.
const MaxAPITokens = 10000

// ErrTooMany reports a table at its row cap; nothing was written.
var ErrTooMany = errors.New("too many rows")

// CreateAPIToken stores t. It returns ErrConflict when the name (or, impossibly for a
// random secret, the hash) is taken, and ErrTooMany at MaxAPITokens.
func (db *DB) CreateAPIToken(ctx context.Context, t APIToken) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM api_tokens").Scan(&n); err != nil {
			return fmt.Errorf("count tokens: %w", err)
		}
		if n >= MaxAPITokens {
			return ErrTooMany
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (name, hash, tenant, kind, hint, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Name, t.Hash, t.Tenant, t.Kind, t.Hint, ms(t.CreatedAt), t.CreatedBy)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		return nil
	})
}

// APITokenByHash returns the token whose secret hashes to hash, or ErrNotFound.
func (db *DB) APITokenByHash(ctx context.Context, hash []byte) (APIToken, error) {
	list, err := db.queryTokens(ctx, "WHERE hash = ?", hash)
	if err != nil {
		return APIToken{}, err
	}
	if len(list) == 0 {
		return APIToken{}, ErrNotFound
	}
	return list[0], nil
}

// ListAPITokens returns every stored token, by name.
func (db *DB) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	return db.queryTokens(ctx, "ORDER BY name")
}

// DeleteAPIToken removes a token; ErrNotFound when there is none of that name.
func (db *DB) DeleteAPIToken(ctx context.Context, name string) error {
	return db.update(ctx, "DELETE FROM api_tokens WHERE name = ?", name)
}

func (db *DB) queryTokens(ctx context.Context, clause string, args ...any) ([]APIToken, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT name, hash, tenant, kind, hint, created_at, created_by FROM api_tokens "+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("query tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var created int64
		if err := rows.Scan(&t.Name, &t.Hash, &t.Tenant, &t.Kind, &t.Hint, &created, &t.CreatedBy); err != nil {
			return nil, fmt.Errorf("scan token: %w", err)
		}
		t.CreatedAt = fromMS(created)
		out = append(out, t)
	}
	return out, rows.Err()
}
