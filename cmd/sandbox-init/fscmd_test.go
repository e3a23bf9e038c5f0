package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// framed is content as "fs write" reads it: one frame per piece, then the end frame.
func framed(pieces ...string) string {
	var b strings.Builder
	for _, p := range append(pieces, "") {
		n := len(p)
		b.WriteString(string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}))
		b.WriteString(p)
	}
	return b.String()
}

// fsRun runs "fs args..." in this process and decodes its first line.
func fsRun(t *testing.T, stdin string, args ...string) (fsResult, []byte) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := runFS(args[1:], strings.NewReader(stdin), &out, &errOut); code != 0 {
		t.Fatalf("fs %v: exit %d: %s", args, code, errOut.String())
	}
	line, rest, _ := bytes.Cut(out.Bytes(), []byte("\n"))
	var r fsResult
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("fs %v: %q is not a result: %v", args, line, err)
	}
	return r, rest
}

func wantKind(t *testing.T, r fsResult, kind string) {
	t.Helper()
	if r.Error == nil || r.Error.Kind != kind {
		t.Fatalf("result %+v, want error kind %q", r, kind)
	}
}

func TestFSWriteReadStat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "c.txt")
	r, _ := fsRun(t, framed("hel", "lo"), "fs", "write", p)
	if r.Error != nil || r.Entry == nil || r.Entry.Type != "file" || r.Entry.Size != 5 || r.Entry.Path != p {
		t.Fatalf("write: %+v", r)
	}
	if r.UID != os.Geteuid() || r.Entry.UID != os.Geteuid() {
		t.Fatalf("write: uid %d, entry uid %d, want %d", r.UID, r.Entry.UID, os.Geteuid())
	}
	r, body := fsRun(t, "", "fs", "read", p)
	if r.Error != nil || string(body) != "hello" {
		t.Fatalf("read: %+v %q", r, body)
	}
	// Overwriting keeps the mode of the file.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	fsRun(t, framed("bye"), "fs", "write", p)
	r, _ = fsRun(t, "", "fs", "stat", p)
	if r.Entry.Mode != 0o600 || r.Entry.Size != 3 || r.Entry.Perm != "-rw-------" {
		t.Fatalf("stat after overwrite: %+v", r.Entry)
	}
	r, _ = fsRun(t, "", "fs", "stat", filepath.Join(dir, "a"))
	if r.Entry.Type != "dir" || r.Entry.Mode != 0o755 {
		t.Fatalf("stat dir: %+v", r.Entry)
	}

	wantKind(t, first(fsRun(t, "", "fs", "read", filepath.Join(dir, "missing"))), "not_found")
	wantKind(t, first(fsRun(t, "", "fs", "read", dir)), "is_dir")
	wantKind(t, first(fsRun(t, framed("x"), "fs", "write", dir)), "is_dir")
	// Content cut short (no end frame) leaves the file as it was.
	if r := first(fsRun(t, framed("new content")[:10], "fs", "write", p)); r.Error == nil {
		t.Fatalf("cut write: %+v", r)
	}
	if b, _ := os.ReadFile(p); string(b) != "bye" {
		t.Fatalf("after a cut write the file holds %q", b)
	}
	// Through a symlink, the target is written and the link stays.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	fsRun(t, framed("via link"), "fs", "write", link)
	if b, _ := os.ReadFile(p); string(b) != "via link" {
		t.Fatalf("write through a link: target holds %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "a", "b", ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	wantKind(t, first(fsRun(t, "", "fs", "stat", "relative/path")), "invalid")
}

func first(r fsResult, _ []byte) fsResult { return r }

func TestFSListDepthAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"x/y/z.txt", "top.txt"} {
		fsRun(t, framed("1"), "fs", "write", filepath.Join(dir, p))
	}
	if err := os.Symlink("x", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	names := func(r fsResult) []string {
		var out []string
		for _, e := range r.Entries {
			rel, _ := filepath.Rel(dir, e.Path)
			out = append(out, rel+":"+e.Type)
		}
		return out
	}
	r, _ := fsRun(t, "", "fs", "list", dir, "1")
	if got, want := strings.Join(names(r), " "), "link:dir top.txt:file x:dir"; got != want {
		t.Fatalf("depth 1: %s, want %s", got, want)
	}
	r, _ = fsRun(t, "", "fs", "list", dir, "3")
	if got, want := strings.Join(names(r), " "), "link:dir top.txt:file x:dir x/y:dir x/y/z.txt:file"; got != want {
		t.Fatalf("depth 3: %s, want %s", got, want)
	}
	for _, e := range r.Entries {
		if e.Name == "link" && (e.Symlink == nil || *e.Symlink != filepath.Join(dir, "x") || e.Perm[0] != 'L') {
			t.Fatalf("symlink entry: %+v", e)
		}
	}
	// Listing through a symlink names the paths as asked.
	r, _ = fsRun(t, "", "fs", "list", filepath.Join(dir, "link"), "1")
	if len(r.Entries) != 1 || r.Entries[0].Path != filepath.Join(dir, "link", "y") {
		t.Fatalf("list via symlink: %+v", r.Entries)
	}
	wantKind(t, first(fsRun(t, "", "fs", "list", filepath.Join(dir, "top.txt"), "1")), "not_dir")
	wantKind(t, first(fsRun(t, "", "fs", "list", filepath.Join(dir, "none"), "1")), "not_found")
	wantKind(t, first(fsRun(t, "", "fs", "list", dir, "0")), "invalid")
}

