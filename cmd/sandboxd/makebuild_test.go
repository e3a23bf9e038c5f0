package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// copyTree copies the module's files (not .git, not bin) to a new directory, so that a test
// can touch and remove sources without disturbing the checkout. Everything in the copy is
// dated a day back: whatever a test changes afterwards is newer than what make built.
func copyTree(t *testing.T) string {
	t.Helper()
	root := dockertest.ModuleRoot(t)
	dst := t.TempDir()
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == ".git" || rel == "bin" {
				return filepath.SkipDir
			}
			dirs = append(dirs, filepath.Join(dst, rel))
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	dayAgo := time.Now().Add(-24 * time.Hour)
	err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, dayAgo, dayAgo)
	})
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- { // children first
		err = os.Chtimes(dirs[i], dayAgo, dayAgo)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Every `make run` rebuilt both binaries (issue 10): they are rebuilt only when a source,
// the version or the toolchain changed.
func TestMakeBuildRebuildsOnlyOnChange(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	t.Parallel()
	dir := copyTree(t)
	make := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
		cmd.Dir = dir
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	built := func(out string) bool { return strings.Contains(out, "go build") }
	// touch dates a file now, after the last build.
	touch := func(p string) {
		t.Helper()
		now := time.Now()
		if err := os.Chtimes(p, now, now); err != nil {
			t.Fatal(err)
		}
	}

	if out := make("build"); !built(out) {
		t.Fatalf("the first make build built nothing:\n%s", out)
	}
	if out := make("build"); built(out) {
		t.Fatalf("make build with nothing changed rebuilt:\n%s", out)
	}

	steps := []struct {
		name   string
		change func()
		args   []string
	}{
		{"a Go file changed", func() { touch(filepath.Join(dir, "store/migrate.go")) }, nil},
		{"an embedded file changed", func() { touch(filepath.Join(dir, "store/migrations/0001_init.sql")) }, nil},
		{"go.sum changed", func() { touch(filepath.Join(dir, "go.sum")) }, nil},
		{"a Go file added", func() {
			if err := os.WriteFile(filepath.Join(dir, "store/zz_added.go"), []byte("package store\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil},
		// Only the directory's time tells of a removal.
		{"a Go file removed", func() {
			if err := os.Remove(filepath.Join(dir, "store/zz_added.go")); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"the version changed", func() {}, []string{"VERSION=v-test"}},
	}
	for _, s := range steps {
		s.change()
		// sandbox-init stands for both: the rules are the same, and it links in a moment.
		if out := make(append([]string{"bin/sandbox-init"}, s.args...)...); !built(out) {
			t.Fatalf("%s: make did not rebuild:\n%s", s.name, out)
		}
		if out := make(append([]string{"bin/sandbox-init"}, s.args...)...); built(out) {
			t.Fatalf("%s: the next make rebuilt again:\n%s", s.name, out)
		}
	}
}
