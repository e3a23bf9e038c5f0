package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// Env values and service env values are secrets (issue 12): they are stored sealed
// (seal.go), never in clear, and only the container spec reads them back.
//
// sandbox_env keeps its value column empty and holds the sealed value in sealed;
// sandbox_services keeps the service's spec without its env, and the env, sealed as one
// JSON object, in env_sealed (NULL when the service has none).

func envAD(id, key string) []byte { return []byte("sandbox_env\x00" + id + "\x00" + key) }

func serviceAD(id, name string) string { return "sandbox_services\x00" + id + "\x00" + name }

func (db *DB) insertEnv(ctx context.Context, tx *sql.Tx, id string, env map[string]string) error {
	for k, v := range env {
		if _, err := tx.ExecContext(ctx, "INSERT INTO sandbox_env (sandbox_id, key, value, sealed) VALUES (?, ?, '', ?)",
			id, k, db.seal.Seal([]byte(v), envAD(id, k))); err != nil {
			return fmt.Errorf("insert env: %w", err)
		}
	}
	return nil
}

// serviceRow is a service as stored: its spec without env, and the env sealed.
func (db *DB) serviceRow(id string, s Service) (spec string, envSealed []byte, err error) {
	env := s.Env
	s.Env = nil
	b, err := json.Marshal(s)
	if err != nil {
		return "", nil, err
	}
	if len(env) > 0 {
		if envSealed, err = db.seal.SealEnv(env, serviceAD(id, s.Name)); err != nil {
			return "", nil, err
		}
	}
	return string(b), envSealed, nil
}

// service decodes a stored service.
func (db *DB) service(id, spec string, envSealed []byte) (Service, error) {
	var s Service
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return s, fmt.Errorf("service of %s: %w", id, err)
	}
	if envSealed != nil {
		env, err := db.seal.OpenEnv(envSealed, serviceAD(id, s.Name))
		if err != nil {
			return s, fmt.Errorf("env of service %q of %s: %w", s.Name, id, err)
		}
		s.Env = env
	}
	return s, nil
}

// reseal seals what is still in clear (a database from before issue 12) and re-seals what
// an older key sealed (a rotation), in one transaction. When it changed anything it
// checkpoints, so the clear values and old ciphertexts leave the -wal file too.
func (db *DB) reseal(ctx context.Context) error {
	changed := 0
	err := db.write(ctx, func(tx *sql.Tx) error {
		n, err := db.resealEnv(ctx, tx)
		if err != nil {
			return err
		}
		m, err := db.resealServices(ctx, tx)
		changed = n + m
		return err
	})
	if err != nil || changed == 0 {
		return err
	}
	return db.Checkpoint(ctx)
}

func (db *DB) resealEnv(ctx context.Context, tx *sql.Tx) (int, error) {
	type row struct {
		id, key, value string
		sealed         []byte
	}
	rows, err := tx.QueryContext(ctx, "SELECT sandbox_id, key, value, sealed FROM sandbox_env")
	if err != nil {
		return 0, fmt.Errorf("reseal env: %w", err)
	}
	var stale []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.key, &r.value, &r.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		if r.sealed == nil || !db.seal.current(r.sealed) {
			stale = append(stale, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range stale {
		plain := []byte(r.value)
		if r.sealed != nil {
			if plain, err = db.seal.Open(r.sealed, envAD(r.id, r.key)); err != nil {
				return 0, fmt.Errorf("env %s of sandbox %s: %w", r.key, r.id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sandbox_env SET value = '', sealed = ? WHERE sandbox_id = ? AND key = ?",
			db.seal.Seal(plain, envAD(r.id, r.key)), r.id, r.key); err != nil {
			return 0, fmt.Errorf("reseal env: %w", err)
		}
	}
	return len(stale), nil
}

func (db *DB) resealServices(ctx context.Context, tx *sql.Tx) (int, error) {
	type row struct {
		id, name, spec string
		sealed         []byte
	}
	rows, err := tx.QueryContext(ctx, "SELECT sandbox_id, name, spec, env_sealed FROM sandbox_services")
	if err != nil {
		return 0, fmt.Errorf("reseal services: %w", err)
	}
	var stale []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.name, &r.spec, &r.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		var clear struct{ Env map[string]string }
		if err := json.Unmarshal([]byte(r.spec), &clear); err != nil {
			rows.Close()
			return 0, fmt.Errorf("service %q of %s: %w", r.name, r.id, err)
		}
		if len(clear.Env) > 0 || r.sealed != nil && !db.seal.current(r.sealed) {
			stale = append(stale, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range stale {
		s, err := db.service(r.id, r.spec, r.sealed)
		if err != nil {
			return 0, err
		}
		spec, sealed, err := db.serviceRow(r.id, s)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sandbox_services SET spec = ?, env_sealed = ? WHERE sandbox_id = ? AND name = ?",
			spec, sealed, r.id, r.name); err != nil {
			return 0, fmt.Errorf("reseal services: %w", err)
		}
	}
	return len(stale), nil
}
