package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// TestDockerPID1 runs the binary as PID 1 of a container hardened the way
// sandboxd makes them (uid 1000, all capabilities dropped, no-new-privileges,
// read-only root, tmpfs /tmp, bind-mounted home and run dir), in a
// throwaway FROM scratch image holding only a static busybox. It is skipped
// when Docker is not reachable, or with -short.
func TestDockerPID1(t *testing.T) {
	bin := initBinary(t)
	dk := newDocker(t)
	busybox := "/bin/busybox"
	if out, err := exec.Command("file", "-L", busybox).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Skipf("%s is not static: %s", busybox, out)
	}

	// The image: busybox and nothing else. Everything it makes is labeled
	// with this run's id and removed at the end.
	ctxDir := t.TempDir()
	copyFile(t, busybox, filepath.Join(ctxDir, "busybox"), 0o755)
	writeFile(t, filepath.Join(ctxDir, "Dockerfile"), 0o644, "FROM scratch\n"+
		"COPY busybox /bin/busybox\n"+
		`RUN ["/bin/busybox", "--install", "-s", "/bin"]`+"\n")
	image := "sandbox-init-test:" + dk.id
	dk.run(t, 2*time.Minute, "build", "-q", "--label", dk.label, "-t", image, ctxDir)

	// The home belongs to the container's user; the run dir is the host's.
	uid := 1000
	if os.Getuid() != 0 {
		uid = os.Getuid() // could not chown the home to 1000, nor remove its files afterwards
	}
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "www", "index.html"), 0o644, "hello from httpd\n")
	for _, p := range []string{home, filepath.Join(home, "www"), filepath.Join(home, "www", "index.html")} {
		os.Lchown(p, uid, uid)
	}
	runDir := t.TempDir()
	os.Chmod(runDir, 0o755)
	writeFile(t, filepath.Join(runDir, "services.json"), 0o644, `{"services":[
		{"name":"zombie","cmd":["sh","-c","sleep 0.1 & exit 0"]},
		{"name":"orphan","cmd":["sh","-c","setsid sleep 0.1 & exit 0"]},
		{"name":"parent","cmd":["sh","-c","(sleep 100000 & echo $! > orphan.pid); exec sleep 100000"]},
		{"name":"web","cmd":["httpd","-f","-p","127.0.0.1:8080","-h","www"],"port":8080}
	]}`)

	name := "sandbox-init-test-" + dk.id
	dk.run(t, time.Minute, "run", "-d", "--name", name, "--label", dk.label,
		"--user", fmt.Sprintf("%d:%d", uid, uid),
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--tmpfs", "/tmp",
		"-v", home+":/home/sandbox", "-v", runDir+":/opt/sandboxd/run:ro", "-v", bin+":/opt/sandboxd/init:ro",
		"--entrypoint", "/opt/sandboxd/init", image,
		"--", "sh", "-c", "echo main is up; exec sleep 100000")

	// Services come up; "web" is running once httpd listens.
	st := &initProc{t: t, home: home}
	st.waitService("web", func(s *initproto.ServiceState) bool { return s.State == stateRunning })
	st.waitService("zombie", func(s *initproto.ServiceState) bool { return s.Restarts >= 4 })
	st.waitService("orphan", func(s *initproto.ServiceState) bool { return s.Restarts >= 4 })
	st.waitRunning("main")

	t.Run("pid 1 and zombies", func(t *testing.T) {
		procs := dk.procs(t, name)
		if p := procs[1]; p.comm != "init" {
			t.Errorf("PID 1 is %q, want sandbox-init (mounted as init)", p.comm)
		}
		// Zombies may be caught between exit and reap; none may stay.
		for pid, p := range procs {
			if p.state != 'Z' {
				continue
			}
			testutil.Eventually(t, 5*time.Second, fmt.Sprintf("zombie %d (%s) to be reaped", pid, p.comm), func() bool {
				q, ok := dk.procs(t, name)[pid]
				return !ok || q.state != 'Z'
			})
		}
		out := dk.run(t, 30*time.Second, "exec", name, "ps", "-o", "pid,ppid,stat,comm")
		t.Logf("ps in the container:\n%s", out)
	})

	t.Run("orphan reparented to pid 1 and reaped", func(t *testing.T) {
		var orphan int
		testutil.Eventually(t, 10*time.Second, "orphan.pid", func() bool {
			data, _ := os.ReadFile(filepath.Join(home, "orphan.pid"))
			orphan, _ = strconv.Atoi(strings.TrimSpace(string(data)))
			return orphan > 0
		})
		if p := dk.procs(t, name)[orphan]; p.ppid != 1 || p.comm != "sleep" {
			t.Fatalf("orphan %d: %+v, want a sleep whose parent is PID 1", orphan, p)
		}
		dk.run(t, 30*time.Second, "exec", name, "kill", "-9", strconv.Itoa(orphan))
		testutil.Eventually(t, 5*time.Second, "the orphan to be reaped", func() bool {
			_, ok := dk.procs(t, name)[orphan]
			return !ok
		})
	})

	t.Run("relay reaches a loopback-only server", func(t *testing.T) {
		ip := strings.TrimSpace(dk.run(t, 30*time.Second, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name))
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "8080"), time.Second); err == nil {
			c.Close()
			t.Fatal("httpd is reachable directly: the relay proves nothing")
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "65535"), 5*time.Second)
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "RELAY 8080\nGET /index.html HTTP/1.0\r\n\r\n")
		got, _ := io.ReadAll(bufio.NewReader(c))
		if !strings.HasPrefix(string(got), "OK\nHTTP/1.") || !strings.Contains(string(got), "hello from httpd") {
			t.Fatalf("through the relay: %q", got)
		}
	})

	t.Run("exec makes a group leader", func(t *testing.T) {
		dk.run(t, 30*time.Second, "exec", "-d", name, "/opt/sandboxd/init", "exec", "--", "sleep", "4242")
		var pid int
		testutil.Eventually(t, 10*time.Second, "the exec'd sleep", func() bool {
			for p, st := range dk.procs(t, name) {
				if st.comm == "sleep" && st.args == "sleep 4242" {
					pid = p
					return true
				}
			}
			return false
		})
		st := dk.procs(t, name)[pid]
		if st.pgrp != pid || st.session != pid {
			t.Errorf("exec'd sleep: pid %d pgrp %d session %d, want all equal", pid, st.pgrp, st.session)
		}
	})

	t.Run("exec --log", func(t *testing.T) {
		_, stderr, err := dk.exec(30*time.Second, "exec", name, "/opt/sandboxd/init", "exec", "--log",
			"/home/sandbox/.sandboxd/tasks/t1.log", "--", "sh", "-c", "echo task output; exit 4")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
			t.Fatalf("exit: %v, want code 4; stderr %q", err, stderr)
		}
		if got := readFile(t, filepath.Join(home, ".sandboxd", "tasks", "t1.log")); got != "task output\n" {
			t.Errorf("log = %q", got)
		}
		if got := readFile(t, filepath.Join(home, ".sandboxd", "tasks", "t1.log.exit")); got != "4" {
			t.Errorf(".exit = %q", got)
		}
	})

	t.Run("docker stop", func(t *testing.T) {
		start := time.Now()
		dk.run(t, 30*time.Second, "stop", "-t", "10", name)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("docker stop took %s, want under 3s", d)
		}
		if code := strings.TrimSpace(dk.run(t, 30*time.Second, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
			t.Errorf("exit code %s, want 0", code)
		}
		stdout, stderr, err := dk.exec(30*time.Second, "logs", name)
		if err != nil {
			t.Fatal(err)
		}
		logs := stdout + stderr
		for _, want := range []string{"main is up", "sandbox-init: relay listening on ", ":65535", "SIGTERM: stopping 5 services", "all services stopped"} {
			if !strings.Contains(logs, want) {
				t.Errorf("docker logs lack %q:\n%s", want, logs)
			}
		}
		final := (&initProc{t: t, home: home}).readState()
		if final == nil {
			t.Fatal("no state file after stop")
		}
		for _, svc := range final.Services {
			if svc.State != stateStopped {
				t.Errorf("after stop: %+v", svc)
			}
		}
	})
}

