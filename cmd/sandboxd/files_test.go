package main

import (
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

// fileReq sends a raw request to the files API and returns the status and body.
func fileReq(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustFile(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	code, got := fileReq(t, method, url, body)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, code, got, want)
	}
	return got
}

// hostTree is every path under dir with its mode and, for files, content.
func hostTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		got[p] = fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[p] += " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Files written through the API belong to the sandbox user and are what the sandbox sees,
// and what the sandbox writes is what the API reads.
func TestFilesShared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "fshare"})
	api := d.API + "/v1/sandboxes/fshare/files"

	mustFile(t, "PUT", api+"?path=workspace/app/new/dir/from-api.txt", "hello from the API", 201)
	res := mustExec(t, d, "fshare", "sh", "-c",
		"cd /home/sandbox/workspace/app && stat -c %u:%g new new/dir new/dir/from-api.txt && cat new/dir/from-api.txt")
	if want := "200000:200000\n200000:200000\n200000:200000\nhello from the API"; res.Stdout != want || res.ExitCode != 0 {
		t.Errorf("inside: %+v, want stdout %q", res, want)
	}
	// The sandbox user can change what the API wrote.
	if res := mustExec(t, d, "fshare", "sh", "-c", "echo changed >> /home/sandbox/workspace/app/new/dir/from-api.txt"); res.ExitCode != 0 {
		t.Errorf("append inside: %+v", res)
	}
	if got := mustFile(t, "GET", api+"?path=workspace/app/new/dir/from-api.txt", "", 200); got != "hello from the APIchanged\n" {
		t.Errorf("read back = %q", got)
	}

	mustExec(t, d, "fshare", "sh", "-c", "printf 'made inside' > /home/sandbox/workspace/app/inside.txt")
	if got := mustFile(t, "GET", api+"/content?path=workspace/app/inside.txt", "", 200); got != "made inside" {
		t.Errorf("inside.txt = %q", got)
	}
	list := mustFile(t, "GET", api+"?path=workspace/app&recursive=1", "", 200)
	for _, want := range []string{`"path":"workspace/app/inside.txt"`, `"path":"workspace/app/new/dir/from-api.txt"`} {
		if !strings.Contains(list, want) {
			t.Errorf("listing lacks %s: %s", want, list)
		}
	}
}