func TestFSMkdirMoveRemove(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "p", "q")
	if r, _ := fsRun(t, "", "fs", "mkdir", d); r.Error != nil || r.Entry.Type != "dir" {
		t.Fatalf("mkdir: %+v", r)
	}
	wantKind(t, first(fsRun(t, "", "fs", "mkdir", d)), "exists")
	fsRun(t, framed("f"), "fs", "write", filepath.Join(d, "f"))
	wantKind(t, first(fsRun(t, "", "fs", "mkdir", filepath.Join(d, "f"))), "not_dir")

	to := filepath.Join(dir, "new", "place")
	if r, _ := fsRun(t, "", "fs", "move", d, to); r.Error != nil || r.Entry.Path != to || r.Entry.Type != "dir" {
		t.Fatalf("move: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(to, "f")); err != nil {
		t.Fatalf("moved tree: %v", err)
	}
	wantKind(t, first(fsRun(t, "", "fs", "move", d, to)), "not_found")

	if r, _ := fsRun(t, "", "fs", "remove", filepath.Join(dir, "new")); r.Error != nil {
		t.Fatalf("remove: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Fatalf("removed tree still there: %v", err)
	}
	// Removing what is not there is no error, as rm -rf.
	if r, _ := fsRun(t, "", "fs", "remove", filepath.Join(dir, "new")); r.Error != nil {
		t.Fatalf("remove again: %+v", r)
	}
}

// TestFSWatch runs the built binary: a watch ends the process when its stdin closes.
func TestFSWatch(t *testing.T) {
	bin := initBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "fs", "watch", dir, "1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	t.Cleanup(func() {
		cmd.Process.Kill()
		for range lines { // the reader sends every line before it reports the exit
		}
		<-exited
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended early")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line from watch in 10s")
		}
		return ""
	}
	if l := next(); !strings.Contains(l, `"uid"`) || strings.Contains(l, "error") {
		t.Fatalf("first line %q", l)
	}
	// A new directory is followed: a file made in it is reported with its path.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitEvent := func(name, op string) fsEvent {
		t.Helper()
		for {
			var got map[string]fsEvent
			if err := json.Unmarshal([]byte(next()), &got); err != nil {
				t.Fatal(err)
			}
			e := got["event"]
			for _, o := range e.Ops {
				if e.Name == name && o == op {
					return e
				}
			}
		}
	}
	if e := waitEvent("sub", "create"); e.Entry == nil || e.Entry.Type != "dir" {
		t.Fatalf("create sub: %+v", e)
	}
	// The line for sub comes after its watch is in place, so this write is seen.
	if err := os.WriteFile(filepath.Join(dir, "sub", "f.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitEvent(filepath.Join("sub", "f.txt"), "write")
	// "fs write" goes through a temporary file: a watch reports the file, never the temp.
	if r, _ := fsRun(t, framed("y"), "fs", "write", filepath.Join(dir, "sub", "g.txt")); r.Error != nil {
		t.Fatal(r.Error)
	}
	for {
		var got map[string]fsEvent
		if err := json.Unmarshal([]byte(next()), &got); err != nil {
			t.Fatal(err)
		}
		e := got["event"]
		if strings.Contains(e.Name, "sandboxd-") {
			t.Fatalf("the write's temporary file was reported: %+v", e)
		}
		if e.Name == filepath.Join("sub", "g.txt") && slices.Contains(e.Ops, "write") {
			if !slices.Contains(e.Ops, "create") {
				t.Fatalf("g.txt written: ops %v, want create and write", e.Ops)
			}
			break
		}
	}
	if err := os.Remove(filepath.Join(dir, "sub", "f.txt")); err != nil {
		t.Fatal(err)
	}
	waitEvent(filepath.Join("sub", "f.txt"), "remove")

	stdin.Close()
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("watch after stdin closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch still running 10s after its stdin closed")
	}
}

// TestFSCopyTree: the copy a move across filesystems makes keeps files, modes, dirs and
// symlinks (the move itself is tested against a sandbox, where the home and /tmp differ).
func TestFSCopyTree(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(filepath.Join(src, "d"), 0o700)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("data"), 0o640)
	os.Symlink("d/f", filepath.Join(src, "l"))
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d", "f")); err != nil || string(b) != "data" {
		t.Fatalf("file: %q %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "d", "f")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("file mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dst, "d")); fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", fi.Mode())
	}
	if target, err := os.Readlink(filepath.Join(dst, "l")); err != nil || target != "d/f" {
		t.Fatalf("symlink: %q %v", target, err)
	}
}

// TestFSWatchScansNewDirectories: a directory that already holds files when its create is
// seen (they were made before its watch could be) reports them too.
func TestFSWatchScansNewDirectories(t *testing.T) {
	root := t.TempDir()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	w := &watcher{fd: fd, root: root, recursive: true, dirs: map[int32]string{}, writes: map[uint32]string{}}
	if err := w.add(root); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "b", "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "a", ".f.sandboxd-123"), []byte("x"), 0o644)
	var wd int32
	for k := range w.dirs {
		wd = k
	}
	var got []string
	for _, e := range w.event(wd, syscall.IN_CREATE|syscall.IN_ISDIR, 0, "a", &fsOwners{}) {
		got = append(got, e.Name+":"+strings.Join(e.Ops, "+"))
	}
	if strings.Join(got, " ") != "a:create a/b:create a/b/f:create+write" {
		t.Fatalf("events %v", got)
	}
	if len(w.dirs) != 3 {
		t.Fatalf("watched %d directories, want 3: %v", len(w.dirs), w.dirs)
	}
}
