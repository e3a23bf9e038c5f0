package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	writeConfig(t, config,
		Spec{Name: "crash", Cmd: sh(`echo "run $$"; exit 3`)},
		Spec{Name: "killed", Cmd: sh(`kill -9 $$`)},
	)
	p := startInit(t, home, config)

	crash := p.waitService("crash", func(s *initproto.ServiceState) bool { return s.Restarts >= 3 })
	if crash.LastExit == nil || crash.LastExit.Code != 3 || crash.LastExit.Signal != "" {
		t.Errorf("crash last_exit = %+v, want code 3", crash.LastExit)
	}
	testutil.Eventually(t, 10*time.Second, "three exits in crash.log", func() bool {
		return strings.Count(p.logOf("crash"), "exited: code 3") >= 3
	})
	// Each run leaves its start, its output and its exit, in order, and the
	// delay doubles from 250ms.
	lines := strings.Split(p.logOf("crash"), "\n")
	want := []string{
		`[sandbox-init] start crash (attempt 1)`, `run \d+`, `[sandbox-init] crash exited: code 3; restart in 250ms`,
		`[sandbox-init] start crash (attempt 2)`, `run \d+`, `[sandbox-init] crash exited: code 3; restart in 500ms`,
		`[sandbox-init] start crash (attempt 3)`, `run \d+`, `[sandbox-init] crash exited: code 3; restart in 1s`,
	}
	if len(lines) < len(want) {
		t.Fatalf("crash.log:\n%s", p.logOf("crash"))
	}
	for i, w := range want {
		re := regexp.MustCompile("^" + strings.NewReplacer("[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`).Replace(w) + "$")
		if !re.MatchString(lines[i]) {
			t.Fatalf("crash.log line %d = %q, want %q; log:\n%s", i+1, lines[i], w, p.logOf("crash"))
		}
	}

	for path, want := range map[string]os.FileMode{
		filepath.Join(home, ".sandboxd"):                      0o755,
		filepath.Join(home, ".sandboxd", "state.json"):        0o644,
		filepath.Join(home, ".sandboxd", "logs"):              0o700,
		filepath.Join(home, ".sandboxd", "logs", "crash.log"): 0o600,
	} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v; want mode %v", path, err, want)
		}
	}

	killed := p.waitService("killed", func(s *initproto.ServiceState) bool { return s.LastExit != nil })
	if killed.LastExit.Code != 137 || killed.LastExit.Signal != "SIGKILL" {
		t.Errorf("killed last_exit = %+v, want 137 SIGKILL", killed.LastExit)
	}
	testutil.Eventually(t, 5*time.Second, "the signal exit in killed.log", func() bool {
		return strings.Contains(p.logOf("killed"), "[sandbox-init] killed exited: killed by signal 9")
	})
}

func TestReloadAppliesDiff(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	keep := Spec{Name: "keep", Cmd: []string{"sleep", "1000"}}
	goneSpec := Spec{Name: "gone", Cmd: sh(`echo gone up; exec sleep 1000`)}
	change := Spec{Name: "change", Cmd: []string{"sleep", "1000"}, Env: map[string]string{"V": "1"}}
	writeConfig(t, config, keep, goneSpec, change)
	p := startInit(t, home, config, "--", "sleep", "1000")

	mainPID := p.waitRunning("main").PID
	keepPID := p.waitRunning("keep").PID
	gonePID := p.waitRunning("gone").PID
	changePID := p.waitRunning("change").PID

	change.Env = map[string]string{"V": "2"}
	added := Spec{Name: "added", Cmd: []string{"sleep", "1000"}}
	writeConfig(t, config, keep, change, added)
	p.signal(syscall.SIGHUP)

	p.waitRunning("added")
	testutil.Eventually(t, 10*time.Second, "gone to leave the state file", func() bool { return p.service("gone") == nil })
	testutil.Eventually(t, 10*time.Second, "gone's process to be reaped", func() bool { return gone(gonePID) })
	ch := p.waitService("change", func(s *initproto.ServiceState) bool { return s.State == stateRunning && s.PID != changePID })
	if ch.Restarts != 0 {
		t.Errorf("changed service restarts = %d, want 0 for its new spec", ch.Restarts)
	}
	testutil.Eventually(t, 10*time.Second, "the old change process to be reaped", func() bool { return gone(changePID) })
	if got := p.service("keep"); got == nil || got.PID != keepPID || got.Restarts != 0 {
		t.Errorf("unchanged service: %+v, want pid %d untouched", got, keepPID)
	}
	if got := p.service("main"); got == nil || got.PID != mainPID {
		t.Errorf("main: %+v, want pid %d untouched", got, mainPID)
	}
	testutil.Eventually(t, 5*time.Second, "gone's stop in its log", func() bool {
		return strings.Contains(p.logOf("gone"), "[sandbox-init] stop gone (SIGTERM)\n[sandbox-init] gone exited: killed by signal 15\n")
	})
	if !strings.HasPrefix(p.logOf("gone"), "[sandbox-init] start gone (attempt 1)\ngone up\n") {
		t.Errorf("gone.log:\n%s", p.logOf("gone"))
	}
	// The new process of "change" sees the new environment.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.service("change").PID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\x00"+string(env), "\x00V=2\x00") {
		t.Errorf("changed service env has no V=2: %q", env)
	}
}

