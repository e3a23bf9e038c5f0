package task

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// files_changed is the difference between the app dir and the task's checkpoint:
// dependencies and caches left out, symlinks listed as themselves and never followed.
func TestFilesChangedAgainstTheCheckpoint(t *testing.T) {
	h := newHarness(t)
	defer h.close()
	app := filepath.Join(h.ws, "workspace", "app")
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(app, p)), 0o755)
		if err := os.WriteFile(filepath.Join(app, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keep.txt", "same")
	write("touched.txt", "same bytes")
	write("edit.txt", "old")
	write("gone.txt", "x")
	write("node_modules/dep/index.js", "ignored")
	const task = "01jabcdefghjkmnpqrstvwxyz0"
	if _, err := h.fake.Checkpoint(h.ctx, "sb", task); err != nil {
		t.Fatal(err)
	}
	write("edit.txt", "new")
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(app, "touched.txt"), later, later)
	os.Remove(filepath.Join(app, "gone.txt"))
	write("src/new.ts", "added")
	write("node_modules/dep/other.js", "still ignored")
	os.Symlink("/etc", filepath.Join(app, "etc-link"))
	got, truncated := h.r.filesChanged(h.ctx, "sb", task)
	want := []FileChange{{Path: "edit.txt", Change: "modified"}, {Path: "etc-link", Change: "added"}, {Path: "gone.txt", Change: "deleted"}, {Path: "src/new.ts", Change: "added"}}
	if truncated || !reflect.DeepEqual(got, want) {
		t.Fatalf("changes = %v (truncated %v), want %v", got, truncated, want)
	}
	if got, _ := h.r.filesChanged(h.ctx, "sb", "01jzzzzzzzzzzzzzzzzzzzzzz0"); got != nil {
		t.Fatalf("a task without a checkpoint: changes %v, want none", got)
	}
}

func TestScrub(t *testing.T) {
	secrets := secretValues(map[string]string{"ANTHROPIC_API_KEY": "sk-ant-123456", "SHORT": "ab"})
	got := scrub(`{"text":"key is sk-ant-123456, short ab"}`, secrets)
	if got != `{"text":"key is [redacted], short ab"}` {
		t.Fatalf("scrub = %s", got)
	}
	if !looksSecret("OPENAI_API_KEY") || !looksSecret("github_token") || looksSecret("PORT") {
		t.Fatal("looksSecret")
	}
}

// A FIFO the sandbox plants where the runner reads an agent's log is refused at once:
// opening it must never hang a task runner.
func TestPlantedFIFODoesNotBlock(t *testing.T) {
	ws := t.TempDir()
	p := filepath.Join(ws, taskLog("01jabcdefghjkmnpqrstvwxyz0"))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	done := make(chan struct{})
	j := &job{t: store.Task{ID: "01jabcdefghjkmnpqrstvwxyz0"}}
	go func() {
		defer close(done)
		j.consume(context.Background(), root, true)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reading a planted FIFO blocked")
	}
	if j.offset != 0 {
		t.Errorf("consumed %d bytes of a FIFO", j.offset)
	}
}
