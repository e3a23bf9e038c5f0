package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// The other proxies BenchmarkProxy measures the edge against (issue 14), each as its own
// process in front of the same upstream, configured as an operator would run it as a
// reverse proxy: keep-alive connections to the upstream, no access log (the edge writes
// none per request either), and every header a proxy is expected to add. nginx and Caddy
// are Debian's packages (images/prereqs.sh bench installs them); one that is missing is
// skipped with a line saying so.

// contender is one way to the upstream: a proxy, or none.
type contender struct {
	name string
	addr string // where the load goes; "" for a proxy that is not installed
	pid  int    // the proxy's process, whose CPU time (its children's too) is measured; 0 for none
}

// freeAddr returns a loopback address with a port nobody listens on now, for a proxy that
// cannot be told to pick its own.
func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBareProxy runs testdata/bareproxy, the standard library's ReverseProxy with the
// edge's transport tuning and nothing else, in front of upstream.
func startBareProxy(b *testing.B, cores split, upstream string) contender {
	bin := dockertest.Binary(b, "./cmd/sandboxd/testdata/bareproxy")
	cmd := cores.command(bin, "http://"+upstream)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return contender{name: "stock", addr: strings.TrimSpace(line), pid: cmd.Process.Pid}
}

// startNginx runs nginx in front of upstream with a worker per core it is given, as
// worker_processes auto would, or returns none when nginx is not installed.
func startNginx(b *testing.B, cores split, upstream string) contender {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx" // not on a user's PATH
		if _, err := os.Stat(bin); err != nil {
			loudly(b, "SKIPPING nginx: not installed (images/prereqs.sh bench installs it)")
			return contender{name: "nginx"}
		}
	}
	dir := b.TempDir()
	addr := freeAddr(b)
	conf := fmt.Sprintf(`worker_processes %[4]d;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	# nginx closes a client connection after 1000 requests by default; the others never do.
	keepalive_requests 1000000;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	upstream app {
		server %[2]s;
		keepalive 128;
	}
	server {
		listen %[3]s;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header X-Forwarded-Host $host;
			# A 64 KiB answer fits the buffers: nginx never spills it to a temp file.
			proxy_buffers 16 8k;
		}
	}
}
`, dir, upstream, addr, cores.proxyCPUs)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := cores.command(bin, "-p", dir, "-c", path)
	startProxy(b, "nginx", cmd, addr, func() string { log, _ := os.ReadFile(filepath.Join(dir, "error.log")); return string(log) })
	return contender{name: "nginx", addr: addr, pid: cmd.Process.Pid}
}

// startCaddy runs Caddy in front of upstream, or returns none when Caddy is not installed.
func startCaddy(b *testing.B, cores split, upstream string) contender {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		loudly(b, "SKIPPING caddy: not installed (images/prereqs.sh bench installs it)")
		return contender{name: "caddy"}
	}
	dir := b.TempDir()
	addr := freeAddr(b)
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %s
}
:%s {
	bind 127.0.0.1
	reverse_proxy %s
}
`, dir, port, upstream)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := cores.command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logPath := filepath.Join(dir, "caddy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	cmd.Stderr = logFile
	startProxy(b, "caddy", cmd, addr, func() string { log, _ := os.ReadFile(logPath); return string(log) })
	return contender{name: "caddy", addr: addr, pid: cmd.Process.Pid}
}

// split is how BenchmarkProxy shares the machine's cores: the proxy measured gets the
// upper half, the load generator and the app the lower half (on 2 cores, one each). A
// proxy's cost then shows in its rate, as it would on a machine where it has cores of its
// own, instead of being diluted by the load generator and the app competing with it for
// the same ones. With fewer than 2 cores, or without taskset, nothing is pinned.
type split struct {
	proxy, rest string // taskset CPU lists; "" when not pinned
	proxyCPUs   int    // cores the proxy may use
}

func coreSplit(b *testing.B) split {
	n := runtime.NumCPU()
	if _, err := exec.LookPath("taskset"); err != nil || n < 2 {
		loudly(b, "NOT PINNING: %d cores, taskset: %v; the load generator and the app share the proxy's cores", n, err)
		return split{proxyCPUs: n}
	}
	half := n / 2
	return split{rest: fmt.Sprintf("0-%d", half-1), proxy: fmt.Sprintf("%d-%d", half, n-1), proxyCPUs: n - half}
}

// command is exec.Command on the proxy's cores.
func (s split) command(name string, args ...string) *exec.Cmd {
	if s.proxy == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", s.proxy, name}, args...)...)
}

// pin moves every thread of process pid onto cpus (a taskset list); Go threads made later
// inherit it.
func (s split) pin(b *testing.B, pid int, cpus string) {
	if cpus == "" {
		return
	}
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		b.Fatalf("taskset %s %d: %v\n%s", cpus, pid, err, out)
	}
}

// cpuTicks is the CPU time, user and system, that process pid and its children (nginx's
// workers) have used, in clock ticks (USER_HZ, 100 a second on Linux).
func cpuTicks(b *testing.B, pid int) int64 {
	t, err := procTicks(pid)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func procTicks(pid int) (int64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command (in parentheses, which may hold spaces): utime and stime
	// are the 12th and 13th of them.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	total := utime + stime
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, k := range strings.Fields(string(kids)) {
		if kid, err := strconv.Atoi(k); err == nil {
			t, _ := procTicks(kid) // a child gone meanwhile used no more
			total += t
		}
	}
	return total, nil
}

// startProxy starts cmd, stops it when b ends, and waits until addr accepts connections.
// It runs in a process group of its own, which the cleanup kills whole: nginx's workers
// outlive a master killed alone.
func startProxy(b *testing.B, name string, cmd *exec.Cmd, addr string, logs func() string) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	// cmd.Wait is the only wait; the cleanup and the loop below read its result.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b.Fatalf("%s exited before listening: %v\n%s", name, waitErr, logs())
		case <-time.After(20 * time.Millisecond): // polling a port that has no way to signal
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s within 30s\n%s", name, addr, logs())
		}
	}
}

// loudly says what makes a run's figures incomplete where it is seen without -v: a
// benchmark's own log is printed only for its leaves, and these are said by the parent.
func loudly(b *testing.B, format string, args ...any) {
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, "BenchmarkProxy: "+format+"\n", args...)
}
