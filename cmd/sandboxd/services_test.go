package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

type serviceJSON struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"`
	Note     string   `json:"note"`
	Cmd      []string `json:"cmd"`
	State    string   `json:"state"`
	PID      int      `json:"pid"`
	Restarts int      `json:"restarts"`
	LastExit *struct {
		Code int `json:"code"`
	} `json:"last_exit"`
}

func services(t *testing.T, d *daemon, id string) map[string]serviceJSON {
	t.Helper()
	var v struct{ Services []serviceJSON }
	if code := call(t, "GET", d.API+"/v1/sandboxes/"+id+"/services", nil, &v); code != 200 {
		t.Fatalf("get services: %d", code)
	}
	out := map[string]serviceJSON{}
	for _, s := range v.Services {
		out[s.Name] = s
	}
	return out
}

func mustPreview(t *testing.T, d *daemon, id string, port int, path, want string) {
	t.Helper()
	resp, body := preview(t, d, id, port, "GET", path, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, want) {
		t.Fatalf("preview %s:%d%s = %d %q, want %q", id, port, path, resp.StatusCode, body, want)
	}
}

var web4000 = map[string]any{"name": "web", "cmd": []string{"devserver"}, "env": map[string]string{"PORT": "4000"}, "port": 4000}

// A declared service comes back by itself after a stop and a wake, and after a kill -9 and
// restart of sandboxd, with no API call in between.
func TestServicesSurviveSleepAndRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startProcess(nil)
	sb := mustCreate(t, p.daemon, map[string]any{"id": "svc", "services": []any{web4000}})
	if len(sb.Ports) != 1 || sb.Ports[0] != 4000 {
		t.Fatalf("a service's port is declared: %v", sb.Ports)
	}
	mustPreview(t, p.daemon, "svc", 4000, "/", "hello from svc")
	if code := call(t, "POST", p.API+"/v1/sandboxes/svc/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	mustPreview(t, p.daemon, "svc", 4000, "/", "hello from svc") // wakes; the service runs again

	p.kill9(t)
	d := e.start()
	mustPreview(t, d, "svc", 4000, "/", "hello from svc")
	testutil.Eventually(t, 20*time.Second, "web to show running", func() bool { return services(t, d, "svc")["web"].State == "running" })
}

// The image's own command runs as service "main"; services change live without a restart.
func TestServicesApplyLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "live", "ports": []int{3000}, "services": []any{web4000}})
	mustPreview(t, d, "live", 3000, "/", "hello from live") // testkit's CMD, devserver on 3000
	testutil.Eventually(t, 20*time.Second, "web to run", func() bool { return services(t, d, "live")["web"].State == "running" })
	before := services(t, d, "live")
	// The image's service says where it comes from, not "cmd":null.
	if m := before["main"]; m.State != "running" || m.Source != "image" || m.Note == "" || m.Cmd != nil {
		t.Fatalf("main: %+v", m)
	}
	if w := before["web"]; w.Source != "declared" || len(w.Cmd) != 1 || w.Cmd[0] != "devserver" {
		t.Fatalf("web: %+v", w)
	}
	name := e.containerName("live")
	info, err := e.docker.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var sb sandboxJSON
	code := call(t, "PUT", d.API+"/v1/sandboxes/live/services", map[string]any{"services": []any{
		web4000,
		map[string]any{"name": "api", "cmd": []string{"devserver"}, "env": map[string]string{"PORT": "4001"}, "port": 4001},
	}}, &sb)
	if code != 200 || len(sb.Ports) != 3 {
		t.Fatalf("put services: %d %+v", code, sb)
	}
	mustPreview(t, d, "live", 4001, "/", "hello from live")
	after := services(t, d, "live")
	if after["web"].PID != before["web"].PID || after["main"].PID != before["main"].PID {
		t.Errorf("unchanged services were restarted: before %+v after %+v", before, after)
	}
	now, _ := e.docker.ContainerInspect(context.Background(), name)
	if now.State.StartedAt != info.State.StartedAt {
		t.Errorf("the container restarted")
	}
	// Removing a service stops it.
	if code := call(t, "PUT", d.API+"/v1/sandboxes/live/services", map[string]any{"services": []any{}}, nil); code != 200 {
		t.Fatalf("put no services: %d", code)
	}
	testutil.Eventually(t, 20*time.Second, "web to stop", func() bool {
		resp, _ := preview(t, d, "live", 4000, "GET", "/", "", http.Header{"Accept": {"application/json"}})
		return resp.StatusCode == http.StatusBadGateway
	})
}

// A crash-looping service is restarted with backoff, and its log shows each exit.
func TestCrashLoopingService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "loop", "services": []any{
		map[string]any{"name": "boom", "cmd": []string{"sh", "-c", "echo boom; exit 3"}},
	}})
	testutil.Eventually(t, 30*time.Second, "two restarts", func() bool {
		s := services(t, d, "loop")["boom"]
		return s.Restarts >= 2 && s.LastExit != nil && s.LastExit.Code == 3
	})
	log := mustExec(t, d, "loop", "cat", ".sandboxd/logs/boom.log").Stdout
	if strings.Count(log, "boom\n") < 2 || strings.Count(log, "exited: code 3") < 2 {
		t.Fatalf("the log does not show each exit:\n%s", log)
	}
}

// Dev servers bound only to the sandbox's loopback, IPv4 or IPv6, answer through their
// preview URLs; the app can be shown Host: localhost:<port>.
func TestLoopbackBoundServers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "lo", "host_header": "localhost", "services": []any{
		map[string]any{"name": "v4", "cmd": []string{"devserver"}, "env": map[string]string{"HOST": "127.0.0.1", "PORT": "5173"}, "port": 5173},
		map[string]any{"name": "v6", "cmd": []string{"devserver"}, "env": map[string]string{"HOST": "::1", "PORT": "5174"}, "port": 5174},
	}})
	for _, port := range []int{5173, 5174} {
		mustPreview(t, d, "lo", port, "/", "hello from lo")
		resp, _ := preview(t, d, "lo", port, "GET", "/echo", "", nil)
		if got := resp.Header.Get("X-Echo-Host"); got != "localhost:"+strconv.Itoa(port) {
			t.Errorf("port %d: the app saw Host %q, want localhost:%d", port, got, port)
		}
		if got := resp.Header.Get("X-Echo-Forwarded-Host"); got != "s-lo-"+strconv.Itoa(port)+".preview.localhost" {
			t.Errorf("port %d: X-Forwarded-Host %q", port, got)
		}
	}
	c := dialWS(t, d, "lo", 5173)
	wsEcho(t, c, "through the relay")
	// Not reachable on the container IP itself: the relay is what makes it work.
	sb, _ := getSandbox(t, d, "lo")
	if res := mustExec(t, d, "lo", "sh", "-c", "wget -q -O- -T 2 http://"+sb.IP+":5173/ || echo refused"); !strings.Contains(res.Stdout, "refused") {
		t.Fatalf("the server was reachable on the container IP: %+v", res)
	}
}
