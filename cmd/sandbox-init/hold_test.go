package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// While the run dir holds the hold file, nothing starts: not the image's command, not a
// declared service, and no state is written (issue 18: a fork's workspace is given to its
// uid while the container starts). Once sandboxd removes it, everything starts, having
// never seen it.
func TestHoldWaitsForTheWorkspace(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	runDir := t.TempDir()
	config := filepath.Join(runDir, initproto.ServicesFile)
	hold := filepath.Join(runDir, initproto.HoldFile)
	if err := os.WriteFile(hold, []byte("from 1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	saw := `if [ -e ` + hold + ` ]; then echo early; else echo ready; fi > `
	writeConfig(t, config, Spec{Name: "web", Cmd: sh(saw + `web.out; exec sleep 60`)})
	p := startInit(t, home, config, "--", "/bin/sh", "-c", saw+"main.out; exec sleep 60")

	testutil.Eventually(t, 10*time.Second, "sandbox-init waiting for the hold", func() bool {
		return strings.Contains(p.stderr.String(), "waiting for sandboxd to make the workspace ready")
	})
	if st := p.readState(); st != nil {
		t.Fatalf("state written while held: %+v", st)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "main"} {
		p.waitService(name, func(s *initproto.ServiceState) bool { return s.State == initproto.StateRunning })
		out := filepath.Join(home, name+".out")
		testutil.Eventually(t, 10*time.Second, name+" wrote what it saw", func() bool {
			b, _ := os.ReadFile(out)
			return strings.HasSuffix(string(b), "\n")
		})
		if b, _ := os.ReadFile(out); string(b) != "ready\n" {
			t.Errorf("%s saw %q: it started while the hold was there", name, b)
		}
	}
}

// A stop while held ends sandbox-init at once: there is nothing to stop.
func TestHoldEndsOnTerm(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	runDir := t.TempDir()
	config := filepath.Join(runDir, initproto.ServicesFile)
	if err := os.WriteFile(filepath.Join(runDir, initproto.HoldFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, config, Spec{Name: "web", Cmd: sh(`touch started; exec sleep 60`)})
	p := startInit(t, home, config)
	testutil.Eventually(t, 10*time.Second, "sandbox-init waiting for the hold", func() bool {
		return strings.Contains(p.stderr.String(), "waiting for sandboxd")
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if _, err := os.Stat(filepath.Join(home, "started")); err == nil {
		t.Error("a service started although the hold was never lifted")
	}
}
