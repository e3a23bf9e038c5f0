package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Sandbox states. SQLite holds what should exist; Docker is the truth of what runs.
const (
	StatusCreating = "creating"
	StatusRunning  = "running"
	StatusPaused   = "paused" // frozen by the cgroup freezer: processes and memory kept, no CPU
	StatusStopping = "stopping"
	StatusStopped  = "stopped"
	StatusError    = "error"
)

// Idle policies.
const (
	IdleSleep    = "sleep"
	IdleAlwaysOn = "always_on"
)

// Wake policies (issue 14): which requests wake a sleeping (paused or stopped) sandbox.
const (
	WakeOnNavigation = "navigation" // navigations and clients without browser fetch metadata
	WakeOnAny        = "any"        // every request, a page's background requests included
)

// Sandbox is one row of sandboxes with its ports, env keys, labels and services.
type Sandbox struct {
	ID          string
	Status      string
	Image       string
	Ports       []int    // sorted
	EnvKeys     []string // sorted names; values are only read by SandboxEnv
	Labels      map[string]string
	Services    []Service
	MemoryBytes int64
	NanoCPUs    int64
	IdleTimeout time.Duration // 0: the operator's default
	IdlePolicy  string
	HostHeader  string // "" the preview host; "localhost": localhost:<port>

	// Issue 13: the tenant whose token created it; "" for the operator's sandboxes.
	Tenant string

	// Issue 15: the egress policy (network.go). Egress is none, proxy or open, or "" for
	// a sandbox stored without one; EgressAllow is its own allowlist.
	Egress      string
	EgressAllow []string

	ContainerID string
	IP          string
	Error       string

	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastActiveAt   time.Time
	KeepaliveUntil time.Time

	// Issue 13: preview access. PreviewKey signs the sandbox's preview tokens; it is a
	// secret, never shown by the API, and nil until one is made.
	Previews   Previews
	PreviewKey []byte
	// issue 11: how the container last ended without sandboxd asking; zero when it never has.
	LastExit Exit
	// Issue 12: disk quota and a uid of its own.
	DiskBytes int64     // disk quota asked for at create; 0: the operator's default
	UID       int       // the sandbox's own uid (sandbox_uids); 0: none yet, it still runs as uid 1000
	Disk      DiskUsage // not stored: lifecycle fills it from its last measurement

	// Issue 14: tiered sleep and the wake policy.
	WakeOn    string        // WakeOnNavigation or WakeOnAny
	StopAfter time.Duration // how long it stays paused before it is stopped; 0: the operator's default
	PausedAt  time.Time     // when it was paused; zero unless Status is paused
}

// DiskUsage is a sandbox's disk as last measured, and its quotas (issue 12).
type DiskUsage struct {
	Used       int64  // bytes
	Quota      int64  // bytes; 0: none
	Inodes     int64  // files, directories and links
	InodeQuota int64  // 0: none
	Enforced   string // how the byte quota is enforced: "btrfs" (the kernel), "scan" or "none"
	Snapshots  int64  // issue 18: the part of Used that snapshots and checkpoints hold alone
}

// Exit is how a sandbox's container ended on its own: its exit code, why ("oom" when the
// kernel's OOM killer took it, "exited" otherwise) and when.
type Exit struct {
	Code   int
	Reason string
	At     time.Time
}

// Reasons of an Exit.
const (
	ExitOOM    = "oom"
	ExitExited = "exited"
)

// Service is a long-running process that sandbox-init keeps up inside the sandbox.
type Service struct {
	Name string            `json:"name"`
	Cmd  []string          `json:"cmd"`
	Cwd  string            `json:"cwd,omitempty"`
	Env  map[string]string `json:"env,omitempty"`
	Port int               `json:"port,omitempty"`
}

// Runtime is the part of a sandbox that follows its container.
type Runtime struct {
	Status      string
	ContainerID string
	IP          string
	Error       string
	PausedAt    time.Time // when it was paused; kept only while Status is paused
}

const sandboxCols = `id, status, image, memory_bytes, nano_cpus, idle_timeout_ms, idle_policy, host_header,
	container_id, ip, error, created_at, updated_at, last_active_at, keepalive_until,
	tenant, disk_bytes,
	wake_on, stop_after_ms, paused_at` // issue 14

// sandboxReadCols are the columns a read scans: sandboxCols, those only updates write, and
// what is read from other tables (the uid outlives the row).
const sandboxReadCols = sandboxCols + `,
	last_exit_code, last_exit_reason, last_exit_at,
	coalesce((SELECT uid FROM sandbox_uids WHERE sandbox_uids.sandbox_id = sandboxes.id), 0)`

