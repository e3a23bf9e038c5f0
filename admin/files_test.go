package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/files"
	"github.com/sandboxd/sandboxd/store"
)

// filesNoWaker fails the test if anything tries to wake a sandbox.
type filesNoWaker struct{ t *testing.T }

func (w filesNoWaker) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	w.t.Errorf("the files API woke sandbox %s", id)
	return netip.AddrPort{}, nil
}

type filesAuditLog struct {
	mu      sync.Mutex
	entries []store.Audit
}

func (a *filesAuditLog) AppendAudit(ctx context.Context, e store.Audit) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

// actions are the audit lines of the calls that succeeded, as "file.put demo <path>": what
// the handler recorded, the target, and its details.
func (a *filesAuditLog) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s []string
	for _, e := range a.entries {
		if e.Status < 400 {
			name, detail, _ := strings.Cut(e.Detail, " ")
			s = append(s, name+" "+e.Target+" "+detail)
		}
	}
	return s
}

// refused counts the audit lines of calls that failed, each with its error code.
func (a *filesAuditLog) refused(t *testing.T) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.entries {
		if e.Status >= 400 {
			if e.Result == "ok" || e.Result == "" || e.Actor != "operator" {
				t.Errorf("refused call audited as %+v", e)
			}
			n++
		}
	}
	return n
}

// filesEnv is the API over two sandboxes' workspaces, "demo" and "other", beside a
// secret file and a directory that belong to no sandbox.
type filesEnv struct {
	base  string
	demo  string // demo's home on the host
	url   string // http://host/v1/sandboxes/demo
	api   string // http://host
	audit *filesAuditLog
}

