package files

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// escapeFixture is a workspace beside the things it must never reach: another sandbox's
// workspace, a secret file, a directory tree and a stand-in for /etc/passwd (writes are
// aimed at the stand-in: a regression must not be able to clobber the host's real one).
type escapeFixture struct {
	base, home string
	ws         *Workspace
}

func newEscapeFixture(t *testing.T) *escapeFixture {
	t.Helper()
	base := t.TempDir()
	f := &escapeFixture{base: base, home: filepath.Join(base, "home")}
	for p, content := range map[string]string{
		"other/secret.txt":     "another sandbox's secret",
		"other/workspace/a.md": "their notes",
		"secret.txt":           "top secret",
		"etc/passwd":           "root:x:0:0:root:/root:/bin/bash\n",
		"outdir/sub/file":      "outside file",
		"home/workspace/app/x": "mine",
	} {
		mustWriteFile(t, filepath.Join(base, p), content)
	}
	links := map[string]string{
		"pw":                     "/etc/passwd",
		"fakepw":                 filepath.Join(base, "etc/passwd"),
		"other":                  "../other",
		"otherabs":               filepath.Join(base, "other"),
		"link":                   filepath.Join(base, "outdir"),
		"chain1":                 "chain2",
		"chain2":                 "workspace/chain3",
		"workspace/chain3":       "../../secret.txt",
		"workspace/app/up":       "../../../secret.txt",
		"workspace/app/otherws":  "../../../other/workspace",
		"loop1":                  "loop2",
		"loop2":                  "loop1",
		"workspace/app/innerdir": "..", // stays inside: workspace
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(f.home, name)); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := Open(f.home, testOwner(), testOwner())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	f.ws = ws
	return f
}

