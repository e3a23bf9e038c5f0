package main

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// Secret values the isolation test sets; none may show in an answer, a log line, a file
// other than the one sandbox-init reads, or anything after purge.
const (
	envSecret     = "env-secret-7d41c0"
	serviceSecret = "svc-secret-93be2f"
)

// TestIsolationOnDisk is issue 12 end to end, through the sandboxd binary (its umask is
// main's): write-only secrets in every answer and log, a uid per sandbox that no host
// account has and that every way in acts as, owner-only modes everywhere under the data
// dir, nothing readable by another account, and nothing of the secrets left after purge.
func TestIsolationOnDisk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startProcess(nil)
	d := p.daemon
	writer := map[string]any{"name": "writer", "cmd": []string{"sh", "-c", "echo hi > workspace/app/by-service; exec sleep 1000"},
		"env": map[string]string{"DB_PASSWORD": serviceSecret}}
	created := rawCall(t, "POST", d.API+"/v1/sandboxes", map[string]any{"id": "iso-a", "env": map[string]string{"TOKEN": envSecret},
		"services": []any{writer}}, http.StatusCreated)
	mustCreate(t, d, map[string]any{"id": "iso-b"})

	// Write-only everywhere: every answer that holds a sandbox or a service.
	answers := map[string]string{"create": created}
	for _, path := range []string{"/v1/sandboxes/iso-a", "/v1/sandboxes", "/v1/sandboxes/iso-a/services", "/sandbox/iso-a", "/sandboxes"} {
		answers["GET "+path] = rawCall(t, "GET", d.API+path, nil, 200)
	}
	answers["PUT services"] = rawCall(t, "PUT", d.API+"/v1/sandboxes/iso-a/services", map[string]any{"services": []any{writer}}, 200)
	for what, body := range answers {
		if strings.Contains(body, envSecret) || strings.Contains(body, serviceSecret) {
			t.Errorf("%s shows a secret value: %s", what, body)
		}
	}
	if !strings.Contains(answers["GET /v1/sandboxes/iso-a"], `"env_keys":["DB_PASSWORD"]`) ||
		!strings.Contains(answers["GET /v1/sandboxes/iso-a/services"], `"env_keys":["DB_PASSWORD"]`) {
		t.Errorf("the service's env names are not shown: %s", answers["GET /v1/sandboxes/iso-a"])
	}

	// A uid each, no host account's; every way in acts as it.
	uids := map[string]int{}
	for _, id := range []string{"iso-a", "iso-b"} {
		var v struct{ UID int }
		call(t, "GET", d.API+"/v1/sandboxes/"+id, nil, &v)
		res := mustExec(t, d, id, "sh", "-c", "id -u; id -un; id -g; whoami; echo $HOME")
		if want := strconv.Itoa(v.UID) + "\nsandbox\n" + strconv.Itoa(v.UID) + "\nsandbox\n/home/sandbox\n"; res.Stdout != want {
			t.Errorf("%s: id says %q, want %q", id, res.Stdout, want)
		}
		if v.UID < 200000 || v.UID > 299999 {
			t.Errorf("%s runs as uid %d, outside the range", id, v.UID)
		}
		if u, err := user.LookupId(strconv.Itoa(v.UID)); err == nil {
			t.Errorf("%s's uid %d is the host account %q", id, v.UID, u.Username)
		}
		uids[id] = v.UID
	}
	if uids["iso-a"] == uids["iso-b"] {
		t.Fatalf("both sandboxes run as uid %d", uids["iso-a"])
	}
	if res := mustExec(t, d, "iso-a", "sh", "-c", `echo "$TOKEN"; touch workspace/app/by-exec`); res.Stdout != envSecret+"\n" {
		t.Errorf("the sandbox's own env inside it: %q", res.Stdout)
	}
	mustFile(t, "PUT", d.API+"/v1/sandboxes/iso-a/files?path=workspace/app/by-api", "x", 201)
	app := filepath.Join(e.data(), "workspaces", "iso-a", "workspace", "app")
	testutil.Eventually(t, 10*time.Second, "the service's file", func() bool { return exists(filepath.Join(app, "by-service")) })
	for _, name := range []string{"by-exec", "by-api", "by-service"} {
		if uid := owner(t, filepath.Join(app, name)); uid != uids["iso-a"] {
			t.Errorf("%s belongs to uid %d, want the sandbox's %d", name, uid, uids["iso-a"])
		}
	}

	// Modes: nothing sandboxd keeps is open to group or others; inside a workspace the
	// sandbox decides, behind its 0700 directory.
	checkModes(t, e.data(), uids)

	// Another account reads nothing under the data dir, not even names.
	if out := asNobody(t, e.data()); out != "" {
		t.Errorf("uid 65534 read under the data dir:\n%s", out)
	}

	// The secrets are only where sandbox-init reads them, until purge; then nowhere.
	services := filepath.Join(e.data(), "run", "iso-a", "services.json")
	for _, hit := range grepTree(t, e.data(), serviceSecret, envSecret) {
		if hit != services {
			t.Errorf("a secret value is in %s", hit)
		}
	}
	if code := call(t, "POST", d.API+"/v1/sandboxes/iso-a/purge", nil, nil); code != 200 {
		t.Fatalf("purge: %d", code)
	}
	if hits := grepTree(t, e.data(), serviceSecret, envSecret); len(hits) > 0 {
		t.Errorf("after purge a secret value is still in %v", hits)
	}
	if logs := d.logs.String(); strings.Contains(logs, envSecret) || strings.Contains(logs, serviceSecret) {
		t.Errorf("the log holds a secret value")
	}
	if res := mustExec(t, d, "iso-b", "echo", "fine"); res.Stdout != "fine\n" {
		t.Errorf("the other sandbox after all that: %+v", res)
	}
}

