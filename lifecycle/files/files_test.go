package files

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testOwner is the uid and gid files are given: the sandbox user when the test runs as
// root, else the test's own ids (an unprivileged chown to 1000 fails).
func testOwner() int {
	if os.Geteuid() == 0 {
		return 1000
	}
	return os.Getuid()
}

func mustWriteFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newWorkspace(t *testing.T) (*Workspace, string) {
	t.Helper()
	home := t.TempDir()
	ws, err := Open(home, testOwner(), testOwner())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws, home
}

func readAll(t *testing.T, ws *Workspace, p string) string {
	t.Helper()
	f, _, err := ws.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkOwner asserts the owner of p (not following a symlink) when the test can chown.
func checkOwner(t *testing.T, p string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Logf("not root: skipping the 1000:1000 ownership check of %s", filepath.Base(p))
		return
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("%s is owned by %d:%d, want 1000:1000", p, st.Uid, st.Gid)
	}
}

func TestClean(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""}, {".", ""}, {"./", ""}, {"a", "a"}, {"a/", "a"}, {"./a//b/./c", "a/b/c"},
		{`back\slash`, `back\slash`}, {"..a/b..", "..a/b.."}, {"~", "~"},
	}
	for _, c := range cases {
		if got, err := Clean(c.in); err != nil || got != c.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"/", "/etc", "..", "a/..", "../a", "a/../b", "a\x00b", strings.Repeat("a", 5000)} {
		if _, err := Clean(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Clean(%q) = %v, want ErrInvalidPath", bad, err)
		}
	}
}

func TestOpen(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "workspace/app/data.txt"), "0123456789")
	os.Symlink("workspace/app/data.txt", filepath.Join(home, "inner"))
	syscall.Mkfifo(filepath.Join(home, "fifo"), 0o644)

	// A Range read: Open, Seek, read a span.
	f, e, err := ws.Open("workspace/app/data.txt")
	if err != nil || e.Size != 10 || e.Type != TypeFile {
		t.Fatalf("open: %+v %v", e, err)
	}
	if _, err := f.Seek(2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	span := make([]byte, 4)
	if _, err := io.ReadFull(f, span); err != nil || string(span) != "2345" {
		t.Errorf("bytes 2-5 = %q %v", span, err)
	}
	f.Close()

	if got := readAll(t, ws, "inner"); got != "0123456789" {
		t.Errorf("through an inner link = %q", got)
	}
	cases := []struct {
		path string
		want error
	}{
		{"", ErrIsDir}, {"workspace", ErrIsDir}, {"fifo", ErrNotRegular}, {"missing", fs.ErrNotExist},
		{"workspace/app/data.txt/x", ErrNotDir},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() {
			f, _, err := ws.Open(c.path)
			if err == nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, c.want) {
				t.Errorf("Open(%q) = %v, want %v", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Open(%q) blocked", c.path)
		}
	}
}

func TestList(t *testing.T) {
	ws, home := newWorkspace(t)
	for _, p := range []string{
		"workspace/app/b.txt", "workspace/app/a.txt", "workspace/app/node_modules/x/index.js",
		"workspace/app/.git/HEAD", ".cache/pip/x", "workspace/app/src/.sandboxd/y", "top.txt",
	} {
		mustWriteFile(t, filepath.Join(home, p), "content")
	}
	os.Symlink("workspace", filepath.Join(home, "ws-link"))
	paths := func(es []Entry) []string {
		var ps []string
		for _, e := range es {
			p := e.Path
			if e.Skipped {
				p += " (skipped)"
			}
			ps = append(ps, p)
		}
		return ps
	}

	es, truncated, err := ws.List("workspace/app", ListOptions{})
	want := []string{"workspace/app/.git", "workspace/app/a.txt", "workspace/app/b.txt", "workspace/app/node_modules", "workspace/app/src"}
	if err != nil || truncated || !slices.Equal(paths(es), want) {
		t.Errorf("list = %v %v %v\nwant %v", paths(es), truncated, err, want)
	}
	if es[1].Name != "a.txt" || es[1].Type != TypeFile || es[1].Size != 7 || es[1].Mode != 0o644 || es[1].ModTime.IsZero() {
		t.Errorf("entry = %+v", es[1])
	}

	es, truncated, err = ws.List("", ListOptions{Recursive: true})
	want = []string{
		".cache (skipped)", "top.txt", "workspace", "workspace/app", "workspace/app/.git (skipped)",
		"workspace/app/a.txt", "workspace/app/b.txt", "workspace/app/node_modules (skipped)",
		"workspace/app/src", "workspace/app/src/.sandboxd (skipped)", "ws-link",
	}
	if err != nil || truncated || !slices.Equal(paths(es), want) {
		t.Errorf("recursive = %v %v %v\nwant %v", paths(es), truncated, err, want)
	}
	if link := es[len(es)-1]; link.Type != TypeSymlink || link.Target != "workspace" {
		t.Errorf("link entry = %+v", link)
	}

	es, _, err = ws.List("workspace/app/node_modules", ListOptions{Recursive: true})
	if want := []string{"workspace/app/node_modules/x", "workspace/app/node_modules/x/index.js"}; err != nil || !slices.Equal(paths(es), want) {
		t.Errorf("listing a skipped dir itself = %v %v", paths(es), err)
	}
	es, _, err = ws.List("", ListOptions{Recursive: true, All: true})
	if err != nil || !slices.Contains(paths(es), "workspace/app/node_modules/x/index.js") || !slices.Contains(paths(es), ".cache/pip/x") {
		t.Errorf("all = %v %v", paths(es), err)
	}
	es, truncated, err = ws.List("", ListOptions{Recursive: true, Limit: 3})
	if want := []string{".cache (skipped)", "top.txt", "workspace"}; err != nil || !truncated || !slices.Equal(paths(es), want) {
		t.Errorf("limit 3 = %v %v %v", paths(es), truncated, err)
	}
	es, truncated, err = ws.List("workspace/app", ListOptions{Limit: 5})
	if err != nil || truncated || len(es) != 5 {
		t.Errorf("limit = exact count: %v %v %v", paths(es), truncated, err)
	}
	es, _, err = ws.List("ws-link", ListOptions{})
	if want := []string{"ws-link/app"}; err != nil || !slices.Equal(paths(es), want) {
		t.Errorf("list through an inner link = %v %v", paths(es), err)
	}
	if _, _, err := ws.List("top.txt", ListOptions{}); !errors.Is(err, ErrNotDir) {
		t.Errorf("list a file: %v", err)
	}
	if _, _, err := ws.List("missing", ListOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("list missing: %v", err)
	}
	if es, _, err := ws.List("workspace/app/src/.sandboxd", ListOptions{}); err != nil || len(es) != 1 {
		t.Errorf("empty-ish dir: %v %v", es, err)
	}
}

func TestRemove(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "d/sub/f"), "x")
	mustWriteFile(t, filepath.Join(home, "f"), "x")
	os.Mkdir(filepath.Join(home, "empty"), 0o755)
	cases := []struct {
		path      string
		recursive bool
		want      error
	}{
		{"", true, ErrInvalidPath},
		{"missing", false, fs.ErrNotExist},
		{"d", false, ErrNotEmpty},
		{"f", false, nil},
		{"empty", false, nil},
		{"d", true, nil},
	}
	for _, c := range cases {
		if err := ws.Remove(c.path, c.recursive); !errors.Is(err, c.want) {
			t.Errorf("Remove(%q, %v) = %v, want %v", c.path, c.recursive, err, c.want)
		}
	}
	des, _ := os.ReadDir(home)
	if len(des) != 0 {
		t.Errorf("left: %v", des)
	}
}