func TestReloadByPollingAndZeroServices(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "run", "services.json") // no file, no main
	p := startInit(t, home, config)

	testutil.Eventually(t, 10*time.Second, "an empty state file", func() bool {
		st := p.readState()
		return st != nil && len(st.Services) == 0
	})
	testutil.Eventually(t, 5*time.Second, "the config error in the log", func() bool {
		return strings.Contains(p.stderr.String(), "no such file or directory: no declared services")
	})

	// No SIGHUP: the poll of the file's stat must find it.
	os.Mkdir(filepath.Dir(config), 0o755)
	writeConfig(t, config, Spec{Name: "late", Cmd: []string{"sleep", "1000"}})
	pid := p.waitRunning("late").PID

	// An invalid file is zero services: running ones stop, it stays up.
	if err := os.WriteFile(config+".tmp", []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(config+".tmp", config)
	testutil.Eventually(t, 10*time.Second, "late to be removed", func() bool {
		st := p.readState()
		return st != nil && len(st.Services) == 0 && gone(pid)
	})
	if !p.running() {
		t.Fatal("sandbox-init exited with zero services")
	}
	if n := strings.Count(p.stderr.String(), "no such file or directory: no declared services"); n != 1 {
		t.Errorf("missing-file error logged %d times, want once:\n%s", n, p.stderr.String())
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(5 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestShutdownStopsEverything(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	writeConfig(t, config,
		Spec{Name: "a", Cmd: []string{"sleep", "1000"}},
		// A shell with a child: the whole group gets the signal.
		Spec{Name: "b", Cmd: sh(`trap 'echo b got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done`)},
		Spec{Name: "crashing", Cmd: sh(`exit 1`)},
	)
	p := startInit(t, home, config, "--", "sleep", "1000")
	var pids []int
	for _, name := range []string{"main", "a", "b"} {
		pids = append(pids, p.waitRunning(name).PID)
	}
	// Running is spawned, not yet trapping: a TERM before the trap would kill the shell.
	testutil.Eventually(t, 5*time.Second, "b to trap TERM", func() bool { return strings.Contains(p.logOf("b"), "ready\n") })

	start := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(5 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, p.stderr.String())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s to stop, want well under Docker's 10s", d)
	}
	for _, pid := range pids {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("pid %d to be gone", pid), func() bool { return gone(pid) })
	}
	final := p.readState()
	if final == nil {
		t.Fatal("no state file after shutdown")
	}
	for _, svc := range final.Services {
		if svc.State != stateStopped || svc.PID != 0 {
			t.Errorf("after shutdown: %+v", svc)
		}
	}
	if log := p.logOf("b"); !strings.Contains(log, "b got TERM\n") || !strings.Contains(log, "[sandbox-init] b exited: code 0") {
		t.Errorf("b.log:\n%s", log)
	}
}

func TestShutdownKillsStubbornService(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	// SIGTERM is ignored, and the ignoring is inherited by sleep.
	writeConfig(t, config, Spec{Name: "stubborn", Cmd: sh(`trap '' TERM; echo ready; while :; do sleep 0.1; done`)})
	p := startInit(t, home, config)
	p.waitRunning("stubborn")
	testutil.Eventually(t, 5*time.Second, "stubborn to be ready", func() bool { return strings.Contains(p.logOf("stubborn"), "ready\n") })

	start := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if d := time.Since(start); d < shutdownTimeout-500*time.Millisecond || d > shutdownTimeout+shutdownGrace {
		t.Errorf("stopped after %s, want SIGKILL at about %s", d, shutdownTimeout)
	}
	testutil.Eventually(t, 5*time.Second, "the kill in the log", func() bool {
		return strings.Contains(p.logOf("stubborn"), "[sandbox-init] stubborn exited: killed by signal 9")
	})
}

func TestOrphansReaped(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	writeConfig(t, config,
		// Leaves an orphan (in its group) and stays up: the orphan is
		// reparented to sandbox-init, which must reap it when it dies.
		Spec{Name: "parent", Cmd: sh(`(sleep 1000 & echo $! > orphan.pid); exec sleep 1000`)},
		// Exits at once, many times, leaving a short-lived child each time.
		Spec{Name: "churn", Cmd: sh(`sleep 0.05 & exit 0`)},
	)
	p := startInit(t, home, config)
	initPID := p.cmd.Process.Pid

	var orphan int
	testutil.Eventually(t, 10*time.Second, "orphan.pid", func() bool {
		data, _ := os.ReadFile(filepath.Join(home, "orphan.pid"))
		orphan, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		return orphan > 0
	})
	testutil.Eventually(t, 10*time.Second, "the orphan to be reparented to sandbox-init", func() bool {
		st, ok := readProcStat(orphan)
		return ok && st.ppid == initPID
	})
	syscall.Kill(orphan, syscall.SIGKILL)
	testutil.Eventually(t, 10*time.Second, "the killed orphan to be reaped", func() bool { return gone(orphan) })

	p.waitService("churn", func(s *initproto.ServiceState) bool { return s.Restarts >= 4 })
	// Zombies come and go as churn runs; none may stay.
	zombies := childZombies(initPID)
	for _, z := range zombies {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("zombie %d to be reaped", z), func() bool {
			st, ok := readProcStat(z)
			return !ok || st.state != 'Z'
		})
	}
}

