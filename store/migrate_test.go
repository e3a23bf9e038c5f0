package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// openAt opens path as Open does, but applies only the migrations named before stop.
func openAt(t *testing.T, path string, stop string) *sql.DB {
	t.Helper()
	w, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_foreign_keys=on&_txlock=immediate&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	t.Cleanup(func() { w.Close() })
	if err := migrateBefore(context.Background(), w, stop); err != nil {
		t.Fatalf("migrate up to %s: %v", stop, err)
	}
	return w
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// Migration 0006 rebuilds sandboxes so its status may be 'paused'. On a database that an
// older sandboxd filled, every row and every row hanging off one survives, and so do the
// columns, indexes and child tables earlier migrations added (0003's last exit, 0005's
// previews, 0005b's tenant) and one that a migration merged later below 0006 might add;
// foreign keys cascade again afterwards.
func TestMigration0006RebuildKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	old := openAt(t, path, "0006")
	// What a migration numbered below 6 from another branch could still make.
	mustExec(t, old, `ALTER TABLE sandboxes ADD COLUMN extra TEXT NOT NULL DEFAULT ''`)
	mustExec(t, old, `CREATE INDEX sandboxes_extra ON sandboxes (extra)`)
	mustExec(t, old, `CREATE TABLE sandbox_grants (
		sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE, who TEXT NOT NULL)`)
	// Rows as the older sandboxd wrote them.
	for i, id := range []string{"alpha", "beta"} {
		status := []string{"running", "stopped"}[i]
		mustExec(t, old, `INSERT INTO sandboxes (id, status, image, memory_bytes, nano_cpus, idle_timeout_ms, idle_policy,
			host_header, container_id, ip, error, created_at, updated_at, last_active_at, keepalive_until, tenant,
			last_exit_code, last_exit_reason, last_exit_at, extra)
			VALUES (?, ?, 'sandboxd/testkit:latest', 1073741824, 2000000000, 60000, 'sleep', '', ?, '172.18.0.9', '', ?, ?, ?, 0, ?,
			137, 'oom', ?, ?)`,
			id, status, "c-"+id, t0.UnixMilli(), t0.UnixMilli(), t0.Add(time.Minute).UnixMilli(), "t-"+id, t0.UnixMilli(), "x-"+id)
		mustExec(t, old, `INSERT INTO sandbox_ports (sandbox_id, port) VALUES (?, 3000), (?, 5173)`, id, id)
		mustExec(t, old, `INSERT INTO sandbox_env (sandbox_id, key, value) VALUES (?, 'TOKEN', 'secret')`, id)
		mustExec(t, old, `INSERT INTO sandbox_labels (sandbox_id, key, value) VALUES (?, 'user_id', 'u1')`, id)
		mustExec(t, old, `INSERT INTO sandbox_services (sandbox_id, position, name, spec) VALUES (?, 0, 'web', '{"name":"web","cmd":["devserver"],"port":3000}')`, id)
		mustExec(t, old, `INSERT INTO sandbox_grants (sandbox_id, who) VALUES (?, 'ann')`, id)
		mustExec(t, old, `INSERT INTO sandbox_previews (sandbox_id, access, token_key) VALUES (?, 'private', x'0102')`, id)
		mustExec(t, old, `INSERT INTO tasks (id, sandbox_id, agent, prompt, status, created_at) VALUES (?, ?, 'claude', 'hi', 'succeeded', 1)`, "task-"+id, id)
	}
	if _, err := old.Exec(`UPDATE sandboxes SET status = 'paused' WHERE id = 'alpha'`); err == nil {
		t.Fatal("before 0006, status 'paused' was accepted: the test does not start where it should")
	}
	old.Close()

	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open (migrating past 0006): %v", err)
	}
	defer db.Close()
	ctx := context.Background()

	got, err := db.GetSandbox(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	want := Sandbox{
		ID: "alpha", Status: StatusRunning, Image: "sandboxd/testkit:latest", Ports: []int{3000, 5173},
		EnvKeys: []string{"TOKEN"}, Labels: map[string]string{"user_id": "u1"},
		Services:    []Service{{Name: "web", Cmd: []string{"devserver"}, Port: 3000}},
		MemoryBytes: 1 << 30, NanoCPUs: 2e9, IdleTimeout: time.Minute, IdlePolicy: IdleSleep,
		ContainerID: "c-alpha", IP: "172.18.0.9", CreatedAt: t0, UpdatedAt: t0, LastActiveAt: t0.Add(time.Minute),
		Tenant: "t-alpha", LastExit: Exit{Code: 137, Reason: ExitOOM, At: t0},
		Previews: Previews{Access: AccessPrivate}, PreviewKey: []byte{1, 2},
		WakeOn: WakeOnNavigation,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("alpha after the migration:\n got %+v\nwant %+v", got, want)
	}
	if env, err := db.SandboxEnv(ctx, "beta"); err != nil || env["TOKEN"] != "secret" {
		t.Fatalf("beta's env after the migration: %v %v", env, err)
	}
	var previews int
	db.r.QueryRow(`SELECT count(*) FROM sandbox_previews WHERE access = 'private'`).Scan(&previews)
	if previews != 2 {
		t.Errorf("%d preview rows after the migration, want 2", previews)
	}
	var extra string
	if err := db.r.QueryRow(`SELECT extra FROM sandboxes WHERE id = 'beta'`).Scan(&extra); err != nil || extra != "x-beta" {
		t.Fatalf("the column another migration added: %q %v", extra, err)
	}
	for _, index := range []string{"sandboxes_status", "sandboxes_tenant", "sandboxes_extra"} {
		var n int
		db.r.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, index).Scan(&n)
		if n != 1 {
			t.Errorf("index %s is gone", index)
		}
	}
	for _, child := range []string{"sandbox_ports", "sandbox_env", "sandbox_labels", "sandbox_services", "sandbox_grants", "sandbox_previews"} {
		var parent string
		if err := db.r.QueryRow(`SELECT "table" FROM pragma_foreign_key_list(?)`, child).Scan(&parent); err != nil || parent != "sandboxes" {
			t.Errorf("%s references %q (%v), want sandboxes", child, parent, err)
		}
	}

	// The new state is accepted; a made-up one still is not.
	if err := db.SetRuntime(ctx, "alpha", Runtime{Status: StatusPaused, ContainerID: "c-alpha", IP: "172.18.0.9", PausedAt: t0}, t0); err != nil {
		t.Fatalf("pause after the migration: %v", err)
	}
	if got, _ := db.GetSandbox(ctx, "alpha"); got.Status != StatusPaused || !got.PausedAt.Equal(t0) {
		t.Fatalf("paused row reads back as %s paused at %v", got.Status, got.PausedAt)
	}
	if err := db.SetRuntime(ctx, "alpha", Runtime{Status: "asleep"}, t0); err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Fatalf("status 'asleep' after the migration: %v, want a CHECK failure", err)
	}
	// Foreign keys are on again for the connection every write uses: a delete cascades.
	if err := db.DeleteSandbox(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	for _, child := range []string{"sandbox_ports", "sandbox_env", "sandbox_labels", "sandbox_services", "sandbox_grants", "sandbox_previews"} {
		var n int
		db.r.QueryRow(`SELECT count(*) FROM ` + child + ` WHERE sandbox_id = 'beta'`).Scan(&n)
		if n != 0 {
			t.Errorf("%s kept %d rows of a deleted sandbox: foreign keys are off", child, n)
		}
	}
	var tasks int
	db.r.QueryRow(`SELECT count(*) FROM tasks`).Scan(&tasks)
	if tasks != 2 {
		t.Errorf("%d tasks after the migration, want 2 (tasks outlive their sandbox)", tasks)
	}
}