// The files API works on a stopped sandbox and leaves it stopped: no container start.
func TestFilesStoppedSandbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "fsleep"})
	api := d.API + "/v1/sandboxes/fsleep/files"
	if code := call(t, "POST", d.API+"/v1/sandboxes/fsleep/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	name := e.containerName("fsleep")
	inspect := func() container.InspectResponse {
		t.Helper()
		info, err := e.docker.ContainerInspect(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	before := inspect()
	if before.State.Running {
		t.Fatal("running after stop")
	}

	mustFile(t, "PUT", api+"?path=workspace/app/asleep.txt", "written while stopped", 201)
	mustFile(t, "POST", api, `{"path":"workspace/app/notes.md","content":"prior form","append":true}`, 201)
	if got := mustFile(t, "GET", api+"?path=workspace/app/asleep.txt", "", 200); got != "written while stopped" {
		t.Errorf("read = %q", got)
	}
	if list := mustFile(t, "GET", api+"?path=workspace/app", "", 200); !strings.Contains(list, "notes.md") {
		t.Errorf("list = %s", list)
	}
	mustFile(t, "POST", api+"/move", `{"from":"workspace/app/notes.md","to":"workspace/docs/notes.md"}`, 200)
	mustFile(t, "DELETE", api+"?path=workspace/docs&recursive=1", "", 200)

	if sb, code := getSandbox(t, d, "fsleep"); code != 200 || sb.Status != "stopped" {
		t.Errorf("after file operations: %d %+v", code, sb)
	}
	after := inspect()
	if after.State.Running || after.State.StartedAt != before.State.StartedAt {
		t.Errorf("the container started: running=%v started %s, was %s", after.State.Running, after.State.StartedAt, before.State.StartedAt)
	}

	// Woken, the sandbox sees what was written while it slept, owned by its user.
	if code := call(t, "POST", d.API+"/v1/sandboxes/fsleep/start", nil, nil); code != 200 {
		t.Fatalf("start: %d", code)
	}
	res := mustExec(t, d, "fsleep", "sh", "-c", "stat -c %u:%g /home/sandbox/workspace/app/asleep.txt && cat /home/sandbox/workspace/app/asleep.txt")
	if res.Stdout != "200000:200000\nwritten while stopped" {
		t.Errorf("after wake: %+v", res)
	}
}

// Symlinks the sandbox plants cannot carry the API outside its workspace: not to the
// host's /etc/passwd, not into another sandbox's workspace.
func TestFilesSandboxSymlinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "fevil"})
	mustCreate(t, d, map[string]any{"id": "fvictim"})
	evil, victim := d.API+"/v1/sandboxes/fevil/files", d.API+"/v1/sandboxes/fvictim/files"
	mustFile(t, "PUT", victim+"?path=secret.txt", "the victim's secret", 201)
	victimDir := filepath.Join(e.data(), "workspaces", "fvictim")

	links := []string{
		"ln -s /etc/passwd workspace/app/pw",
		"ln -s /home/sandbox/../../fvictim abs-climb",      // absolute: /fvictim inside, nothing on the host
		"ln -s ../fvictim victim",                          // the victim's workspace, seen from the host
		"ln -s ../../../fvictim workspace/app/deep",        // the same from deeper down
		"ln -s " + victimDir + " hostpath",                 // the victim's host path, guessed
		"ln -s victim hop && ln -s ../hop workspace/chain", // a chain that ends outside
		"ln -s " + filepath.Join(e.data(), "sandboxd.db") + " db",
	}
	res := mustExec(t, d, "fevil", "sh", "-c", "cd /home/sandbox && "+strings.Join(links, " && "))
	if res.ExitCode != 0 {
		t.Fatalf("planting links: %+v", res)
	}

	passwd := sha256File(t, "/etc/passwd")
	before := hostTree(t, victimDir)
	cases := []struct{ method, query, body string }{
		{"GET", "?path=workspace/app/pw", ""},
		{"GET", "/content?path=workspace/app/pw", ""},
		{"PUT", "?path=workspace/app/pw", "pwned"},
		{"PUT", "?path=workspace/app/pw&append=1", "pwned"},
		{"GET", "?path=victim/secret.txt", ""},
		{"GET", "?path=victim", ""},
		{"GET", "?path=hostpath&recursive=1", ""},
		{"GET", "?path=workspace/app/deep/secret.txt", ""},
		{"GET", "?path=hostpath/secret.txt", ""},
		{"GET", "?path=workspace/chain/secret.txt", ""},
		{"GET", "?path=db", ""},
		{"PUT", "?path=victim/pwned.txt", "pwned"},
		{"PUT", "?path=hostpath/secret.txt", "pwned"},
		{"PUT", "?path=workspace/app/deep/new/dir/pwned.txt", "pwned"},
		{"PUT", "?path=victim/secret.txt&append=1", "pwned"},
		{"DELETE", "?path=victim/secret.txt", ""},
		{"POST", "/move", `{"from":"victim/secret.txt","to":"stolen.txt"}`},
		{"POST", "/move", `{"from":"workspace/app/pw","to":"victim/pw","overwrite":true}`},
	}
	for _, c := range cases {
		code, body := fileReq(t, c.method, evil+c.query, c.body)
		if code != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) {
			t.Errorf("%s %s = %d %s, want 403 forbidden", c.method, c.query, code, body)
		}
		if strings.Contains(body, "root:") || strings.Contains(body, "the victim's secret") || strings.Contains(body, e.data()) {
			t.Errorf("%s %s leaked: %s", c.method, c.query, body)
		}
	}
	// "abs-climb" is absolute, so it leaves the workspace whatever it names.
	if code, body := fileReq(t, "GET", evil+"?path=abs-climb/secret.txt", ""); code != http.StatusForbidden {
		t.Errorf("abs-climb = %d %s", code, body)
	}
	if after := hostTree(t, victimDir); !maps.Equal(before, after) {
		t.Errorf("the victim's workspace changed:\nbefore %v\nafter  %v", before, after)
	}
	if sha256File(t, "/etc/passwd") != passwd {
		t.Error("/etc/passwd changed")
	}
	if _, err := os.Lstat(filepath.Join(e.data(), "workspaces", "fevil", "stolen.txt")); !os.IsNotExist(err) {
		t.Errorf("stolen.txt: %v", err)
	}
	// The links themselves are the sandbox's own and stay visible and removable.
	if list := mustFile(t, "GET", evil, "", 200); !strings.Contains(list, `"name":"victim","type":"symlink"`) {
		t.Errorf("home listing = %s", list)
	}
	mustFile(t, "DELETE", evil+"?path=victim", "", 200)
	if got := mustFile(t, "GET", victim+"?path=secret.txt", "", 200); got != "the victim's secret" {
		t.Errorf("victim's secret = %q", got)
	}
}

func sha256File(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