// childZombies lists the zombie children of ppid.
func childZombies(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok && st.ppid == ppid && st.state == 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

func TestServiceEnvironmentAndCwd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	app := filepath.Join(home, "workspace", "app")
	writeConfig(t, config, Spec{
		Name: "web",
		Cmd:  sh(`echo "cwd=$(pwd)"; env | sort; exec sleep 1000`),
		Cwd:  "workspace/app",
		Env:  map[string]string{"PORT": "4000", "HOME": home},
	})
	p := startInit(t, home, config)

	// The directory does not exist yet: retried like a crash.
	testutil.Eventually(t, 5*time.Second, "the missing cwd in the log", func() bool {
		return strings.Contains(p.logOf("web"), "failed to start: cwd "+app+": no such directory; retry in")
	})
	// The state file is written after the log line: wait for it too.
	p.waitService("web", func(s *initproto.ServiceState) bool {
		return s.State == stateBackoff && strings.Contains(s.Error, "no such directory")
	})
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	web := p.waitService("web", func(s *initproto.ServiceState) bool { return s.PID > 0 })
	if web.Error != "" {
		t.Errorf("error kept after a good start: %q", web.Error)
	}
	testutil.Eventually(t, 5*time.Second, "the env in the log", func() bool { return strings.Contains(p.logOf("web"), "SHELL=") })

	log := p.logOf("web")
	for _, want := range []string{"cwd=" + app, "HOME=" + home, "PORT=4000", "LOGNAME=", "USER=", "PATH="} {
		if !strings.Contains(log, "\n"+want) {
			t.Errorf("web.log lacks %q:\n%s", want, log)
		}
	}
	shell := "/bin/sh"
	if _, err := os.Stat("/bin/bash"); err == nil {
		shell = "/bin/bash"
	}
	if !strings.Contains(log, "\nSHELL="+shell+"\n") {
		t.Errorf("SHELL is not %s:\n%s", shell, log)
	}
	// Its own process group, and no stdin to read.
	st, ok := readProcStat(web.PID)
	if !ok || st.pgrp != web.PID {
		t.Errorf("service pgrp = %d, want its pid %d", st.pgrp, web.PID)
	}
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", web.PID)); target != os.DevNull {
		t.Errorf("stdin is %q, want %s", target, os.DevNull)
	}
}

func TestStartingUntilPortListens(t *testing.T) {
	t.Parallel()
	// A free port, which the test itself opens later: sandbox-init reads
	// the listening sockets of its network namespace, the host's here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	writeConfig(t, config, Spec{Name: "web", Cmd: []string{"sleep", "1000"}, Port: port})
	p := startInit(t, home, config)
	web := p.waitService("web", func(s *initproto.ServiceState) bool { return s.PID > 0 })
	if web.State != stateStarting || web.Port != port {
		t.Fatalf("before the port listens: %+v, want starting", web)
	}
	ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("port %d was taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	p.waitService("web", func(s *initproto.ServiceState) bool { return s.State == stateRunning })
}

func TestSignalsForwarded(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	writeConfig(t, config, Spec{Name: "usr", Cmd: sh(`trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.1; done`)})
	p := startInit(t, home, config)
	testutil.Eventually(t, 5*time.Second, "usr to be ready", func() bool { return strings.Contains(p.logOf("usr"), "ready\n") })
	pid := p.service("usr").PID
	p.signal(syscall.SIGUSR1)
	testutil.Eventually(t, 5*time.Second, "the trap to run", func() bool { return strings.Contains(p.logOf("usr"), "got USR1\n") })
	if got := p.service("usr"); got.PID != pid {
		t.Errorf("usr restarted on USR1: %+v", got)
	}
	if !p.running() {
		t.Fatal("sandbox-init exited on SIGUSR1")
	}
}