// CreateSandbox inserts sb with its ports, env, labels and services in one transaction.
// It returns ErrConflict when the id is taken.
func (db *DB) CreateSandbox(ctx context.Context, sb *Sandbox, env map[string]string) error {
	return db.CreateSandboxLimited(ctx, sb, env, TenantLimits{})
}

// CreateSandboxLimited is CreateSandbox that first checks sb's tenant against lim in the
// same transaction: concurrent creates queue on the one writer connection, so no two of
// them both see room for one more. It returns a *LimitError when the tenant is full.
func (db *DB) CreateSandboxLimited(ctx context.Context, sb *Sandbox, env map[string]string, lim TenantLimits) error {
	sb.WakeOn = wakeOn(sb.WakeOn)
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := checkTenant(ctx, tx, sb.Tenant, lim); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sandboxes (`+sandboxCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sb.ID, sb.Status, sb.Image, sb.MemoryBytes, sb.NanoCPUs, sb.IdleTimeout.Milliseconds(),
			sb.IdlePolicy, sb.HostHeader, sb.ContainerID, sb.IP, sb.Error,
			ms(sb.CreatedAt), ms(sb.UpdatedAt), ms(sb.LastActiveAt), ms(sb.KeepaliveUntil),
			sb.Tenant, sb.DiskBytes,
			sb.WakeOn, sb.StopAfter.Milliseconds(), ms(sb.PausedAt))
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert sandbox: %w", err)
		}
		for _, p := range sb.Ports {
			if _, err := tx.ExecContext(ctx, "INSERT INTO sandbox_ports (sandbox_id, port) VALUES (?, ?)", sb.ID, p); err != nil {
				return fmt.Errorf("insert port %d: %w", p, err)
			}
		}
		if err := db.insertEnv(ctx, tx, sb.ID, env); err != nil {
			return err
		}
		for k, v := range sb.Labels {
			if _, err := tx.ExecContext(ctx, "INSERT INTO sandbox_labels (sandbox_id, key, value) VALUES (?, ?, ?)", sb.ID, k, v); err != nil {
				return fmt.Errorf("insert label: %w", err)
			}
		}
		if err := insertPreviews(ctx, tx, sb); err != nil {
			return err
		}
		if err := insertNetwork(ctx, tx, sb); err != nil { // issue 15
			return err
		}
		return db.insertServices(ctx, tx, sb.ID, sb.Services)
	})
}

func (db *DB) insertServices(ctx context.Context, tx *sql.Tx, id string, services []Service) error {
	for i, s := range services {
		spec, envSealed, err := db.serviceRow(id, s)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO sandbox_services (sandbox_id, position, name, spec, env_sealed) VALUES (?, ?, ?, ?, ?)",
			id, i, s.Name, spec, envSealed); err != nil {
			return fmt.Errorf("insert service %q: %w", s.Name, err)
		}
	}
	return nil
}

// GetSandbox returns one sandbox, or ErrNotFound.
func (db *DB) GetSandbox(ctx context.Context, id string) (Sandbox, error) {
	list, err := db.querySandboxes(ctx, "WHERE id = ?", id)
	if err != nil {
		return Sandbox{}, err
	}
	if len(list) == 0 {
		return Sandbox{}, ErrNotFound
	}
	return list[0], nil
}

// ListOptions filters and pages ListSandboxes. Zero values mean no filter.
type ListOptions struct {
	Status string
	Tenant string            // issue 13: only this tenant's sandboxes; "" is every sandbox
	Labels map[string]string // every pair must match
	After  string            // cursor: ids greater than this
	Limit  int               // 0: no limit
}

// ListSandboxes returns sandboxes ordered by id.
func (db *DB) ListSandboxes(ctx context.Context, o ListOptions) ([]Sandbox, error) {
	var where []string
	var args []any
	if o.Status != "" {
		where = append(where, "status = ?")
		args = append(args, o.Status)
	}
	if o.Tenant != "" {
		where = append(where, "tenant = ?")
		args = append(args, o.Tenant)
	}
	if o.After != "" {
		where = append(where, "id > ?")
		args = append(args, o.After)
	}
	keys := make([]string, 0, len(o.Labels))
	for k := range o.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		where = append(where, "id IN (SELECT sandbox_id FROM sandbox_labels WHERE key = ? AND value = ?)")
		args = append(args, k, o.Labels[k])
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	clause += " ORDER BY id"
	if o.Limit > 0 {
		clause += fmt.Sprintf(" LIMIT %d", o.Limit)
	}
	return db.querySandboxes(ctx, clause, args...)
}

// querySandboxes loads rows, then their ports, env keys, labels and services with one query
// each, never one per row.
func (db *DB) querySandboxes(ctx context.Context, clause string, args ...any) ([]Sandbox, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+sandboxReadCols+" FROM sandboxes "+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("query sandboxes: %w", err)
	}
	defer rows.Close()
	var list []Sandbox
	index := map[string]int{}
	for rows.Next() {
		var sb Sandbox
		var idle, created, updated, active, keep, exitAt, stopAfter, paused int64
		if err := rows.Scan(&sb.ID, &sb.Status, &sb.Image, &sb.MemoryBytes, &sb.NanoCPUs, &idle, &sb.IdlePolicy,
			&sb.HostHeader, &sb.ContainerID, &sb.IP, &sb.Error, &created, &updated, &active, &keep,
			&sb.Tenant, &sb.DiskBytes, &sb.WakeOn, &stopAfter, &paused,
			&sb.LastExit.Code, &sb.LastExit.Reason, &exitAt, &sb.UID); err != nil {
			return nil, fmt.Errorf("scan sandbox: %w", err)
		}
		sb.LastExit.At = fromMS(exitAt)
		sb.IdleTimeout = time.Duration(idle) * time.Millisecond
		sb.StopAfter, sb.PausedAt = time.Duration(stopAfter)*time.Millisecond, fromMS(paused)
		sb.CreatedAt, sb.UpdatedAt = fromMS(created), fromMS(updated)
		sb.LastActiveAt, sb.KeepaliveUntil = fromMS(active), fromMS(keep)
		sb.Labels = map[string]string{}
		index[sb.ID] = len(list)
		list = append(list, sb)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return list, nil
	}
	ids := make([]any, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + ")"
	if err := db.fill(ctx, list, index, in, ids); err != nil {
		return nil, err
	}
	if err := db.fillPreviews(ctx, list, index, in, ids); err != nil {
		return nil, err
	}
	return list, nil
}

func (db *DB) fill(ctx context.Context, list []Sandbox, index map[string]int, in string, ids []any) error {
	query := func(q string, scan func(sb *Sandbox, a, b string) error) error {
		rows, err := db.r.QueryContext(ctx, q+" WHERE sandbox_id IN "+in+" ORDER BY 1, 2", ids...)
		if err != nil {
			return fmt.Errorf("query sandbox details: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, a, b string
			if err := rows.Scan(&id, &a, &b); err != nil {
				return err
			}
			if err := scan(&list[index[id]], a, b); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err := query("SELECT sandbox_id, port, '' FROM sandbox_ports", func(sb *Sandbox, a, _ string) error {
		var p int
		_, err := fmt.Sscan(a, &p)
		sb.Ports = append(sb.Ports, p)
		return err
	})
	if err != nil {
		return err
	}
	err = query("SELECT sandbox_id, key, '' FROM sandbox_env", func(sb *Sandbox, k, _ string) error {
		sb.EnvKeys = append(sb.EnvKeys, k)
		return nil
	})
	if err != nil {
		return err
	}
	err = query("SELECT sandbox_id, key, value FROM sandbox_labels", func(sb *Sandbox, k, v string) error {
		sb.Labels[k] = v
		return nil
	})
	if err != nil {
		return err
	}
	err = query("SELECT sandbox_id, egress, allow FROM sandbox_network", scanNetwork) // issue 15
	if err != nil {
		return err
	}
	return db.fillServices(ctx, list, index, in, ids)
}

// fillServices loads the services of the sandboxes in list, their env opened.
func (db *DB) fillServices(ctx context.Context, list []Sandbox, index map[string]int, in string, ids []any) error {
	rows, err := db.r.QueryContext(ctx, "SELECT sandbox_id, spec, env_sealed FROM sandbox_services WHERE sandbox_id IN "+in+" ORDER BY sandbox_id, position", ids...)
	if err != nil {
		return fmt.Errorf("query services: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, spec string
		var envSealed []byte
		if err := rows.Scan(&id, &spec, &envSealed); err != nil {
			return err
		}
		s, err := db.service(id, spec, envSealed)
		if err != nil {
			return err
		}
		sb := &list[index[id]]
		sb.Services = append(sb.Services, s)
	}
	return rows.Err()
}

// SandboxEnv returns a sandbox's env with values, for building its container.
func (db *DB) SandboxEnv(ctx context.Context, id string) (map[string]string, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT key, sealed FROM sandbox_env WHERE sandbox_id = ?", id)
	if err != nil {
		return nil, fmt.Errorf("query env: %w", err)
	}
	defer rows.Close()
	env := map[string]string{}
	for rows.Next() {
		var k string
		var sealed []byte
		if err := rows.Scan(&k, &sealed); err != nil {
			return nil, err
		}
		v, err := db.seal.Open(sealed, envAD(id, k))
		if err != nil {
			return nil, fmt.Errorf("env %s of %s: %w", k, id, err)
		}
		env[k] = string(v)
	}
	return env, rows.Err()
}

// SetRuntime records what Docker says about a sandbox's container. PausedAt is kept only
// for a paused sandbox.
func (db *DB) SetRuntime(ctx context.Context, id string, rt Runtime, now time.Time) error {
	if rt.Status != StatusPaused {
		rt.PausedAt = time.Time{}
	}
	return db.update(ctx, `UPDATE sandboxes SET status = ?, container_id = ?, ip = ?, error = ?, paused_at = ?, updated_at = ? WHERE id = ?`,
		rt.Status, rt.ContainerID, rt.IP, rt.Error, ms(rt.PausedAt), ms(now), id)
}

// SetLastExit records how a sandbox's container ended without sandboxd asking.
func (db *DB) SetLastExit(ctx context.Context, id string, e Exit) error {
	return db.update(ctx, "UPDATE sandboxes SET last_exit_code = ?, last_exit_reason = ?, last_exit_at = ? WHERE id = ?",
		e.Code, e.Reason, ms(e.At), id)
}

// SetServices replaces a sandbox's services and its declared ports.
func (db *DB) SetServices(ctx context.Context, id string, services []Service, ports []int, now time.Time) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := touchSandbox(ctx, tx, id, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sandbox_services WHERE sandbox_id = ?", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sandbox_ports WHERE sandbox_id = ?", id); err != nil {
			return err
		}
		for _, p := range ports {
			if _, err := tx.ExecContext(ctx, "INSERT INTO sandbox_ports (sandbox_id, port) VALUES (?, ?)", id, p); err != nil {
				return fmt.Errorf("insert port %d: %w", p, err)
			}
		}
		return db.insertServices(ctx, tx, id, services)
	})
}

// SetKeepalive keeps a sandbox awake until the given time and marks it active at now.
// Neither time moves backwards: an earlier (or zero) until leaves the keepalive as it was.
func (db *DB) SetKeepalive(ctx context.Context, id string, until, now time.Time) error {
	return db.update(ctx, "UPDATE sandboxes SET keepalive_until = max(keepalive_until, ?), last_active_at = max(last_active_at, ?) WHERE id = ?",
		ms(until), ms(now), id)
}

// TouchActive records last activity times in one transaction. Rows that are gone are skipped;
// a time never moves backwards.
func (db *DB) TouchActive(ctx context.Context, at map[string]time.Time) error {
	if len(at) == 0 {
		return nil
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, "UPDATE sandboxes SET last_active_at = ? WHERE id = ? AND last_active_at < ?")
		if err != nil {
			return err
		}
		defer stmt.Close()
		for id, t := range at {
			if _, err := stmt.ExecContext(ctx, ms(t), id, ms(t)); err != nil {
				return fmt.Errorf("touch %s: %w", id, err)
			}
		}
		return nil
	})
}

// DeleteSandbox removes a sandbox row and everything that hangs off it. Tasks stay: a
// delete keeps the workspace, and the id created again finds its task history.
func (db *DB) DeleteSandbox(ctx context.Context, id string) error {
	return db.update(ctx, "DELETE FROM sandboxes WHERE id = ?", id)
}

// PurgeSandbox removes everything stored about a sandbox, in one transaction: its row (and
// what hangs off it), its tasks and their events, its snapshots (issue 18). The audit log keeps its lines: it is the
// record of who did what, purges included. A sandbox without a row (deleted, its workspace
// kept) still loses its tasks. It reports whether there was anything to remove.
func (db *DB) PurgeSandbox(ctx context.Context, id string) (found bool, err error) {
	err = db.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			"DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE sandbox_id = ?)",
			"DELETE FROM tasks WHERE sandbox_id = ?",
			"DELETE FROM snapshots WHERE sandbox_id = ?", // issue 18; templates have none
			"DELETE FROM sandboxes WHERE id = ?",
		} {
			res, err := tx.ExecContext(ctx, q, id)
			if err != nil {
				return fmt.Errorf("purge %s: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				found = true
			}
		}
		return nil
	})
	return found, err
}

func (db *DB) update(ctx context.Context, query string, args ...any) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// wakeOn is the policy stored for p: the default for an empty one.
func wakeOn(p string) string {
	if p == "" {
		return WakeOnNavigation
	}
	return p
}

// isUniqueViolation reports a primary key or unique index violation; other constraint
// failures (CHECK, NOT NULL) are bugs, not conflicts.
func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey || se.ExtendedCode == sqlite3.ErrConstraintUnique)
}