// A rebuild that meets a schema it does not expect changes nothing.
func TestRebuildRefusesAnUnexpectedSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	w := openAt(t, path, "0006")
	mustExec(t, w, `INSERT INTO sandboxes (id, status, image, memory_bytes, nano_cpus, created_at, updated_at, last_active_at)
		VALUES ('x', 'running', 'img', 1, 1, 1, 1, 1)`)
	mustExec(t, w, `INSERT INTO sandbox_ports (sandbox_id, port) VALUES ('x', 3000)`)
	if err := migrateBefore(context.Background(), w, "0007"); err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = allowPausedStatus(context.Background(), tx) // the CHECK is the new one already
	if err == nil || !strings.Contains(err.Error(), "refusing to guess") {
		t.Fatalf("second rebuild: %v", err)
	}
	var n int
	tx.QueryRow(`SELECT count(*) FROM sandbox_ports`).Scan(&n)
	if n != 1 {
		t.Fatalf("a refused rebuild lost rows: %d ports", n)
	}
}

// A step that fails rolls its migration back whole and leaves foreign keys on.
func TestFailedRebuildRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	w := openAt(t, path, "0006")
	mustExec(t, w, `INSERT INTO sandboxes (id, status, image, memory_bytes, nano_cpus, created_at, updated_at, last_active_at)
		VALUES ('x', 'running', 'img', 1, 1, 1, 1, 1)`)
	// A dangling reference the rebuild's foreign key check must catch.
	mustExec(t, w, `PRAGMA foreign_keys = OFF`)
	mustExec(t, w, `INSERT INTO sandbox_ports (sandbox_id, port) VALUES ('ghost', 3000)`)
	mustExec(t, w, `PRAGMA foreign_keys = ON`)
	err := migrateBefore(context.Background(), w, "0007")
	if err == nil || !strings.Contains(err.Error(), "references a missing row") {
		t.Fatalf("migrate over a dangling reference: %v", err)
	}
	var applied int
	w.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = 6`).Scan(&applied)
	var cols int
	w.QueryRow(`SELECT count(*) FROM pragma_table_info('sandboxes') WHERE name = 'wake_on'`).Scan(&cols)
	if applied != 0 || cols != 0 {
		t.Fatalf("a failed migration left traces: recorded %d, wake_on columns %d", applied, cols)
	}
	var fk int
	if err := w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign keys after a failed rebuild: %d %v", fk, err)
	}
	if _, err := w.Exec(`INSERT INTO sandbox_ports (sandbox_id, port) VALUES ('nobody', 1)`); err == nil {
		t.Fatalf("an insert referencing nothing was accepted: foreign keys are off")
	}
}