// docker runs the docker CLI for one test, and removes what it labeled.
type docker struct {
	id    string // this run's id, in every name
	label string // on every container and image made
}

func newDocker(t *testing.T) *docker {
	t.Helper()
	// Under CI=true a missing engine is a failure: CI must prove the real thing.
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if testing.Short() {
		skip("SKIPPING: needs Docker (-short)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		skip("SKIPPING: no docker CLI")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "docker", "version").Run(); err != nil {
		skip("SKIPPING: Docker is not reachable: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	dk := &docker{id: hex.EncodeToString(b)}
	dk.label = "sandboxd.test.run=" + dk.id
	t.Cleanup(dk.removeAll)
	return dk
}

// exec runs docker with args and returns its stdout and stderr, and an
// *exec.ExitError when it exits non-zero.
func (dk *docker) exec(timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0") // a plain FROM scratch build needs no BuildKit
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// run runs docker with args and returns its stdout, failing the test on error.
func (dk *docker) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, stderr, err := dk.exec(timeout, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// removeAll removes every container and image with this run's label.
func (dk *docker) removeAll() {
	filter := "label=" + dk.label
	if out, _, err := dk.exec(time.Minute, "ps", "-aq", "--filter", filter); err == nil {
		if ids := strings.Fields(out); len(ids) > 0 {
			dk.exec(time.Minute, append([]string{"rm", "-f"}, ids...)...)
		}
	}
	if out, _, err := dk.exec(time.Minute, "images", "-q", "--filter", filter); err == nil {
		if ids := strings.Fields(out); len(ids) > 0 {
			dk.exec(time.Minute, append([]string{"rmi", "-f"}, ids...)...)
		}
	}
}

// containerProc is a process seen in a container's /proc.
type containerProc struct {
	procStat
	args string
}

// procs lists the container's processes from its /proc.
func (dk *docker) procs(t *testing.T, name string) map[int]containerProc {
	t.Helper()
	out := dk.run(t, 30*time.Second, "exec", name, "sh", "-c",
		`for d in /proc/[0-9]*; do s=$(cat $d/stat 2>/dev/null) && echo "$s|$(tr '\0' ' ' < $d/cmdline 2>/dev/null)"; done`)
	procs := map[int]containerProc{}
	for _, line := range strings.Split(out, "\n") {
		stat, args, ok := strings.Cut(line, "|")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.Fields(stat)[0])
		if err != nil {
			continue
		}
		st, ok := parseProcStat(stat)
		if ok {
			procs[pid] = containerProc{procStat: st, args: strings.TrimSpace(args)}
		}
	}
	return procs
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Skipf("no %s: %v", from, err)
	}
	writeFile(t, to, mode, string(data))
}

func writeFile(t *testing.T, path string, mode os.FileMode, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}
