package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	var b backoff
	var got []time.Duration
	for range 10 {
		got = append(got, b.next(time.Second)) // quick exits
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("quick exits: %v, want %v", got, want)
	}
	if d := b.next(10 * time.Second); d != backoffMin {
		t.Errorf("after 10s up: %v, want the minimum", d)
	}
	if d := b.next(0); d != 2*backoffMin {
		t.Errorf("a failed start after that: %v, want it to double again", d)
	}
	if d := b.next(9 * time.Second); d != 4*backoffMin {
		t.Errorf("9s up is not long enough to reset: got %v", d)
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "plain"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(home, "local"), []byte("#!/bin/sh\n"), 0o755)
	env := []string{"PATH=/nonexistent:" + bin}

	tests := []struct {
		cmd, cwd, want, err string
	}{
		{cmd: "tool", want: filepath.Join(bin, "tool")},
		{cmd: "./local", want: "./local"},
		{cmd: bin + "/tool", want: bin + "/tool"},
		{cmd: "plain", err: `exec "plain": not found`}, // not executable: skipped in PATH, like a shell
		{cmd: "./plain", cwd: "bin", err: `exec "./plain": permission denied`},
		{cmd: "nope", err: `exec "nope": not found`},
		{cmd: "tool", cwd: "missing/dir", err: "cwd " + filepath.Join(home, "missing/dir") + ": no such directory"},
		{cmd: "tool", cwd: "local", err: "no such directory"}, // a file, not a directory
	}
	for _, tt := range tests {
		spec := Spec{Name: "x", Cmd: []string{tt.cmd}, Cwd: tt.cwd}
		got, err := resolve(spec, env, spec.dir(home))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s in %q: err %v, want %q", tt.cmd, tt.cwd, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s in %q: %q, %v; want %q", tt.cmd, tt.cwd, got, err, tt.want)
		}
	}
}
