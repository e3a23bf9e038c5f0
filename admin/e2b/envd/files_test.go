package envd

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem"
	"github.com/sandboxd/sandboxd/lifecycle"
)

func lifecycleExec(script string) lifecycle.ExecRequest {
	return lifecycle.ExecRequest{Cmd: []string{"/bin/sh", "-c", script}}
}

// do sends an envd HTTP request with the sandbox's headers.
func (h *harness) do(t *testing.T, method, target string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h.headers() {
		req.Header[k] = v
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func q(path string) string { return "/files?path=" + url.QueryEscape(path) }

// testFiles: /files round trips in both upload forms, on the home and on /tmp (which the
// host cannot see), with E2B's answers and errors.
func testFiles(t *testing.T, h *harness) {
	// octet-stream to the home, by E2B's path; read back by a relative path.
	code, _, body := h.do(t, "POST", q("/home/user/docs/a.txt"), strings.NewReader("alpha\x00\xff"), "Content-Type", "application/octet-stream")
	if code != 200 || strings.TrimSpace(string(body)) != `[{"name":"a.txt","type":"file","path":"/home/user/docs/a.txt"}]` {
		t.Fatalf("upload: %d %s", code, body)
	}
	code, hdr, body := h.do(t, "GET", q("docs/a.txt"), nil)
	if code != 200 || string(body) != "alpha\x00\xff" || hdr.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download: %d %q %v", code, body, hdr)
	}
	// The file is where the sandbox's commands see it, owned by the sandbox's own uid.
	sb, err := h.mgr.Get(context.Background(), h.id)
	if err != nil || sb.UID == 0 {
		t.Fatalf("the sandbox has no uid of its own: %+v %v", sb, err)
	}
	res, err := h.mgr.Exec(context.Background(), h.id, lifecycleExec("stat -c '%u %s' /home/sandbox/docs/a.txt"))
	if want := fmt.Sprintf("%d 7", sb.UID); err != nil || strings.TrimSpace(string(res.Stdout)) != want {
		t.Fatalf("in the sandbox: %q %v, want %q", res.Stdout, err, want)
	}

	// multipart, two files named by their filenames, one on /tmp.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	for name, content := range map[string]string{"b.txt": "bravo", "/tmp/deep/c.txt": "charlie"} {
		fw, _ := mw.CreateFormFile("file", name)
		io.WriteString(fw, content)
	}
	mw.Close()
	code, _, body = h.do(t, "POST", "/files", &mp, "Content-Type", mw.FormDataContentType())
	var infos []writeInfo
	json.Unmarshal(body, &infos)
	if code != 200 || len(infos) != 2 {
		t.Fatalf("multipart upload: %d %s", code, body)
	}
	for path, want := range map[string]string{"/home/user/b.txt": "bravo", "/tmp/deep/c.txt": "charlie"} {
		if code, _, got := h.do(t, "GET", q(path), nil); code != 200 || string(got) != want {
			t.Errorf("read %s: %d %q", path, code, got)
		}
	}

	// gzip-encoded octet-stream.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, strings.Repeat("z", 100000))
	zw.Close()
	if code, _, body := h.do(t, "POST", q("/tmp/z"), &gz, "Content-Type", "application/octet-stream", "Content-Encoding", "gzip"); code != 200 {
		t.Fatalf("gzip upload: %d %s", code, body)
	}
	if _, _, got := h.do(t, "GET", q("/tmp/z"), nil); len(got) != 100000 {
		t.Fatalf("gzip upload stored %d bytes", len(got))
	}

	// Errors, each with E2B's {"code":<status>,"message":...}.
	errs := []struct {
		name, method, target string
		body                 io.Reader
		hdr                  []string
		code                 int
	}{
		{"missing", "GET", q("/tmp/none"), nil, nil, 404},
		{"directory", "GET", q("/tmp"), nil, nil, 400},
		{"no path", "GET", "/files", nil, nil, 400},
		{"raw upload without path", "POST", "/files", strings.NewReader("x"), []string{"Content-Type", "application/octet-stream"}, 400},
		{"upload onto a directory", "POST", q("/tmp/deep"), strings.NewReader("x"), []string{"Content-Type", "application/octet-stream"}, 400},
		{"root", "GET", q("/tmp/z") + "&username=root", nil, nil, 401},
		{"unwritable", "POST", q("/etc/passwd"), strings.NewReader("x"), []string{"Content-Type", "application/octet-stream"}, 403},
	}
	for _, e := range errs {
		code, hdr, body := h.do(t, e.method, e.target, e.body, e.hdr...)
		var v struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		json.Unmarshal(body, &v)
		if code != e.code || v.Code != e.code || v.Message == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s, want %d", e.name, code, body, e.code)
		}
	}

	// Too large: refused with 413, and the file that was there is untouched.
	h.envd.MaxFileBytes = 1000
	defer func() { h.envd.MaxFileBytes = 0 }()
	if code, _, body := h.do(t, "POST", q("/home/user/docs/a.txt"), strings.NewReader(strings.Repeat("x", 1<<20+2000)), "Content-Type", "application/octet-stream"); code != 413 {
		t.Fatalf("too large: %d %s", code, body)
	}
	if _, _, got := h.do(t, "GET", q("/home/user/docs/a.txt"), nil); string(got) != "alpha\x00\xff" {
		t.Fatalf("after a refused upload the file holds %q", got)
	}

	// A signed URL (the SDKs' download_url) works without the token header; a wrong or
	// expired signature does not.
	sign := func(path, op string, exp int64) string {
		raw := path + ":" + op + "::" + h.token
		v := url.Values{"path": {path}}
		if exp != 0 {
			raw += ":" + strconv.FormatInt(exp, 10)
			v.Set("signature_expiration", strconv.FormatInt(exp, 10))
		}
		sum := sha256.Sum256([]byte(raw))
		v.Set("signature", "v1_"+base64.RawStdEncoding.EncodeToString(sum[:]))
		return "/files?" + v.Encode()
	}
	noToken := []string{HeaderAccessToken, ""}
	if code, _, got := h.do(t, "GET", sign("/tmp/z", "read", 0), nil, noToken...); code != 200 || len(got) != 100000 {
		t.Fatalf("signed download: %d", code)
	}
	if code, _, _ := h.do(t, "GET", sign("/tmp/z", "write", 0), nil, noToken...); code != 401 {
		t.Fatalf("download signed for write: %d", code)
	}
	if code, _, _ := h.do(t, "GET", sign("/tmp/z", "read", time.Now().Add(-time.Minute).Unix()), nil, noToken...); code != 401 {
		t.Fatalf("expired signature: %d", code)
	}
	if code, _, _ := h.do(t, "GET", sign("/tmp/z", "read", time.Now().Add(time.Minute).Unix()), nil, noToken...); code != 200 {
		t.Fatalf("unexpired signature: %d", code)
	}
}