func newFilesEnv(t *testing.T) *filesEnv {
	t.Helper()
	base := t.TempDir()
	owner := os.Getuid()
	if owner == 0 {
		owner = 1000
	}
	for _, id := range []string{"demo", "other"} {
		if err := os.MkdirAll(filepath.Join(base, "workspaces", id, "workspace/app"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	filesHostWrite(t, filepath.Join(base, "workspaces/other/secret.txt"), "other's secret")
	filesHostWrite(t, filepath.Join(base, "secret.txt"), "top secret")
	filesHostWrite(t, filepath.Join(base, "outdir/sub/file"), "outdir content")
	workspaces := &fakeWorkspaces{
		WorkspaceFn: func(ctx context.Context, id string) (*files.Workspace, error) {
			if id != "demo" && id != "other" {
				return nil, &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "sandbox " + id + " not found"}
			}
			return files.Open(filepath.Join(base, "workspaces", id), owner, owner)
		},
	}
	audit := &filesAuditLog{}
	srv := httptest.NewServer(New(Deps{Workspaces: workspaces, Waker: filesNoWaker{t}, Audit: audit}, nil).Handler())
	t.Cleanup(srv.Close)
	return &filesEnv{base: base, demo: filepath.Join(base, "workspaces/demo"), api: srv.URL,
		url: srv.URL + "/v1/sandboxes/demo", audit: audit}
}

func filesHostWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// filesDo sends a request; headers come in name, value pairs.
func filesDo(t *testing.T, method, url string, body io.Reader, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// filesErrCode is the "code" of a JSON error answer.
func filesErrCode(body string) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

type filesListJSON struct {
	Path    string      `json:"path"`
	Entries []entryView `json:"entries"`
	Trunc   bool        `json:"truncated"`
}

func TestFilesList(t *testing.T) {
	e := newFilesEnv(t)
	filesHostWrite(t, filepath.Join(e.demo, "workspace/app/index.js"), "console.log(1)")
	filesHostWrite(t, filepath.Join(e.demo, "workspace/app/node_modules/dep/index.js"), "dep")
	os.Chmod(filepath.Join(e.demo, "workspace/app/index.js"), 0o640)

	resp, body := filesDo(t, "GET", e.url+"/files?path=workspace/app", nil)
	var l filesListJSON
	if err := json.Unmarshal([]byte(body), &l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if l.Path != "workspace/app" || len(l.Entries) != 2 || l.Trunc {
		t.Fatalf("list = %+v", l)
	}
	if got := l.Entries[0]; got.Path != "workspace/app/index.js" || got.Name != "index.js" || got.Type != "file" ||
		got.Size != 14 || got.Mode != "0640" || got.ModTime.IsZero() {
		t.Errorf("entry = %+v", got)
	}
	if !strings.Contains(body, `"mode":"0640"`) || !strings.Contains(body, `"mod_time":"`) {
		t.Errorf("JSON = %s", body)
	}

	_, body = filesDo(t, "GET", e.url+"/files?path=workspace&recursive=1", nil)
	json.Unmarshal([]byte(body), &l)
	var paths []string
	for _, en := range l.Entries {
		paths = append(paths, en.Path)
		if en.Path == "workspace/app/node_modules" && !en.Skipped {
			t.Errorf("node_modules not marked skipped: %+v", en)
		}
	}
	if want := []string{"workspace/app", "workspace/app/index.js", "workspace/app/node_modules"}; !slices.Equal(paths, want) {
		t.Errorf("recursive = %v, want %v", paths, want)
	}
	_, body = filesDo(t, "GET", e.url+"/files?path=workspace&recursive=true&all=1&limit=100", nil)
	if !strings.Contains(body, "node_modules/dep/index.js") {
		t.Errorf("all = %s", body)
	}
	_, body = filesDo(t, "GET", e.url+"/files?recursive&limit=1", nil)
	if json.Unmarshal([]byte(body), &l); l.Path != "" || len(l.Entries) != 1 || !l.Trunc {
		t.Errorf("home, limit 1 = %s", body)
	}
	resp, body = filesDo(t, "HEAD", e.url+"/files?path=workspace", nil)
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD dir: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, q := range []string{"recursive=maybe", "limit=0", "limit=x", "all=2"} {
		if resp, body := filesDo(t, "GET", e.url+"/files?"+q, nil); resp.StatusCode != 400 || filesErrCode(body) != "invalid_request" {
			t.Errorf("?%s: %d %s", q, resp.StatusCode, body)
		}
	}
}

func TestFilesRead(t *testing.T) {
	e := newFilesEnv(t)
	filesHostWrite(t, filepath.Join(e.demo, "workspace/app/data.txt"), "0123456789")
	filesHostWrite(t, filepath.Join(e.demo, "workspace/app/page.html"), "<script>alert(1)</script>")

	for _, route := range []string{"/files", "/files/content"} {
		t.Run(route, func(t *testing.T) {
			resp, body := filesDo(t, "GET", e.url+route+"?path=workspace/app/data.txt", nil)
			if resp.StatusCode != 200 || body != "0123456789" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("read: %d %q %v", resp.StatusCode, body, resp.Header)
			}
			resp, body = filesDo(t, "GET", e.url+route+"?path=workspace/app/data.txt", nil, "Range", "bytes=2-5")
			if resp.StatusCode != 206 || body != "2345" || resp.Header.Get("Content-Range") != "bytes 2-5/10" {
				t.Errorf("range: %d %q %v", resp.StatusCode, body, resp.Header)
			}
			resp, body = filesDo(t, "HEAD", e.url+route+"?path=workspace/app/data.txt", nil)
			if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "10" {
				t.Errorf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
			}
			later := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
			if resp, _ := filesDo(t, "GET", e.url+route+"?path=workspace/app/data.txt", nil, "If-Modified-Since", later); resp.StatusCode != 304 {
				t.Errorf("If-Modified-Since: %d", resp.StatusCode)
			}
			resp, _ = filesDo(t, "GET", e.url+route+"?path=workspace/app/page.html", nil)
			if resp.Header.Get("Content-Security-Policy") != "sandbox" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("html served without the sandbox headers: %v", resp.Header)
			}
			if resp, body := filesDo(t, "GET", e.url+route+"?path=workspace/app/missing", nil); resp.StatusCode != 404 || filesErrCode(body) != "not_found" {
				t.Errorf("missing: %d %s", resp.StatusCode, body)
			}
		})
	}
	resp, body := filesDo(t, "GET", e.url+"/files/content?path=workspace/app", nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "is a directory") {
		t.Errorf("content of a dir: %d %s", resp.StatusCode, body)
	}
}

func TestFilesPut(t *testing.T) {
	e := newFilesEnv(t)
	host := func(p string) string {
		b, err := os.ReadFile(filepath.Join(e.demo, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	var out struct {
		Path, Mode string
		Size       int64
	}
	cases := []struct {
		name, method, query, ctype, body string
		status                           int
		path, content, mode              string
	}{
		{"raw new", "PUT", "?path=workspace/app/new/a.txt", "text/plain", "hello", 201, "workspace/app/new/a.txt", "hello", "0644"},
		{"raw overwrite", "PUT", "?path=workspace/app/new/a.txt", "", "bye", 200, "workspace/app/new/a.txt", "bye", "0644"},
		{"raw POST", "POST", "?path=b.txt", "application/octet-stream", "b", 201, "b.txt", "b", "0644"},
		{"raw JSON file", "PUT", "?path=package.json", "application/json", `{"name":"x"}`, 201, "package.json", `{"name":"x"}`, "0644"},
		{"append", "POST", "?path=workspace/app/new/a.txt&append=1", "", "+more", 200, "workspace/app/new/a.txt", "bye+more", "0644"},
		{"append creates", "PUT", "?path=log.txt&append=true", "", "one", 201, "log.txt", "one", "0644"},
		{"mode", "PUT", "?path=run.sh&mode=0755", "", "#!/bin/sh", 201, "run.sh", "#!/bin/sh", "0755"},
		{"mode kept", "PUT", "?path=run.sh", "", "#!/bin/bash", 200, "run.sh", "#!/bin/bash", "0755"},
		{"prior JSON form", "POST", "", "application/json", `{"path":"workspace/app/AGENTS.md","content":"# hi\n"}`, 201, "workspace/app/AGENTS.md", "# hi\n", "0644"},
		{"prior JSON append", "PUT", "", "application/json; charset=utf-8", `{"path":"workspace/app/AGENTS.md","content":"more","append":true}`, 200, "workspace/app/AGENTS.md", "# hi\nmore", "0644"},
		{"prior JSON form, curl's default type", "POST", "", "application/x-www-form-urlencoded", `{"path":"curl.txt","content":"c"}`, 201, "curl.txt", "c", "0644"},
		{"JSON base64 and mode", "PUT", "", "application/json", `{"path":"bin/x","content":"` + base64.StdEncoding.EncodeToString([]byte{0, 1, 2}) + `","encoding":"base64","mode":"0700"}`, 201, "bin/x", "\x00\x01\x02", "0700"},
	}
	for _, c := range cases {
		resp, body := filesDo(t, c.method, e.url+"/files"+c.query, strings.NewReader(c.body), "Content-Type", c.ctype)
		out.Path, out.Mode, out.Size = "", "", 0
		json.Unmarshal([]byte(body), &out)
		if resp.StatusCode != c.status || out.Path != c.path || out.Mode != c.mode || out.Size != int64(len(c.content)) {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
		}
		if got := host(c.path); got != c.content {
			t.Errorf("%s: on disk %q, want %q", c.name, got, c.content)
		}
	}
	if fi, err := os.Stat(filepath.Join(e.demo, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v %v", fi, err)
	}

	bad := []struct {
		name, query, ctype, body string
		status                   int
		code                     string
	}{
		{"no path", "", "text/plain", "x", 400, "invalid_request"},
		{"no path, empty body", "", "", "", 400, "invalid_request"},
		{"JSON without path", "", "application/json", `{"content":"x"}`, 400, "invalid_request"},
		{"JSON unknown field", "", "application/json", `{"path":"x","contents":"x"}`, 400, "invalid_request"},
		{"JSON bad base64", "", "application/json", `{"path":"x","content":"!!","encoding":"base64"}`, 400, "invalid_request"},
		{"JSON bad encoding", "", "application/json", `{"path":"x","content":"x","encoding":"rot13"}`, 400, "invalid_request"},
		{"JSON trailing data", "", "application/json", `{"path":"x"} {}`, 400, "invalid_request"},
		{"bad mode", "?path=x&mode=999", "", "x", 400, "invalid_request"},
		{"setuid mode", "?path=x&mode=4755", "", "x", 400, "invalid_request"},
		{"onto a directory", "?path=workspace", "", "x", 400, "invalid_request"},
		{"parent is a file", "?path=b.txt/x", "", "x", 400, "invalid_request"},
	}
	for _, c := range bad {
		resp, body := filesDo(t, "PUT", e.url+"/files"+c.query, strings.NewReader(c.body), "Content-Type", c.ctype)
		if resp.StatusCode != c.status || filesErrCode(body) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.status, c.code)
		}
	}
	if _, err := os.Lstat(filepath.Join(e.demo, "x")); !os.IsNotExist(err) {
		t.Errorf("a refused write left x: %v", err)
	}
	want := []string{
		"file.put demo workspace/app/new/a.txt", "file.put demo workspace/app/new/a.txt", "file.put demo b.txt",
		"file.put demo package.json", "file.put demo workspace/app/new/a.txt", "file.put demo log.txt",
		"file.put demo run.sh", "file.put demo run.sh", "file.put demo workspace/app/AGENTS.md",
		"file.put demo workspace/app/AGENTS.md", "file.put demo curl.txt", "file.put demo bin/x",
	}
	if got := e.audit.actions(); !slices.Equal(got, want) {
		t.Errorf("audit = %q", got)
	}
}

// A body over the cap answers 413 and changes nothing, whether its length is declared
// or it arrives chunked.
func TestFilesPutTooLarge(t *testing.T) {
	e := newFilesEnv(t)
	filesHostWrite(t, filepath.Join(e.demo, "keep.txt"), "keep")
	big := strings.Repeat("x", maxFileBytes+1)
	cases := []struct {
		name, query string
		body        func() io.Reader
	}{
		{"declared length", "?path=keep.txt", func() io.Reader { return strings.NewReader(big) }},
		{"chunked", "?path=keep.txt", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
		{"chunked append", "?path=keep.txt&append=1", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
		{"chunked, new parents", "?path=new/dir/big.txt", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
	}
	for _, c := range cases {
		resp, body := filesDo(t, "PUT", e.url+"/files"+c.query, c.body())
		if resp.StatusCode != 413 || filesErrCode(body) != "too_large" {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
		}
		if b, _ := os.ReadFile(filepath.Join(e.demo, "keep.txt")); string(b) != "keep" {
			t.Errorf("%s: keep.txt = %d bytes", c.name, len(b))
		}
		if _, err := os.Lstat(filepath.Join(e.demo, "new")); !os.IsNotExist(err) {
			t.Errorf("%s: parents left: %v", c.name, err)
		}
	}
	des, _ := os.ReadDir(e.demo)
	if len(des) != 2 { // keep.txt and workspace
		t.Errorf("home after 413s: %v", des)
	}
	json := `{"path":"j.txt","content":"` + strings.Repeat("y", maxFileBytes+1) + `"}`
	if resp, body := filesDo(t, "PUT", e.url+"/files", strings.NewReader(json), "Content-Type", "application/json"); resp.StatusCode != 413 {
		t.Errorf("JSON form: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Lstat(filepath.Join(e.demo, "j.txt")); !os.IsNotExist(err) {
		t.Errorf("j.txt: %v", err)
	}
	if got := e.audit.actions(); len(got) != 0 {
		t.Errorf("audit = %q", got)
	}
}

func TestFilesDeleteMove(t *testing.T) {
	e := newFilesEnv(t)
	filesHostWrite(t, filepath.Join(e.demo, "a.txt"), "a")
	filesHostWrite(t, filepath.Join(e.demo, "b.txt"), "b")
	filesHostWrite(t, filepath.Join(e.demo, "tree/sub/f"), "f")
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"delete file", "DELETE", "/files?path=a.txt", "", 200, ""},
		{"delete missing", "DELETE", "/files?path=a.txt", "", 404, "not_found"},
		{"delete non-empty", "DELETE", "/files?path=tree", "", 409, "conflict"},
		{"delete the home", "DELETE", "/files?path=.", "", 400, "invalid_request"},
		{"delete no path", "DELETE", "/files", "", 400, "invalid_request"},
		{"move", "POST", "/files/move", `{"from":"b.txt","to":"moved/b.txt"}`, 200, ""},
		{"move missing", "POST", "/files/move", `{"from":"b.txt","to":"c.txt"}`, 404, "not_found"},
		{"move onto existing", "POST", "/files/move", `{"from":"moved/b.txt","to":"tree/sub/f"}`, 409, "conflict"},
		{"move overwrite", "POST", "/files/move", `{"from":"moved/b.txt","to":"tree/sub/f","overwrite":true}`, 200, ""},
		{"move into itself", "POST", "/files/move", `{"from":"tree","to":"tree/sub/tree"}`, 400, "invalid_request"},
		{"move without to", "POST", "/files/move", `{"from":"tree"}`, 400, "invalid_request"},
		{"move bad JSON", "POST", "/files/move", `{"from":`, 400, "invalid_request"},
		{"delete tree", "DELETE", "/files?path=tree&recursive=1", "", 200, ""},
	}
	for _, c := range cases {
		resp, body := filesDo(t, c.method, e.url+c.path, strings.NewReader(c.body), "Content-Type", "application/json")
		if resp.StatusCode != c.status || filesErrCode(body) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.status, c.code)
		}
	}
	des, _ := os.ReadDir(e.demo)
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	if want := []string{"moved", "workspace"}; !slices.Equal(names, want) {
		t.Errorf("home = %v, want %v", names, want)
	}
	want := []string{"file.delete demo a.txt", "file.move demo b.txt -> moved/b.txt",
		"file.move demo moved/b.txt -> tree/sub/f", "file.delete demo tree"}
	if got := e.audit.actions(); !slices.Equal(got, want) {
		t.Errorf("audit = %q", got)
	}
}

// outside is the state of everything under base but demo's workspace.
func (e *filesEnv) outside(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	filepath.WalkDir(e.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p == e.demo {
			return filepath.SkipDir
		}
		fi, _ := d.Info()
		got[p] = fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			got[p] += " " + string(b)
		}
		return nil
	})
	return got
}

// The escape table over HTTP: every way out answers 4xx and touches nothing outside.
func TestFilesEscapes(t *testing.T) {
	e := newFilesEnv(t)
	filesHostWrite(t, filepath.Join(e.demo, "workspace/app/mine.txt"), "mine")
	for name, target := range map[string]string{
		"pw":                  "/etc/passwd",
		"secret":              filepath.Join(e.base, "secret.txt"),
		"other":               "../other",
		"link":                filepath.Join(e.base, "outdir"),
		"workspace/app/chain": "../../secret",
	} {
		if err := os.Symlink(target, filepath.Join(e.demo, name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"read /etc/passwd link", "GET", "/files?path=pw", "", 403},
		{"read /etc/passwd link, content route", "GET", "/files/content?path=pw", "", 403},
		{"read a secret link", "GET", "/files/content?path=secret", "", 403},
		{"write through a secret link", "PUT", "/files?path=secret", "pwned", 403},
		{"append through a secret link", "PUT", "/files?path=secret&append=1", "pwned", 403},
		{"read other sandbox", "GET", "/files?path=other/secret.txt", "", 403},
		{"list other sandbox", "GET", "/files?path=other", "", 403},
		{"list other sandbox recursively", "GET", "/files?path=other&recursive=1", "", 403},
		{"write into other sandbox", "PUT", "/files?path=other/pwned.txt", "pwned", 403},
		{"write into other sandbox, JSON form", "POST", "/files", `{"path":"other/pwned.txt","content":"pwned"}`, 403},
		{"delete in other sandbox", "DELETE", "/files?path=other/secret.txt", "", 403},
		{"move into other sandbox", "POST", "/files/move", `{"from":"workspace/app/mine.txt","to":"other/mine.txt"}`, 403},
		{"move out of other sandbox", "POST", "/files/move", `{"from":"other/secret.txt","to":"stolen.txt"}`, 403},
		{"middle component", "GET", "/files?path=link/sub/file", "", 403},
		{"middle component write", "PUT", "/files?path=link/sub/new", "pwned", 403},
		{"rename under a link outside", "POST", "/files/move", `{"from":"workspace/app/mine.txt","to":"link/sub/mine.txt"}`, 403},
		{"symlink chain", "GET", "/files?path=workspace/app/chain", "", 403},
		{"dot-dot", "GET", "/files?path=workspace/../../other/secret.txt", "", 400},
		{"dot-dot write", "PUT", "/files?path=a/../../../secret.txt", "pwned", 400},
		{"dot-dot JSON form", "POST", "/files", `{"path":"../other/pwned.txt","content":"pwned"}`, 400},
		{"dot-dot move", "POST", "/files/move", `{"from":"workspace/app/mine.txt","to":"../other/mine.txt"}`, 400},
		{"encoded dot-dot", "GET", "/files?path=%2e%2e%2fother%2fsecret.txt", "", 400},
		{"absolute", "GET", "/files?path=/etc/passwd", "", 400},
		{"absolute write", "PUT", "/files?path=" + filepath.Join(e.base, "secret.txt"), "pwned", 400},
		{"NUL byte", "GET", "/files?path=workspace%00/../../secret.txt", "", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.outside(t)
			resp, body := filesDo(t, c.method, e.url+c.path, strings.NewReader(c.body), "Content-Type", "application/json")
			if resp.StatusCode != c.status {
				t.Errorf("%d %s, want %d", resp.StatusCode, body, c.status)
			}
			// Neither content from outside nor a host path the caller did not send.
			for _, leak := range []string{"top secret", "other's secret", "outdir content", "root:", e.demo} {
				if strings.Contains(body, leak) {
					t.Errorf("the answer leaks %q: %s", leak, body)
				}
			}
			if after := e.outside(t); !maps.Equal(before, after) {
				t.Errorf("outside changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	_, body := filesDo(t, "GET", e.url+"/files?recursive=1&all=1", nil)
	var l filesListJSON
	json.Unmarshal([]byte(body), &l)
	for _, en := range l.Entries {
		if strings.HasPrefix(en.Path, "link/") || strings.HasPrefix(en.Path, "other/") {
			t.Errorf("a recursive listing went through a link: %s", en.Path)
		}
	}
	if len(l.Entries) != 8 {
		t.Errorf("listing = %s", body)
	}
	if b, _ := os.ReadFile(filepath.Join(e.demo, "workspace/app/mine.txt")); string(b) != "mine" {
		t.Errorf("mine.txt = %q", b)
	}
	if got := e.audit.actions(); len(got) != 0 {
		t.Errorf("refused operations were audited as done: %q", got)
	}
	if e.audit.refused(t) == 0 {
		t.Error("refused operations left no audit line")
	}
}

func TestFilesSandboxID(t *testing.T) {
	e := newFilesEnv(t)
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/sandboxes/DEMO/files", 400},
		{"GET", "/v1/sandboxes/..%2Fworkspaces%2Fother/files", 400},
		{"PUT", "/v1/sandboxes/..%2F/files?path=x", 400},
		{"DELETE", "/v1/sandboxes/de_mo/files?path=x", 400},
		{"POST", "/v1/sandboxes/-x/files/move", 400},
		{"GET", "/v1/sandboxes/nosuch/files", 404},
		{"GET", "/v1/sandboxes/nosuch/files/content?path=x", 404},
	}
	for _, c := range cases {
		resp, body := filesDo(t, c.method, e.api+c.path, strings.NewReader(`{"from":"a","to":"b"}`), "Content-Type", "application/json")
		if resp.StatusCode != c.status {
			t.Errorf("%s %s = %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
		}
	}
	if _, err := os.Lstat(filepath.Join(e.base, "workspaces/x")); !os.IsNotExist(err) {
		t.Errorf("x: %v", err)
	}
}