// outside is everything under base but the home, by path: type, mode and content.
func (f *escapeFixture) outside(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(f.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == f.home {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		got[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// Every way out of the workspace fails with the named kind, and nothing outside is read,
// created or modified.
func TestEscapes(t *testing.T) {
	type op func(ws *Workspace) (leak []byte, err error)
	read := func(p string) op {
		return func(ws *Workspace) ([]byte, error) {
			f, _, err := ws.Open(p)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(f)
		}
	}
	write := func(p string, append bool) op {
		return func(ws *Workspace) ([]byte, error) {
			_, _, err := ws.Write(p, strings.NewReader("pwned"), WriteOptions{Append: append})
			return nil, err
		}
	}
	list := func(p string, recursive bool) op {
		return func(ws *Workspace) ([]byte, error) {
			es, _, err := ws.List(p, ListOptions{Recursive: recursive, All: true})
			var names bytes.Buffer
			for _, e := range es {
				names.WriteString(e.Path + "\n")
			}
			return names.Bytes(), err
		}
	}
	stat := func(p string) op {
		return func(ws *Workspace) ([]byte, error) { _, err := ws.Stat(p); return nil, err }
	}
	remove := func(p string, recursive bool) op {
		return func(ws *Workspace) ([]byte, error) { return nil, ws.Remove(p, recursive) }
	}
	move := func(from, to string, overwrite bool) op {
		return func(ws *Workspace) ([]byte, error) { return nil, ws.Move(from, to, overwrite) }
	}
	cases := []struct {
		name string
		op   op
		want error
	}{
		{"read symlink to /etc/passwd", read("pw"), ErrEscapes},
		{"read symlink to a passwd outside", read("fakepw"), ErrEscapes},
		{"write through symlink to a passwd outside", write("fakepw", false), ErrEscapes},
		{"append through symlink to a passwd outside", write("fakepw", true), ErrEscapes},
		{"append through symlink to /etc/passwd", write("pw", true), ErrEscapes},
		{"read other workspace, relative link", read("other/secret.txt"), ErrEscapes},
		{"read other workspace, absolute link", read("otherabs/secret.txt"), ErrEscapes},
		{"read other workspace, deep relative link", read("workspace/app/otherws/a.md"), ErrEscapes},
		{"write into other workspace", write("other/pwned.txt", false), ErrEscapes},
		{"write into other workspace with new parents", write("other/new/dir/pwned.txt", false), ErrEscapes},
		{"append into other workspace", write("otherabs/secret.txt", true), ErrEscapes},
		{"list other workspace", list("other", false), ErrEscapes},
		{"list other workspace recursively", list("otherabs", true), ErrEscapes},
		{"stat in other workspace", stat("other/secret.txt"), ErrEscapes},
		{"remove in other workspace", remove("other/secret.txt", false), ErrEscapes},
		{"remove tree in other workspace", remove("other/workspace", true), ErrEscapes},
		{"move into other workspace", move("workspace/app/x", "other/x", false), ErrEscapes},
		{"move into other workspace, overwrite", move("workspace/app/x", "other/secret.txt", true), ErrEscapes},
		{"move out of other workspace", move("other/secret.txt", "stolen.txt", false), ErrEscapes},
		{"middle component: read", read("link/sub/file"), ErrEscapes},
		{"middle component: stat", stat("link/sub/file"), ErrEscapes},
		{"middle component: write", write("link/sub/file", false), ErrEscapes},
		{"middle component: write new file", write("link/sub/new", false), ErrEscapes},
		{"middle component: create parents", write("link/newdir/f", false), ErrEscapes},
		{"middle component: list", list("link/sub", false), ErrEscapes},
		{"middle component: remove", remove("link/sub", true), ErrEscapes},
		{"rename destination parent outside", move("workspace/app/x", "link/sub/x", false), ErrEscapes},
		{"rename destination new parent outside", move("workspace/app/x", "link/made/x", false), ErrEscapes},
		{"symlink chain: read", read("chain1"), ErrEscapes},
		{"symlink chain: append", write("chain1", true), ErrEscapes},
		{"climbing relative link", read("workspace/app/up"), ErrEscapes},
		{"dot-dot climbing", read("workspace/../../secret.txt"), ErrInvalidPath},
		{"dot-dot write", write("a/../../x", false), ErrInvalidPath},
		{"dot-dot that stays inside", read("workspace/../workspace/app/x"), ErrInvalidPath},
		{"dot-dot move destination", move("workspace/app/x", "../x", false), ErrInvalidPath},
		{"dot-dot list", list("..", false), ErrInvalidPath},
		{"absolute read", read("/etc/passwd"), ErrInvalidPath},
		{"absolute write", write(filepath.Join(os.TempDir(), "pwned"), false), ErrInvalidPath},
		{"NUL byte", read("workspace/app/x\x00/etc/passwd"), ErrInvalidPath},
		{"symlink loop", read("loop1"), ErrInvalidPath},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newEscapeFixture(t)
			before := f.outside(t)
			passwd := sum(t, "/etc/passwd")
			leak, err := c.op(f.ws)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var fe *Error
			if !errors.As(err, &fe) || strings.Contains(err.Error(), f.base) {
				t.Errorf("error %q is not an *Error, or names a host path", err)
			}
			if len(leak) > 0 {
				t.Errorf("read %q", leak)
			}
			if after := f.outside(t); !maps.Equal(before, after) {
				t.Errorf("outside changed:\nbefore %v\nafter  %v", before, after)
			}
			if sum(t, "/etc/passwd") != passwd {
				t.Error("/etc/passwd changed")
			}
			if b, _ := os.ReadFile(filepath.Join(f.home, "workspace/app/x")); string(b) != "mine" {
				t.Errorf("the source of a failed move changed: %q", b)
			}
		})
	}
}

// Operations on a symlink itself stay inside: the link is listed, removed, moved and
// replaced, never what it points to.
func TestSymlinkItself(t *testing.T) {
	f := newEscapeFixture(t)
	before := f.outside(t)

	es, _, err := f.ws.List("", ListOptions{Recursive: true, All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.Contains(e.Path, "secret") || strings.Contains(e.Path, "passwd") || strings.HasPrefix(e.Path, "link/") {
			t.Errorf("listing went through a link: %s", e.Path)
		}
		if e.Path == "other" && (e.Type != TypeSymlink || e.Target != "../other") {
			t.Errorf("other = %+v", e)
		}
	}
	e, err := f.ws.Stat("fakepw")
	if err != nil || e.Type != TypeSymlink || e.Target != filepath.Join(f.base, "etc/passwd") || e.Size == 32 {
		t.Errorf("stat link = %+v, %v", e, err)
	}
	if err := f.ws.Remove("other", true); err != nil {
		t.Errorf("remove link: %v", err)
	}
	if err := f.ws.Move("otherabs", "moved-link", false); err != nil {
		t.Errorf("move link: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(f.home, "moved-link")); err != nil || target != filepath.Join(f.base, "other") {
		t.Errorf("moved link = %q, %v", target, err)
	}
	// A link that stays inside is followed for reads, replaced by writes.
	if got := readAll(t, f.ws, "workspace/app/innerdir/app/x"); got != "mine" {
		t.Errorf("read through inner link = %q", got)
	}
	if _, _, err := f.ws.Write("workspace/app/innerdir", strings.NewReader("now a file"), WriteOptions{}); err != nil {
		t.Errorf("replace inner link: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(f.home, "workspace/app/innerdir")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("inner link not replaced: %v %v", fi, err)
	}
	if after := f.outside(t); !maps.Equal(before, after) {
		t.Errorf("outside changed:\nbefore %v\nafter  %v", before, after)
	}
}

// The escape sentinel is os.Root's own: if a Go release changes how Root reports an
// escape, this fails rather than every escape turning into a 500.
func TestEscapeSentinel(t *testing.T) {
	f := newEscapeFixture(t)
	if f.ws.escapes == nil {
		t.Fatal("no escape error found by the probe")
	}
	if _, err := f.ws.root.Open("pw"); !errors.Is(err, f.ws.escapes) {
		t.Fatalf("os.Root on an escaping link: %v, want the probed %v", err, f.ws.escapes)
	}
}
