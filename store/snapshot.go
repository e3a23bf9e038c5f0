package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kinds of snapshot (issue 18).
const (
	SnapshotUser       = "snapshot"   // taken through the API
	SnapshotCheckpoint = "checkpoint" // taken before an agent task, pruned by count and age
	SnapshotTemplate   = "template"   // published by an admin, readable by every tenant
)

// ErrFull is returned when a sandbox already holds as many snapshots as it may.
var ErrFull = errors.New("limit reached")

// Snapshot is one snapshot: where it came from and the config a sandbox made from it
// takes. Its env values are apart (SnapshotSecrets): reading a snapshot never reads them.
type Snapshot struct {
	ID        string
	Kind      string
	SandboxID string // "" for a template
	Tenant    string
	Name      string
	TaskID    string // a checkpoint's task
	Source    string // the snapshot a template was published from
	Method    string // how its tree was made: btrfs, reflink or copy
	Config    SnapshotConfig
	CreatedAt time.Time
}

// SnapshotConfig is the config of the sandbox a snapshot was taken of. Services carry no
// env values here.
type SnapshotConfig struct {
	Image         string            `json:"image"`
	Ports         []int             `json:"ports"`
	EnvKeys       []string          `json:"env_keys"`
	Labels        map[string]string `json:"labels"`
	Services      []Service         `json:"services"`
	MemoryBytes   int64             `json:"memory_bytes"`
	NanoCPUs      int64             `json:"nano_cpus"`
	IdleTimeoutMS int64             `json:"idle_timeout_ms"`
	IdlePolicy    string            `json:"idle_policy"`
	HostHeader    string            `json:"host_header"`
	PreviewAccess string            `json:"preview_access,omitempty"`
	DiskBytes     int64             `json:"disk_bytes,omitempty"` // issue 12's quota; 0: the default
	// Issue 14's wake policy and pause tier, issue 15's egress policy.
	WakeOn      string   `json:"wake_on,omitempty"`
	StopAfterMS int64    `json:"stop_after_ms,omitempty"`
	Egress      string   `json:"egress,omitempty"`
	EgressAllow []string `json:"egress_allow,omitempty"`
}

// SnapshotSecrets are a snapshot's env values and its services' env values, by service
// name.
type SnapshotSecrets struct {
	Env        map[string]string            `json:"env"`
	ServiceEnv map[string]map[string]string `json:"service_env"`
}

const snapshotCols = `id, kind, sandbox_id, tenant, name, task_id, source, method, config, created_at`

// CreateSnapshot records a snapshot whose tree is whole. With max > 0 a sandbox's snapshots
// of s's kind are limited to max: one more is ErrFull, checked in the same transaction.
// A template whose name is taken, or an id that is, is ErrConflict.
func (db *DB) CreateSnapshot(ctx context.Context, s Snapshot, sec SnapshotSecrets, max int) error {
	cfg, err := json.Marshal(s.Config)
	if err != nil {
		return err
	}
	secrets, err := db.sealSnapshot(s.ID, sec)
	if err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if max > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM snapshots WHERE sandbox_id = ? AND kind = ?",
				s.SandboxID, s.Kind).Scan(&n); err != nil {
				return fmt.Errorf("count snapshots: %w", err)
			}
			if n >= max {
				return ErrFull
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO snapshots (`+snapshotCols+`, secrets) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.Kind, s.SandboxID, s.Tenant, s.Name, s.TaskID, s.Source, s.Method, string(cfg), ms(s.CreatedAt), secrets)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert snapshot: %w", err)
		}
		return nil
	})
}

// GetSnapshot returns one snapshot of any kind, or ErrNotFound.
func (db *DB) GetSnapshot(ctx context.Context, id string) (Snapshot, error) {
	return db.oneSnapshot(ctx, "WHERE id = ?", id)
}

// Template returns the template named name, or ErrNotFound.
func (db *DB) Template(ctx context.Context, name string) (Snapshot, error) {
	return db.oneSnapshot(ctx, "WHERE kind = 'template' AND name = ?", name)
}

// TaskCheckpoint returns the checkpoint taken before a task, or ErrNotFound (none was, or
// it was pruned).
func (db *DB) TaskCheckpoint(ctx context.Context, taskID string) (Snapshot, error) {
	return db.oneSnapshot(ctx, "WHERE kind = 'checkpoint' AND task_id = ?", taskID)
}

func (db *DB) oneSnapshot(ctx context.Context, where string, args ...any) (Snapshot, error) {
	list, err := db.querySnapshots(ctx, where+" LIMIT 1", args...)
	if err != nil {
		return Snapshot{}, err
	}
	if len(list) == 0 {
		return Snapshot{}, ErrNotFound
	}
	return list[0], nil
}

// ListSnapshots returns a sandbox's snapshots and checkpoints, newest first.
func (db *DB) ListSnapshots(ctx context.Context, sandboxID string) ([]Snapshot, error) {
	return db.querySnapshots(ctx, "WHERE sandbox_id = ? AND kind != 'template' ORDER BY created_at DESC, id DESC", sandboxID)
}

