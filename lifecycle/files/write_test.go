package files

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func tempsIn(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmps []string
	for _, d := range des {
		if strings.Contains(d.Name(), ".sandboxd-tmp-") {
			tmps = append(tmps, d.Name())
		}
	}
	return tmps
}

func TestWriteCreatesParentsOwnerMode(t *testing.T) {
	ws, home := newWorkspace(t)
	e, created, err := ws.Write("workspace/app/src/main.go", strings.NewReader("package main\n"), WriteOptions{})
	if err != nil || !created {
		t.Fatalf("write: %v created=%v", err, created)
	}
	if e.Path != "workspace/app/src/main.go" || e.Name != "main.go" || e.Type != TypeFile || e.Size != 13 || e.Mode != 0o644 {
		t.Errorf("entry = %+v", e)
	}
	for _, d := range []string{"workspace", "workspace/app", "workspace/app/src"} {
		fi, err := os.Stat(filepath.Join(home, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", d, fi, err)
		}
		checkOwner(t, filepath.Join(home, d))
	}
	checkOwner(t, filepath.Join(home, "workspace/app/src/main.go"))

	// An explicit mode is honoured; an overwrite without one keeps it.
	if e, _, err := ws.Write("run.sh", strings.NewReader("#!/bin/sh\n"), WriteOptions{Mode: 0o750}); err != nil || e.Mode != 0o750 {
		t.Fatalf("write 0750: %+v %v", e, err)
	}
	e, created, err = ws.Write("run.sh", strings.NewReader("#!/bin/sh\necho\n"), WriteOptions{})
	if err != nil || created || e.Mode != 0o750 {
		t.Fatalf("overwrite: %+v created=%v %v", e, created, err)
	}
	if fi, _ := os.Stat(filepath.Join(home, "run.sh")); fi.Mode().Perm() != 0o750 {
		t.Errorf("mode on disk = %v", fi.Mode())
	}
	checkOwner(t, filepath.Join(home, "run.sh"))
	if got := readAll(t, ws, "run.sh"); got != "#!/bin/sh\necho\n" {
		t.Errorf("content = %q", got)
	}
}

// A reader never sees a partial file: until the rename the old content stays, and a
// failed write leaves the old content and no temp file behind.
func TestWriteAtomic(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "f.txt"), "old content")

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, _, err := ws.Write("f.txt", pr, WriteOptions{})
		done <- err
	}()
	if _, err := pw.Write([]byte("new half")); err != nil { // returns once Write consumed it
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "f.txt")); string(b) != "old content" {
		t.Errorf("mid-write content = %q", b)
	}
	if tmps := tempsIn(t, home); len(tmps) != 1 || !strings.HasPrefix(tmps[0], ".f.txt.sandboxd-tmp-") {
		t.Errorf("temp files mid-write = %v", tmps)
	}
	pw.CloseWithError(errors.New("client went away"))
	if err := <-done; err == nil {
		t.Fatal("a write whose body failed succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(home, "f.txt")); string(b) != "old content" {
		t.Errorf("after a failed write = %q", b)
	}
	if tmps := tempsIn(t, home); len(tmps) != 0 {
		t.Errorf("temp files left = %v", tmps)
	}

	if _, _, err := ws.Write("f.txt", strings.NewReader("new content"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "f.txt")); string(b) != "new content" {
		t.Errorf("after the write = %q", b)
	}
	if tmps := tempsIn(t, home); len(tmps) != 0 {
		t.Errorf("temp files left = %v", tmps)
	}
}

func TestWriteTooLarge(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "f.txt"), "keep me")
	cases := []struct {
		name, path string
		append     bool
	}{
		{"replace", "f.txt", false},
		{"append", "f.txt", true},
		{"new file in new dirs", "new/dir/f.txt", false},
		{"append new file in new dirs", "new/dir/g.txt", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ws.Write(c.path, strings.NewReader("12345678901"), WriteOptions{MaxBytes: 10, Append: c.append})
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if b, _ := os.ReadFile(filepath.Join(home, "f.txt")); string(b) != "keep me" {
				t.Errorf("target = %q", b)
			}
			if _, err := os.Lstat(filepath.Join(home, "new")); !os.IsNotExist(err) {
				t.Errorf("parents made for the failed write are left: %v", err)
			}
			if tmps := tempsIn(t, home); len(tmps) != 0 {
				t.Errorf("temp files left = %v", tmps)
			}
		})
	}
	if _, _, err := ws.Write("f.txt", strings.NewReader("1234567890"), WriteOptions{MaxBytes: 10}); err != nil {
		t.Errorf("exactly MaxBytes: %v", err)
	}
}

func TestAppend(t *testing.T) {
	ws, home := newWorkspace(t)
	e, created, err := ws.Write("logs/a.log", strings.NewReader("one\n"), WriteOptions{Append: true})
	if err != nil || !created || e.Mode != 0o644 || e.Size != 4 {
		t.Fatalf("first append: %+v %v %v", e, created, err)
	}
	e, created, err = ws.Write("logs/a.log", strings.NewReader("two\n"), WriteOptions{Append: true, Mode: 0o600})
	if err != nil || created || e.Size != 8 || e.Mode != 0o600 {
		t.Fatalf("second append: %+v %v %v", e, created, err)
	}
	if got := readAll(t, ws, "logs/a.log"); got != "one\ntwo\n" {
		t.Errorf("content = %q", got)
	}
	checkOwner(t, filepath.Join(home, "logs/a.log"))
	checkOwner(t, filepath.Join(home, "logs"))

	// An append follows a link that stays inside.
	os.Symlink("logs/a.log", filepath.Join(home, "current.log"))
	if _, _, err := ws.Write("current.log", strings.NewReader("three\n"), WriteOptions{Append: true}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, ws, "logs/a.log"); got != "one\ntwo\nthree\n" {
		t.Errorf("content = %q", got)
	}
}

func TestWriteRefusals(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "file"), "x")
	os.Mkdir(filepath.Join(home, "dir"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(home, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		append     bool
		want       error
	}{
		{"the home", "", false, ErrIsDir},
		{"a directory", "dir", false, ErrIsDir},
		{"append to a directory", "dir", true, ErrIsDir},
		{"a parent is a file", "file/x", false, ErrNotDir},
		{"append to a FIFO", "fifo", true, ErrNotRegular},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, _, err := ws.Write(c.path, strings.NewReader("y"), WriteOptions{Append: c.append})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("write blocked")
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(home, "file")); string(b) != "x" {
		t.Errorf("file = %q", b)
	}
}

// Writing onto a symlink replaces the link; the file it pointed to is untouched.
func TestWriteReplacesSymlink(t *testing.T) {
	ws, home := newWorkspace(t)
	mustWriteFile(t, filepath.Join(home, "target.txt"), "target")
	os.Symlink("target.txt", filepath.Join(home, "lnk"))
	e, created, err := ws.Write("lnk", strings.NewReader("replaced"), WriteOptions{})
	if err != nil || created || e.Type != TypeFile {
		t.Fatalf("%+v %v %v", e, created, err)
	}
	if fi, _ := os.Lstat(filepath.Join(home, "lnk")); !fi.Mode().IsRegular() {
		t.Errorf("lnk is %v", fi.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(home, "target.txt")); string(b) != "target" {
		t.Errorf("target = %q", b)
	}
}
