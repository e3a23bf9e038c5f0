package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestLogFileCreatesPrivately(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".sandboxd", "logs", "web.log")
	l := &logFile{Path: path}
	defer l.Close()
	l.Printf("[sandbox-init] start %s (attempt %d)", "web", 1)

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "[sandbox-init] start web (attempt 1)\n" {
		t.Errorf("content = %q", got)
	}
	for p, want := range map[string]os.FileMode{
		filepath.Join(home, ".sandboxd"):         0o700,
		filepath.Join(home, ".sandboxd", "logs"): 0o700,
		path:                                     0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

func TestLogFileRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "web.log")
	l := &logFile{Path: path, Max: 1000}
	defer l.Close()

	chunk := bytes.Repeat([]byte("a"), 300)
	for range 3 {
		l.Write(chunk) // 900 bytes: not past Max yet
	}
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Fatalf("rotated before passing Max: %v", err)
	}
	l.Write(chunk) // 1200: past Max, rotated after this write
	if got := fileSize(t, path+".1"); got != 1200 {
		t.Fatalf("web.log.1 has %d bytes, want the 1200 written", got)
	}
	if got := fileSize(t, path); got != 0 {
		t.Fatalf("web.log has %d bytes after rotation, want 0", got)
	}

	// A second rotation replaces the old file: one old file is kept.
	l.Write(bytes.Repeat([]byte("b"), 1001))
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 1001 || old[0] != 'b' {
		t.Fatalf("web.log.1 = %d bytes starting %q, want the 1001 b's", len(old), old[:1])
	}
	matches, _ := filepath.Glob(path + "*")
	if len(matches) != 2 {
		t.Errorf("files = %q, want web.log and web.log.1", matches)
	}
}

func TestLogFileRotatesLeftoverOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.log")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &logFile{Path: path, Max: 1000}
	defer l.Close()
	l.Printf("new run")
	if got := fileSize(t, path+".1"); got != 2000 {
		t.Errorf("web.log.1 has %d bytes, want the 2000 left from before", got)
	}
	if got, _ := os.ReadFile(path); string(got) != "new run\n" {
		t.Errorf("web.log = %q", got)
	}
}

func TestLogFileReopensAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.log")
	l := &logFile{Path: path}
	l.Printf("one")
	l.Close()
	l.Printf("two") // a straggler writing after the service was removed
	l.Close()
	if got, _ := os.ReadFile(path); string(got) != "one\ntwo\n" {
		t.Errorf("content = %q", got)
	}
}

func TestLogFileReportsErrorsOnce(t *testing.T) {
	dir := t.TempDir()
	// A file where the log directory should be: every open fails.
	blocker := filepath.Join(dir, "logs")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var reported []error
	l := &logFile{Path: filepath.Join(blocker, "web.log"), OnError: func(err error) { reported = append(reported, err) }}
	for range 3 {
		if _, err := l.Write([]byte("x\n")); err == nil {
			t.Fatal("write succeeded")
		}
	}
	if len(reported) != 1 {
		t.Fatalf("reported %d errors, want 1: %v", len(reported), reported)
	}
	if !strings.Contains(reported[0].Error(), "not a directory") {
		t.Errorf("error = %v", reported[0])
	}
}

func TestLogFileConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.log")
	l := &logFile{Path: path, Max: 4096}
	defer l.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := []byte(strings.Repeat(string(rune('a'+i)), 99) + "\n")
			for range 100 {
				l.Write(line)
			}
		}()
	}
	wg.Wait()
	// Each write is whole: every line in both files is 99 equal letters.
	for _, p := range []string{path, path + ".1"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if len(line) != 99 || strings.Trim(line, line[:1]) != "" {
				t.Fatalf("%s: torn line %q", p, line)
			}
		}
	}
}
