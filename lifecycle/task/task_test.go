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

func TestManifestChanges(t *testing.T) {
	ws := t.TempDir()
	app := filepath.Join(ws, "workspace", "app")
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(app, p)), 0o755)
		if err := os.WriteFile(filepath.Join(app, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keep.txt", "same")
	write("edit.txt", "old")
	write("gone.txt", "x")
	write("node_modules/dep/index.js", "ignored")
	before, err := takeManifest(ws)
	if err != nil {
		t.Fatal(err)
	}
	write("edit.txt", "new content")
	os.Chtimes(filepath.Join(app, "edit.txt"), time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	os.Remove(filepath.Join(app, "gone.txt"))
	write("src/new.ts", "added")
	write("node_modules/dep/other.js", "still ignored")
	// A symlink out of the workspace is listed as itself, never followed.
	os.Symlink("/etc", filepath.Join(app, "etc-link"))
	after, err := takeManifest(ws)
	if err != nil {
		t.Fatal(err)
	}
	got := changes(before, after)
	want := []FileChange{{"edit.txt", "modified"}, {"etc-link", "added"}, {"gone.txt", "deleted"}, {"src/new.ts", "added"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes = %v, want %v", got, want)
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