func TestMove(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "a.txt"), "a")
	mustWriteFile(t, filepath.Join(home, "b.txt"), "b")
	mustWriteFile(t, filepath.Join(home, "dir/x"), "x")
	if err := ws.Move("a.txt", "new/parents/a.txt", false); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, ws, "new/parents/a.txt"); got != "a" {
		t.Errorf("moved = %q", got)
	}
	checkOwner(t, filepath.Join(home, "new/parents"))
	cases := []struct {
		name, from, to string
		overwrite      bool
		want           error
	}{
		{"exists", "b.txt", "new/parents/a.txt", false, fs.ErrExist},
		{"onto a directory even with overwrite", "b.txt", "dir", true, fs.ErrExist},
		{"missing source", "nope", "x", false, fs.ErrNotExist},
		{"the home", "", "x", false, ErrInvalidPath},
		{"onto the home", "b.txt", "", true, ErrInvalidPath},
		{"into itself", "dir", "dir/sub/dir", false, ErrInvalidPath},
		{"onto itself", "dir", "dir", true, ErrInvalidPath},
		{"parent is a file", "dir", "b.txt/dir", false, ErrNotDir},
	}
	for _, c := range cases {
		if err := ws.Move(c.from, c.to, c.overwrite); !errors.Is(err, c.want) {
			t.Errorf("%s: Move(%q, %q) = %v, want %v", c.name, c.from, c.to, err, c.want)
		}
	}
	if err := ws.Move("b.txt", "new/parents/a.txt", true); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got := readAll(t, ws, "new/parents/a.txt"); got != "b" {
		t.Errorf("overwritten = %q", got)
	}
	if _, err := os.Stat(filepath.Join(home, "dir/sub")); !os.IsNotExist(err) {
		t.Errorf("a refused move made parents: %v", err)
	}
}

// Error messages name the caller's path, never the host's.
func TestErrorMessages(t *testing.T) {
	ws, home := newWorkspace(t)
	_, _, err := ws.Open("workspace/missing.txt")
	if err == nil || strings.Contains(err.Error(), home) || !strings.Contains(err.Error(), `"workspace/missing.txt"`) {
		t.Errorf("message = %q", err)
	}
	if err := ws.Remove("", false); err == nil || !strings.Contains(err.Error(), "the home") {
		t.Errorf("message = %q", err)
	}
}