// ListTemplates returns every template, by name.
func (db *DB) ListTemplates(ctx context.Context) ([]Snapshot, error) {
	return db.querySnapshots(ctx, "WHERE kind = 'template' ORDER BY name")
}

// AllSnapshots returns every snapshot's id and sandbox (templates have none), for the boot
// that removes trees without a row.
func (db *DB) AllSnapshots(ctx context.Context) ([]Snapshot, error) {
	return db.querySnapshots(ctx, "")
}

func (db *DB) querySnapshots(ctx context.Context, clause string, args ...any) ([]Snapshot, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+snapshotCols+" FROM snapshots "+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("query snapshots: %w", err)
	}
	defer rows.Close()
	var list []Snapshot
	for rows.Next() {
		var s Snapshot
		var cfg string
		var created int64
		if err := rows.Scan(&s.ID, &s.Kind, &s.SandboxID, &s.Tenant, &s.Name, &s.TaskID, &s.Source, &s.Method,
			&cfg, &created); err != nil {
			return nil, fmt.Errorf("scan snapshot: %w", err)
		}
		if err := json.Unmarshal([]byte(cfg), &s.Config); err != nil {
			return nil, fmt.Errorf("config of snapshot %s: %w", s.ID, err)
		}
		s.CreatedAt = fromMS(created)
		list = append(list, s)
	}
	return list, rows.Err()
}

// SnapshotSecrets returns a snapshot's env values, for a sandbox made from it.
func (db *DB) SnapshotSecrets(ctx context.Context, id string) (SnapshotSecrets, error) {
	var b []byte
	err := db.r.QueryRowContext(ctx, "SELECT secrets FROM snapshots WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return SnapshotSecrets{}, ErrNotFound
	}
	if err != nil {
		return SnapshotSecrets{}, fmt.Errorf("read snapshot secrets: %w", err)
	}
	return db.openSnapshot(id, b)
}

// DeleteSnapshot removes a snapshot's row, or answers ErrNotFound.
func (db *DB) DeleteSnapshot(ctx context.Context, id string) error {
	return db.update(ctx, "DELETE FROM snapshots WHERE id = ?", id)
}

// PruneCheckpoints removes the rows of a sandbox's checkpoints past the newest keep (keep 0
// keeps none of them by count) and those taken before olderThan (zero: none by age), and
// returns what it removed so the caller removes their trees.
func (db *DB) PruneCheckpoints(ctx context.Context, sandboxID string, keep int, olderThan time.Time) ([]Snapshot, error) {
	list, err := db.querySnapshots(ctx, "WHERE sandbox_id = ? AND kind = 'checkpoint' ORDER BY created_at DESC, id DESC", sandboxID)
	if err != nil {
		return nil, err
	}
	var gone []Snapshot
	for i, s := range list {
		if i >= keep || (!olderThan.IsZero() && s.CreatedAt.Before(olderThan)) {
			gone = append(gone, s)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		for _, s := range gone {
			if _, err := tx.ExecContext(ctx, "DELETE FROM snapshots WHERE id = ?", s.ID); err != nil {
				return fmt.Errorf("prune checkpoint %s: %w", s.ID, err)
			}
		}
		return nil
	})
	return gone, err
}

// Snapshot secrets are sealed like a sandbox's env (issue 12): one AES-GCM value per
// snapshot, bound to its id.
func snapshotAD(id string) []byte { return []byte("snapshots\x00" + id) }

// sealSnapshot is the stored form of a snapshot's secrets.
func (db *DB) sealSnapshot(id string, sec SnapshotSecrets) ([]byte, error) {
	b, err := json.Marshal(sec)
	if err != nil {
		return nil, err
	}
	return db.seal.Seal(b, snapshotAD(id)), nil
}

// openSnapshot reads a snapshot's stored secrets.
func (db *DB) openSnapshot(id string, sealed []byte) (SnapshotSecrets, error) {
	var sec SnapshotSecrets
	b, err := db.seal.Open(sealed, snapshotAD(id))
	if err != nil {
		return sec, fmt.Errorf("secrets of snapshot %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &sec); err != nil {
		return sec, fmt.Errorf("secrets of snapshot %s: %w", id, err)
	}
	return sec, nil
}

// resealSnapshots seals again, under the current key, the secrets an older key sealed (a
// rotation); part of reseal's transaction.
func (db *DB) resealSnapshots(ctx context.Context, tx *sql.Tx) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT id, secrets FROM snapshots")
	if err != nil {
		return 0, fmt.Errorf("reseal snapshots: %w", err)
	}
	stale := map[string][]byte{}
	for rows.Next() {
		var id string
		var sealed []byte
		if err := rows.Scan(&id, &sealed); err != nil {
			rows.Close()
			return 0, err
		}
		if !db.seal.current(sealed) {
			stale[id] = sealed
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for id, sealed := range stale {
		plain, err := db.seal.Open(sealed, snapshotAD(id))
		if err != nil {
			return 0, fmt.Errorf("secrets of snapshot %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE snapshots SET secrets = ? WHERE id = ?", db.seal.Seal(plain, snapshotAD(id)), id); err != nil {
			return 0, fmt.Errorf("reseal snapshots: %w", err)
		}
	}
	return len(stale), nil
}
