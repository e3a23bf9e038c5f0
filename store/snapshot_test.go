package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestSnapshotsAndTemplates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	at := time.UnixMilli(1_700_000_000_000).UTC()
	sec := SnapshotSecrets{Env: map[string]string{"TOKEN": "s3cret"}, ServiceEnv: map[string]map[string]string{"web": {"DB": "pw"}}}
	snap := func(id, kind, sandbox string, n int) Snapshot {
		return Snapshot{ID: id, Kind: kind, SandboxID: sandbox, Tenant: "acme", Name: "n" + id, Method: "copy",
			Config:    SnapshotConfig{Image: "img", Ports: []int{3000}, EnvKeys: []string{"TOKEN"}, Services: []Service{{Name: "web", Cmd: []string{"x"}}}},
			CreatedAt: at.Add(time.Duration(n) * time.Minute)}
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := db.CreateSnapshot(ctx, snap(id, SnapshotUser, "sb1", i), sec, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateSnapshot(ctx, snap("d", SnapshotUser, "sb1", 4), sec, 3); !errors.Is(err, ErrFull) {
		t.Errorf("a fourth snapshot with a limit of 3: %v, want ErrFull", err)
	}
	if err := db.CreateSnapshot(ctx, snap("a", SnapshotUser, "sb2", 0), sec, 0); !errors.Is(err, ErrConflict) {
		t.Errorf("a taken id: %v, want ErrConflict", err)
	}
	got, err := db.GetSnapshot(ctx, "b")
	if err != nil || got.Name != "nb" || got.Config.Image != "img" || got.Tenant != "acme" || !got.CreatedAt.Equal(at.Add(time.Minute)) {
		t.Errorf("get: %+v %v", got, err)
	}
	if s, err := db.SnapshotSecrets(ctx, "b"); err != nil || s.Env["TOKEN"] != "s3cret" || s.ServiceEnv["web"]["DB"] != "pw" {
		t.Errorf("secrets: %+v %v", s, err)
	}
	if _, err := db.GetSnapshot(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}

	// Templates: one name each.
	tpl := snap("t1", SnapshotTemplate, "", 0)
	tpl.Name = "vite-react"
	if err := db.CreateSnapshot(ctx, tpl, sec, 0); err != nil {
		t.Fatal(err)
	}
	tpl.ID = "t2"
	if err := db.CreateSnapshot(ctx, tpl, sec, 0); !errors.Is(err, ErrConflict) {
		t.Errorf("a second template named vite-react: %v, want ErrConflict", err)
	}
	if got, err := db.Template(ctx, "vite-react"); err != nil || got.ID != "t1" {
		t.Errorf("template by name: %+v %v", got, err)
	}

	// Checkpoints: the newest keep by count, and none older than the cutoff.
	for i := range 5 {
		c := snap("cp"+string(rune('0'+i)), SnapshotCheckpoint, "sb1", 10+i)
		c.TaskID = "task" + string(rune('0'+i))
		if err := db.CreateSnapshot(ctx, c, SnapshotSecrets{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := db.TaskCheckpoint(ctx, "task2"); err != nil || c.ID != "cp2" {
		t.Errorf("checkpoint of task2: %+v %v", c, err)
	}
	gone, err := db.PruneCheckpoints(ctx, "sb1", 3, at.Add(13*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range gone {
		ids = append(ids, s.ID)
	}
	if len(ids) != 3 || ids[0] != "cp2" || ids[1] != "cp1" || ids[2] != "cp0" {
		t.Errorf("pruned %v, want cp2 (by age), cp1 and cp0", ids)
	}
	list, _ := db.ListSnapshots(ctx, "sb1")
	if len(list) != 5 || list[0].ID != "cp4" || list[len(list)-1].ID != "a" {
		t.Errorf("list after prune: %d, first %s", len(list), list[0].ID)
	}

	// Purge removes a sandbox's snapshots, and no template.
	if _, err := db.PurgeSandbox(ctx, "sb1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.ListSnapshots(ctx, "sb1"); len(list) != 0 {
		t.Errorf("after purge, %d snapshots remain", len(list))
	}
	if list, _ := db.ListTemplates(ctx); len(list) != 1 {
		t.Errorf("after purge, %d templates, want 1", len(list))
	}
}

// A snapshot's env values are sealed at rest like a sandbox's, and a key rotation seals
// them again: after it, the new key alone opens them.
func TestSnapshotSecretsSealedAndRotated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	ctx := context.Background()
	old, _ := NewSealer(key(1))
	db, err := Open(ctx, path, WithSealer(old))
	if err != nil {
		t.Fatal(err)
	}
	sec := SnapshotSecrets{Env: map[string]string{"TOKEN": "snapshot-secret-5e1f"}, ServiceEnv: map[string]map[string]string{"web": {"DB": "service-secret-77aa"}}}
	s := Snapshot{ID: "snap1", Kind: SnapshotUser, SandboxID: "sb", Method: "copy", CreatedAt: time.Now()}
	if err := db.CreateSnapshot(ctx, s, sec, 0); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, v := range []string{"snapshot-secret-5e1f", "service-secret-77aa"} {
		if hits := grepDir(t, dir, v); len(hits) > 0 {
			t.Errorf("%s in clear in %v", v, hits)
		}
	}
	rotated, _ := NewSealer(key(2), key(1))
	if db, err = Open(ctx, path, WithSealer(rotated)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	fresh, _ := NewSealer(key(2))
	if db, err = Open(ctx, path, WithSealer(fresh)); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.SnapshotSecrets(ctx, "snap1")
	if err != nil || got.Env["TOKEN"] != "snapshot-secret-5e1f" || got.ServiceEnv["web"]["DB"] != "service-secret-77aa" {
		t.Fatalf("secrets with the new key alone: %+v, %v", got, err)
	}
}
