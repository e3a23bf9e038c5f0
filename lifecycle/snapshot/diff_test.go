package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestDiffAgainstACheckpoint(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	ws, cp := filepath.Join(base, "ws"), filepath.Join(base, "cp")
	os.Mkdir(ws, 0o700)
	hostileTree(t, ws)
	app := filepath.Join(ws, "workspace/app")
	os.MkdirAll(filepath.Join(app, "node_modules/dep"), 0o755)
	os.WriteFile(filepath.Join(app, "node_modules/dep/index.js"), []byte("dep"), 0o644)
	os.MkdirAll(filepath.Join(app, "src/old"), 0o755)
	os.WriteFile(filepath.Join(app, "src/old/a.js"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(app, "src/old/b.js"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(app, "becomes-dir"), []byte("file"), 0o644)
	if _, err := Copy(context.Background(), ws, cp, Options{Exclude: exclude}); err != nil {
		t.Fatal(err)
	}

	// What an agent does.
	later := time.Now().Add(time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(app, "new.ts"), []byte("added"), 0o644))
	must(os.WriteFile(filepath.Join(app, "index.html"), []byte("edited"), 0o644))
	must(os.Remove(filepath.Join(app, "secret")))
	must(os.RemoveAll(filepath.Join(app, "src/old")))
	must(os.Remove(filepath.Join(app, "becomes-dir")))
	must(os.MkdirAll(filepath.Join(app, "becomes-dir"), 0o755))
	must(os.WriteFile(filepath.Join(app, "becomes-dir/inside"), []byte("x"), 0o644))
	must(os.Chmod(filepath.Join(app, "run.sh"), 0o644))
	must(os.Remove(filepath.Join(app, "relative")))
	must(os.Symlink("run.sh", filepath.Join(app, "relative")))
	// Touched, same bytes: not a change.
	must(os.Chtimes(filepath.Join(app, "big.bin"), later, later))
	// Inside a skipped directory: not compared at all.
	must(os.WriteFile(filepath.Join(app, "node_modules/dep/index.js"), []byte("DEP"), 0o644))
	must(os.WriteFile(filepath.Join(app, "node_modules/dep/new.js"), []byte("new"), 0o644))
	must(os.WriteFile(filepath.Join(ws, "outside-app"), []byte("not in the app dir"), 0o644))

	skip := func(name string) bool { return name == "node_modules" }
	got, truncated, err := Diff(context.Background(), cp, ws, "workspace/app", DiffOptions{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{"becomes-dir", Deleted},
		{"becomes-dir/inside", Added},
		{"index.html", Modified},
		{"new.ts", Added},
		{"relative", Modified},
		{"run.sh", Modified},
		{"secret", Deleted},
		{"src/old/a.js", Deleted},
		{"src/old/b.js", Deleted},
	}
	if truncated || !slices.Equal(got, want) {
		t.Errorf("diff (truncated %v):\n got %v\nwant %v", truncated, got, want)
	}

	got, truncated, err = Diff(context.Background(), cp, ws, "workspace/app", DiffOptions{Skip: skip, MaxChanges: 3})
	if err != nil || !truncated || len(got) != 3 {
		t.Errorf("diff bounded to 3 changes: %d changes, truncated %v, %v", len(got), truncated, err)
	}

	// An app dir that is a symlink on one side is not followed: that side is empty.
	must(os.RemoveAll(filepath.Join(ws, "workspace")))
	must(os.Symlink(filepath.Join(cp, "workspace"), filepath.Join(ws, "workspace")))
	got, _, err = Diff(context.Background(), cp, ws, "workspace/app", DiffOptions{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if c.Change != Deleted {
			t.Errorf("through a symlinked app dir: %v, want every file deleted", c)
		}
	}
	if len(got) < 8 {
		t.Errorf("through a symlinked app dir: %d changes, want every file of the checkpoint deleted", len(got))
	}
}