// rawCall sends a JSON request and returns the answer's body, failing on another status.
func rawCall(t *testing.T, method, url string, body any, want int) string {
	t.Helper()
	var raw jsonRaw
	if code := call(t, method, url, body, &raw); code != want {
		t.Fatalf("%s %s: %d %s", method, url, code, raw)
	}
	return string(raw)
}

// jsonRaw keeps an answer's bytes as they came.
type jsonRaw []byte

func (r *jsonRaw) UnmarshalJSON(b []byte) error { *r = append((*r)[:0], b...); return nil }

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func owner(t *testing.T, p string) int {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// checkModes walks the data dir and asserts each mode: 0700 directories and 0600 files,
// root's or (the workspaces and run dirs) the sandbox's, group and others shut out of all.
func checkModes(t *testing.T, data string, uids map[string]int) {
	t.Helper()
	workspaces := filepath.Join(data, "workspaces")
	err := filepath.WalkDir(data, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(data, p)
		if filepath.Dir(p) == workspaces {
			id := de.Name()
			if fi.Mode().Perm() != 0o700 || owner(t, p) != uids[id] {
				t.Errorf("workspace %s: mode %v owner %d, want 0700 and uid %d", id, fi.Mode().Perm(), owner(t, p), uids[id])
			}
			return fs.SkipDir // its content is the sandbox's, behind this 0700 directory
		}
		want := fs.FileMode(0o600)
		if de.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode().Perm(), want)
		}
		if parts := strings.Split(rel, string(filepath.Separator)); parts[0] == "run" && len(parts) > 1 {
			if owner(t, p) != uids[parts[1]] {
				t.Errorf("%s belongs to uid %d, want the sandbox's %d", rel, owner(t, p), uids[parts[1]])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// asNobody tries, as uid 65534, to list and read every path under data, and returns what
// it managed to.
func asNobody(t *testing.T, data string) string {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("SKIPPING the other-account check: no setpriv (util-linux)")
	}
	var paths []string
	filepath.WalkDir(data, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	script := `for p; do if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "listed $p"; else head -c1 "$p" >/dev/null 2>&1 && echo "read $p"; fi; done; echo "as $(id -u)"`
	cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script, "sh"}, paths...)...)
	out, err := cmd.Output()
	rest, ok := strings.CutSuffix(string(out), "as 65534\n")
	if err != nil || !ok {
		t.Fatalf("setpriv: %v %s", err, out)
	}
	return rest
}

// grepTree returns the files under dir that contain any of needles.
func grepTree(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	return hits
}