// testFilesystem: the Filesystem RPCs, E2B's paths shown back as /home/user.
func testFilesystem(t *testing.T, h *harness) {
	ctx := within(t, time.Minute)
	fc := h.filesystem(false)
	mk, err := fc.MakeDir(ctx, connect.NewRequest(&filesystem.MakeDirRequest{Path: "/home/user/p/q"}))
	if err != nil {
		t.Fatal(err)
	}
	if e := mk.Msg.GetEntry(); e.GetPath() != "/home/user/p/q" || e.GetType() != filesystem.FileType_FILE_TYPE_DIRECTORY || e.GetOwner() != "user" {
		t.Fatalf("make dir: %v", e)
	}
	if _, err := fc.MakeDir(ctx, connect.NewRequest(&filesystem.MakeDirRequest{Path: "~/p/q"})); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("make dir again: %v", err)
	}
	if _, err := h.mgr.Exec(ctx, h.id, lifecycleExec("echo hi > /home/sandbox/p/q/f.txt && ln -s q/f.txt /home/sandbox/p/link")); err != nil {
		t.Fatal(err)
	}
	st, err := fc.Stat(ctx, connect.NewRequest(&filesystem.StatRequest{Path: "p/link"}))
	if err != nil {
		t.Fatal(err)
	}
	if e := st.Msg.GetEntry(); e.GetType() != filesystem.FileType_FILE_TYPE_FILE || e.GetSymlinkTarget() != "/home/user/p/q/f.txt" || e.GetName() != "link" {
		t.Fatalf("stat of a symlink: %v", e)
	}
	ls, err := h.filesystem(true).ListDir(ctx, connect.NewRequest(&filesystem.ListDirRequest{Path: "/home/user/p", Depth: 2}))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range ls.Msg.GetEntries() {
		paths = append(paths, e.GetPath())
	}
	if strings.Join(paths, " ") != "/home/user/p/link /home/user/p/q /home/user/p/q/f.txt" {
		t.Fatalf("list depth 2: %v", paths)
	}
	mv, err := fc.Move(ctx, connect.NewRequest(&filesystem.MoveRequest{Source: "/home/user/p/q/f.txt", Destination: "/tmp/moved/f.txt"}))
	if err != nil || mv.Msg.GetEntry().GetPath() != "/tmp/moved/f.txt" || mv.Msg.GetEntry().GetSize() != 3 {
		t.Fatalf("move: %v %v", mv, err)
	}
	if _, err := fc.Remove(ctx, connect.NewRequest(&filesystem.RemoveRequest{Path: "/home/user/p"})); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Stat(ctx, connect.NewRequest(&filesystem.StatRequest{Path: "/home/user/p"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("stat after remove: %v", err)
	}
	if _, err := fc.ListDir(ctx, connect.NewRequest(&filesystem.ListDirRequest{Path: "/tmp/moved/f.txt"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("list of a file: %v", err)
	}
	if _, err := fc.Stat(ctx, connect.NewRequest(&filesystem.StatRequest{Path: "~other/x"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("another user's home: %v", err)
	}
}

// testWatch: a WatchDir stream reports a file written by an upload; the polling watcher
// returns what happened since the last call; the keepalive comes when asked for.
func testWatch(t *testing.T, h *harness) {
	ctx := within(t, time.Minute)
	fc := h.filesystem(true)
	req := connect.NewRequest(&filesystem.WatchDirRequest{Path: "/home/user", Recursive: true})
	req.Header().Set("Keepalive-Ping-Interval", "1")
	stream, err := fc.WatchDir(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() || stream.Msg().GetStart() == nil {
		t.Fatalf("first event: %v %v", stream.Msg(), stream.Err())
	}
	if code, _, body := h.do(t, "POST", q("/home/user/w/x.txt"), strings.NewReader("x"), "Content-Type", "application/octet-stream"); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	var seen []string
	keepalive := false
	for stream.Receive() && (!keepalive || !contains(seen, "w/x.txt WRITE")) {
		if stream.Msg().GetKeepalive() != nil {
			keepalive = true
			continue
		}
		ev := stream.Msg().GetFilesystem()
		seen = append(seen, ev.GetName()+" "+strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
	}
	if !contains(seen, "w CREATE") || !contains(seen, "w/x.txt CREATE") || !contains(seen, "w/x.txt WRITE") {
		t.Fatalf("events %v (%v)", seen, stream.Err())
	}
	for _, s := range seen {
		if strings.Contains(s, "sandboxd-") {
			t.Fatalf("a temporary file was reported: %v", seen)
		}
	}

	cw, err := fc.CreateWatcher(ctx, connect.NewRequest(&filesystem.CreateWatcherRequest{Path: "/tmp"}))
	if err != nil {
		t.Fatal(err)
	}
	wid := cw.Msg.GetWatcherId()
	h.do(t, "POST", q("/tmp/polled"), strings.NewReader("p"), "Content-Type", "application/octet-stream")
	var got []string
	for len(got) == 0 {
		r, err := fc.GetWatcherEvents(ctx, connect.NewRequest(&filesystem.GetWatcherEventsRequest{WatcherId: wid}))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Msg.GetEvents() {
			got = append(got, e.GetName()+" "+e.GetType().String())
		}
	}
	if got[0] != "polled EVENT_TYPE_CREATE" {
		t.Fatalf("polled events %v", got)
	}
	if _, err := fc.RemoveWatcher(ctx, connect.NewRequest(&filesystem.RemoveWatcherRequest{WatcherId: wid})); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.GetWatcherEvents(ctx, connect.NewRequest(&filesystem.GetWatcherEventsRequest{WatcherId: wid})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("events of a removed watcher: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testHealthAndWake: /health says whether the sandbox runs and never wakes it; any other
// call wakes it, and tells OnWake.
func testHealthAndWake(t *testing.T, h *harness) {
	ctx := within(t, 2*time.Minute)
	if code, _, _ := h.do(t, "GET", "/health", nil); code != 204 {
		t.Fatalf("health while running: %d", code)
	}
	if err := h.mgr.Stop(ctx, h.id); err != nil {
		t.Fatal(err)
	}
	if code, _, body := h.do(t, "GET", "/health", nil); code != 502 || !strings.Contains(string(body), `"code":502`) {
		t.Fatalf("health while stopped: %d %s", code, body)
	}
	if _, ok := h.mgr.Running(h.id); ok {
		t.Fatal("health woke the sandbox")
	}
	if _, err := h.filesystem(false).Stat(ctx, connect.NewRequest(&filesystem.StatRequest{Path: "/tmp"})); err != nil {
		t.Fatalf("stat of a stopped sandbox: %v", err)
	}
	if _, ok := h.mgr.Running(h.id); !ok {
		t.Fatal("the call did not wake the sandbox")
	}
	select {
	case id := <-h.woke:
		if id != h.id {
			t.Fatalf("OnWake(%q)", id)
		}
	default:
		t.Fatal("OnWake was not called")
	}
}
