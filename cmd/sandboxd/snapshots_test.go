package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

type snapshotJSON struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	SandboxID string `json:"sandbox_id"`
	Name      string `json:"name"`
	TaskID    string `json:"task_id"`
	Method    string `json:"method"`
	Config    struct {
		EnvKeys []string `json:"env_keys"`
	} `json:"config"`
}

// snapshotsOf lists a sandbox's snapshots as tok sees them.
func snapshotsOf(t *testing.T, d *daemon, tok, id string) []snapshotJSON {
	t.Helper()
	code, body := tenantCall(t, d, tok, "GET", "/v1/sandboxes/"+id+"/snapshots", "")
	var out struct{ Snapshots []snapshotJSON }
	if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("list snapshots of %s: %d %s", id, code, body)
	}
	return out.Snapshots
}

// page is what a sandbox's service on port 3000 serves of its app's index.html, once it
// serves anything ("" until then).
func page(t *testing.T, d *daemon, id string) string {
	t.Helper()
	resp, body := preview(t, d, id, 3000, "GET", "/file?path=index.html", "", nil)
	if resp.StatusCode != 200 {
		return ""
	}
	return body
}

// unowned is a tree listing without its owners, and the owners it had: a copy that becomes
// another sandbox's is given to that sandbox's uid (issue 12), all else kept.
func unowned(lines []string) ([]string, map[string]bool) {
	owners := map[string]bool{}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = ownerField.ReplaceAllStringFunc(l, func(o string) string { owners[o] = true; return "" })
	}
	return out, owners
}

var ownerField = regexp.MustCompile(` owner=\d+:\d+`)

// sameTreeOtherOwner fails unless got is want but for its owner: one, not want's.
func sameTreeOtherOwner(t *testing.T, what string, want, got []string) {
	t.Helper()
	w, wo := unowned(want)
	g, gol := unowned(got)
	if !slices.Equal(w, g) {
		t.Errorf("%s differs:\n%s", what, testutil.DiffListings(w, g))
	}
	for o := range gol {
		if wo[o] || len(gol) != 1 {
			t.Errorf("%s: owners %v, want one of its own (the source's were %v)", what, gol, wo)
		}
	}
}

func waitPage(t *testing.T, d *daemon, id, want string) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, id+" serving "+want, func() bool { return page(t, d, id) == want })
}

