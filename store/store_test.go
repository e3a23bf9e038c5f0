package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func sample(id string) *Sandbox {
	return &Sandbox{
		ID: id, Status: StatusCreating, Image: "sandboxd/testkit:latest",
		Ports: []int{3000, 5173}, Labels: map[string]string{"user_id": "u1"},
		Services:    []Service{{Name: "web", Cmd: []string{"devserver"}, Port: 3000, Env: map[string]string{"PORT": "3000"}}},
		MemoryBytes: 4 << 30, NanoCPUs: 2e9, IdleTimeout: 5 * time.Minute, IdlePolicy: IdleSleep,
		CreatedAt: t0, UpdatedAt: t0, LastActiveAt: t0,
	}
}

func TestCreateGetRoundTrip(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	in := sample("abc")
	if err := db.CreateSandbox(ctx, in, map[string]string{"SECRET": "hunter2", "A": "1"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	want := *in
	want.EnvKeys = []string{"A", "SECRET"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	env, err := db.SandboxEnv(ctx, "abc")
	if err != nil || env["SECRET"] != "hunter2" || len(env) != 2 {
		t.Fatalf("env = %v, %v", env, err)
	}
	if err := db.CreateSandbox(ctx, sample("abc"), nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: err = %v, want ErrConflict", err)
	}
	if _, err := db.GetSandbox(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: err = %v", err)
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	db, path := openTest(t)
	if err := db.CreateSandbox(context.Background(), sample("keep"), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	if _, err := db2.GetSandbox(context.Background(), "keep"); err != nil {
		t.Fatalf("row lost across reopen: %v", err)
	}
	files, _ := migrations.ReadDir("migrations")
	var n int
	if err := db2.r.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(files) {
		t.Fatalf("schema_migrations rows = %d, want one per migration (%d): %v", n, len(files), err)
	}
	var mode string
	if err := db2.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		sb := sample(fmt.Sprintf("sb%d", i))
		if i%2 == 0 {
			sb.Status = StatusRunning
			sb.Labels = map[string]string{"user_id": "u2", "project_id": "p"}
		}
		if err := db.CreateSandbox(ctx, sb, nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		opt  ListOptions
		want []string
	}{
		{"all", ListOptions{}, []string{"sb0", "sb1", "sb2", "sb3", "sb4", "sb5", "sb6"}},
		{"status", ListOptions{Status: StatusRunning}, []string{"sb0", "sb2", "sb4", "sb6"}},
		{"label", ListOptions{Labels: map[string]string{"user_id": "u1"}}, []string{"sb1", "sb3", "sb5"}},
		{"two labels", ListOptions{Labels: map[string]string{"user_id": "u2", "project_id": "p"}}, []string{"sb0", "sb2", "sb4", "sb6"}},
		{"page 1", ListOptions{Limit: 3}, []string{"sb0", "sb1", "sb2"}},
		{"page 2", ListOptions{Limit: 3, After: "sb2"}, []string{"sb3", "sb4", "sb5"}},
		{"last page", ListOptions{Limit: 3, After: "sb5"}, []string{"sb6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := db.ListSandboxes(ctx, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, sb := range list {
				ids = append(ids, sb.ID)
				if len(sb.Ports) != 2 || len(sb.Services) != 1 {
					t.Errorf("%s: details not loaded: %+v", sb.ID, sb)
				}
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Fatalf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestUpdates(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if err := db.CreateSandbox(ctx, sample("u"), map[string]string{"K": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRuntime(ctx, "u", Runtime{Status: StatusRunning, ContainerID: "c1", IP: "172.18.0.2"}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Hour)
	if err := db.TouchActive(ctx, map[string]time.Time{"u": later, "gone": later}); err != nil {
		t.Fatal(err)
	}
	if err := db.TouchActive(ctx, map[string]time.Time{"u": t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	svc := []Service{{Name: "a", Cmd: []string{"x"}}, {Name: "b", Cmd: []string{"y"}}}
	if err := db.SetServices(ctx, "u", svc, []int{3000, 8080}, later); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusRunning || got.ContainerID != "c1" || got.IP != "172.18.0.2" {
		t.Errorf("runtime not stored: %+v", got)
	}
	if !got.LastActiveAt.Equal(later) {
		t.Errorf("last active = %v, want %v (never backwards)", got.LastActiveAt, later)
	}
	if len(got.Ports) != 2 || got.Ports[1] != 8080 {
		t.Errorf("ports = %v", got.Ports)
	}
	if len(got.Services) != 2 || got.Services[0].Name != "a" || got.Services[1].Name != "b" {
		t.Errorf("services = %+v", got.Services)
	}
	for _, err := range []error{
		db.SetRuntime(ctx, "nope", Runtime{Status: StatusStopped}, t0),
		db.SetServices(ctx, "nope", nil, nil, t0),
		db.SetKeepalive(ctx, "nope", t0, t0),
		db.DeleteSandbox(ctx, "nope"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("update of a missing row: err = %v, want ErrNotFound", err)
		}
	}
	if err := db.DeleteSandbox(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	env, err := db.SandboxEnv(ctx, "u")
	if err != nil || len(env) != 0 {
		t.Fatalf("env survived delete: %v %v", env, err)
	}
}

// Writers queue on the one writer connection: none of them may fail with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- db.CreateSandbox(ctx, sample(fmt.Sprintf("c%02d", i)), map[string]string{"K": "v"})
		}()
		go func() {
			defer wg.Done()
			_, err := db.ListSandboxes(ctx, ListOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, _ := db.ListSandboxes(ctx, ListOptions{})
	if len(list) != 20 {
		t.Fatalf("%d rows, want 20", len(list))
	}
}

func TestAudit(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	for _, a := range []string{"sandbox.create", "sandbox.exec"} {
		if err := db.AppendAudit(ctx, Audit{At: t0, Actor: "ci", Action: a, Target: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.AuditFor(ctx, "x")
	if err != nil || len(got) != 2 || got[1].Action != "sandbox.exec" || got[0].Actor != "ci" {
		t.Fatalf("audit = %+v, %v", got, err)
	}
}