// Issue 18 end to end, on the real engine: a snapshot, a fork whose preview serves the same
// page and which is independent both ways, a restore that gives back the tree byte for
// byte, a task's revert after the fake agent created and edited files and a file was
// deleted meanwhile, templates across tenants, and bad input that changes nothing. The
// data dir is the temp dir, so copies take the fallback path; lifecycle/snapshot proves
// btrfs and XFS.
func TestSnapshotsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_API_TOKENS"] = "root:r00t-secret,alice:alice-secret:tenant=a,bob:bob-secret:tenant=b"
	d := e.start()
	const root, alice, bob = "r00t-secret", "alice-secret", "bob-secret"
	ws := func(id string) string { return filepath.Join(e.data(), "workspaces", id) }
	tree := func(id string) []string { return testutil.TreeListing(t, ws(id), ".sandboxd") }
	must := func(tok, method, path, body string, want int) string {
		t.Helper()
		code, out := tenantCall(t, d, tok, method, path, body)
		if code != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, code, out, want)
		}
		return out
	}
	exec := func(id, script string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"cmd": []string{"sh", "-c", script}})
		out := must(alice, "POST", "/v1/sandboxes/"+id+"/exec", string(b), 200)
		if !strings.Contains(out, `"exit_code":0`) {
			t.Fatalf("exec %q: %s", script, out)
		}
	}

	must(alice, "POST", "/v1/sandboxes", `{"id":"a--src","env":{"PORT":"3100","ANTHROPIC_API_KEY":"`+providerKey+`","SECRET_TOKEN":"hunter2-snapshot-secret"},
		"services":[{"name":"web","cmd":["devserver"],"cwd":"workspace/app","env":{"PORT":"3000"},"port":3000}]}`, 201)
	exec("a--src", `cd ~/workspace/app && printf '<h1>v1</h1>' > index.html && echo old > old.txt && chmod 600 old.txt &&
		mkdir -p deep/a/b/c && echo x > deep/a/b/c/f && ln -s /etc/passwd escape && ln -s index.html rel &&
		mkfifo pipe && printf 'x' > "$(printf 'new\nline')" && ln old.txt hard`)
	waitPage(t, d, "a--src", "<h1>v1</h1>")
	v1 := tree("a--src")

	var snap snapshotJSON
	json.Unmarshal([]byte(must(alice, "POST", "/v1/sandboxes/a--src/snapshots", `{"name":"v1"}`, 201)), &snap)
	if !strings.HasPrefix(snap.ID, "snap-") || snap.Kind != "snapshot" || snap.Name != "v1" || snap.Method == "" ||
		!slices.Contains(snap.Config.EnvKeys, "SECRET_TOKEN") {
		t.Fatalf("snapshot: %+v", snap)
	}

	t.Run("bad input changes nothing", func(t *testing.T) {
		before := snapshotsOf(t, d, alice, "a--src")
		for _, c := range []struct {
			method, path, body string
			status             int
		}{
			{"POST", "/v1/sandboxes/a--src/snapshots", `{"name":"a/b"}`, 400},
			{"POST", "/v1/sandboxes/a--src/snapshots", `{"name":"a\u0000b"}`, 400},
			{"POST", "/v1/sandboxes/a--src/restore", `{"snapshot":"snap-01j0000000000000000000000x"}`, 404},
			{"POST", "/v1/sandboxes/a--src/restore", `{"snapshot":"../../etc"}`, 404},
			{"POST", "/v1/sandboxes/a--src/restore", `{}`, 400},
			{"DELETE", "/v1/sandboxes/a--src/snapshots/snap-01j0000000000000000000000x", "", 404},
			{"POST", "/v1/sandboxes", `{"from":"snap-01j0000000000000000000000x"}`, 404},
			{"POST", "/v1/sandboxes/a--src/fork", `{"id":"a--src"}`, 409},
		} {
			if code, body := tenantCall(t, d, alice, c.method, c.path, c.body); code != c.status {
				t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, body, c.status)
			}
		}
		if after := snapshotsOf(t, d, alice, "a--src"); len(after) != len(before) {
			t.Errorf("snapshots %d, then %d", len(before), len(after))
		}
		if got := tree("a--src"); !slices.Equal(got, v1) {
			t.Errorf("the workspace changed:\n%s", testutil.DiffListings(v1, got))
		}
		if left, _ := filepath.Glob(filepath.Join(e.data(), "workspaces", ".tmp-*")); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	// Alice changes her app, then forks it: the fork serves the same page.
	exec("a--src", `cd ~/workspace/app && printf '<h1>v2</h1>' > index.html && rm old.txt && echo new > new.txt`)
	v2 := tree("a--src")
	must(alice, "POST", "/v1/sandboxes/a--src/fork", `{"id":"a--fork"}`, 201)
	waitPage(t, d, "a--fork", "<h1>v2</h1>")
	sameTreeOtherOwner(t, "the fork's workspace", v2, tree("a--fork"))
	must(alice, "POST", "/v1/sandboxes/a--src/fork", `{"id":"a--fork"}`, 409) // taken: nothing changes
	exec("a--fork", `printf '<h1>fork only</h1>' > ~/workspace/app/index.html`)
	if got := page(t, d, "a--src"); got != "<h1>v2</h1>" {
		t.Errorf("the fork's change shows in the source: %q", got)
	}
	exec("a--src", `printf '<h1>source only</h1>' > ~/workspace/app/index.html`)
	if got := page(t, d, "a--fork"); got != "<h1>fork only</h1>" {
		t.Errorf("the source's change shows in the fork: %q", got)
	}
	// A deleted sandbox keeps its workspace: a fork onto its id would land on its files.
	must(alice, "DELETE", "/v1/sandboxes/a--fork", "", 200)
	if code, body := tenantCall(t, d, alice, "POST", "/v1/sandboxes/a--src/fork", `{"id":"a--fork"}`); code != 409 || !strings.Contains(body, "deleted sandbox") {
		t.Errorf("a fork onto a kept workspace: %d %s", code, body)
	}
	if list := must(alice, "GET", "/v1/sandboxes/a--src/snapshots", "", 200); strings.Contains(list, "hunter2") {
		t.Errorf("a snapshot listing shows an env value: %s", list)
	}

	// Restore: the tree of the snapshot, byte for byte, and the service serves it.
	must(alice, "POST", "/v1/sandboxes/a--src/restore", `{"snapshot":"`+snap.ID+`"}`, 200)
	if got := tree("a--src"); !slices.Equal(got, v1) {
		t.Fatalf("the restored workspace differs from the snapshot:\n%s", testutil.DiffListings(v1, got))
	}
	waitPage(t, d, "a--src", "<h1>v1</h1>")

	t.Run("tenants and templates", func(t *testing.T) {
		// Bob cannot reach alice's snapshot, by any way in.
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/sandboxes", `{"from":"` + snap.ID + `"}`},
			{"POST", "/v1/sandboxes/a--src/fork", `{}`},
			{"GET", "/v1/sandboxes/a--src/snapshots", ""},
			{"POST", "/v1/sandboxes/a--src/restore", `{"snapshot":"` + snap.ID + `"}`},
		} {
			if code, body := tenantCall(t, d, bob, c.method, c.path, c.body); code != 404 {
				t.Errorf("bob %s %s: %d %s, want 404", c.method, c.path, code, body)
			}
		}
		if code, body := tenantCall(t, d, bob, "POST", "/v1/templates", `{"name":"mine","snapshot":"`+snap.ID+`"}`); code != 403 {
			t.Errorf("bob publishes a template: %d %s", code, body)
		}
		must(root, "POST", "/v1/templates", `{"name":"vite-react","snapshot":"`+snap.ID+`"}`, 201)
		must(root, "POST", "/v1/templates", `{"name":"vite-react","snapshot":"`+snap.ID+`"}`, 409)
		if list := must(bob, "GET", "/v1/templates", "", 200); !strings.Contains(list, `"name":"vite-react"`) || strings.Contains(list, "hunter2") {
			t.Errorf("bob lists templates: %s", list)
		}
		// Bob starts from the template: alice's v1 app, as his own sandbox.
		var sb sandboxJSON
		json.Unmarshal([]byte(must(bob, "POST", "/v1/sandboxes", `{"template":"vite-react","id":"b--app"}`, 201)), &sb)
		sameTreeOtherOwner(t, "the template's sandbox", v1, tree("b--app"))
		waitPage(t, d, "b--app", "<h1>v1</h1>")
		must(root, "DELETE", "/v1/templates/vite-react", "", 200)
		if code, _ := tenantCall(t, d, bob, "POST", "/v1/sandboxes", `{"template":"vite-react"}`); code != 404 {
			t.Errorf("a deleted template: %d, want 404", code)
		}
		must(bob, "POST", "/v1/sandboxes/b--app/purge", "", 200)
	})

	t.Run("revert after a task", func(t *testing.T) {
		exec("a--src", `rm -f /tmp/go && echo "$RANDOM" > ~/workspace/app/old.txt`)
		before := tree("a--src")
		// The fake agent waits for /tmp/go before it writes index.html and notes.md and edits
		// index.html; meanwhile a file is deleted, and a restore or revert is refused.
		var task taskJSON
		code, body := tenantCall(t, d, alice, "POST", "/v1/sandboxes/a--src/tasks", `{"prompt":"subagent edit wait=/tmp/go","agent":"opencode"}`)
		if code != 202 || json.Unmarshal([]byte(body), &task) != nil {
			t.Fatalf("start task: %d %s", code, body)
		}
		must(alice, "POST", "/v1/sandboxes/a--src/restore", `{"snapshot":"`+snap.ID+`"}`, 409)
		must(alice, "POST", "/v1/sandboxes/a--src/tasks/"+task.ID+"/revert", "", 409)
		exec("a--src", `rm ~/workspace/app/old.txt && touch /tmp/go`)
		testutil.Eventually(t, 60*time.Second, "the task to end", func() bool {
			_, body := tenantCall(t, d, alice, "GET", "/v1/sandboxes/a--src/tasks/"+task.ID, "")
			json.Unmarshal([]byte(body), &task)
			return task.Status != "running"
		})
		changed := map[string]string{}
		for _, f := range task.FilesChanged {
			changed[f.Path] = f.Change
		}
		if changed["index.html"] != "modified" || changed["notes.md"] != "added" || changed["old.txt"] != "deleted" {
			t.Errorf("task %s: files changed %v", task.Status, task.FilesChanged)
		}
		var cps []snapshotJSON
		for _, s := range snapshotsOf(t, d, alice, "a--src") {
			if s.Kind == "checkpoint" && s.TaskID == task.ID {
				cps = append(cps, s)
			}
		}
		if len(cps) != 1 {
			t.Errorf("checkpoints of the task: %+v", cps)
		}
		if slices.Equal(tree("a--src"), before) {
			t.Fatal("the task changed nothing")
		}
		must(alice, "POST", "/v1/sandboxes/a--src/tasks/"+task.ID+"/revert", "", 200)
		if got := tree("a--src"); !slices.Equal(got, before) {
			t.Fatalf("the reverted workspace differs from before the task:\n%s", testutil.DiffListings(before, got))
		}
		must(alice, "POST", "/v1/sandboxes/a--src/tasks/01j0000000000000000000000x/revert", "", 404)
	})

	// Deleting a snapshot removes its tree; purging a sandbox removes all of its.
	must(alice, "DELETE", "/v1/sandboxes/a--src/snapshots/"+snap.ID, "", 200)
	if _, err := os.Stat(filepath.Join(e.data(), "snapshots", "a--src", snap.ID)); !os.IsNotExist(err) {
		t.Errorf("a deleted snapshot's tree: %v", err)
	}
	must(alice, "POST", "/v1/sandboxes/a--src/purge", "", 200)
	if _, err := os.Stat(filepath.Join(e.data(), "snapshots", "a--src")); !os.IsNotExist(err) {
		t.Errorf("a purged sandbox's snapshots: %v", err)
	}
}
