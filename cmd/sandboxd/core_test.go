package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// The prior system's README walkthrough, run unchanged with curl against sandboxd.
func TestPriorSystemWalkthrough(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed: apt-get install curl")
	}
	e := newEnv(t)
	d := e.start()
	script := `set -euo pipefail
ID=$(curl -s -XPOST $API/sandbox -H 'content-type: application/json' -d '{"ports":[3000]}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
echo "id=$ID"
curl -s -XPOST $API/sandbox/$ID/exec -H 'content-type: application/json' -d '{"cmd":["sh","-c","echo hello-from-sandbox"]}'
echo
curl -s -XPOST $API/sandbox/$ID/keepalive
echo
curl -s -o /dev/null -w 'delete=%{http_code}\n' -XDELETE $API/sandbox/$ID
curl -s -XPOST $API/sandbox/$ID/purge
echo
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "API="+d.API)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s\n%s", err, out, d.logs)
	}
	s := string(out)
	id := strings.TrimPrefix(strings.SplitN(s, "\n", 2)[0], "id=")
	if !lifecycle.ValidID(id) {
		t.Fatalf("sed did not extract an id: %q", s)
	}
	for _, want := range []string{`"stdout":"hello-from-sandbox\n"`, `"exit_code":0`, `"last_active_at"`, "delete=200", `"purged":true`} {
		if !strings.Contains(s, want) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, s)
		}
	}
	if _, err := os.Stat(filepath.Join(e.data(), "workspaces", id)); !os.IsNotExist(err) {
		t.Errorf("purge left the workspace: %v", err)
	}
}

// Every bad request answers 4xx with a JSON error and changes nothing on disk or in Docker.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	keep := mustCreate(t, d, map[string]any{"id": "keep", "ports": []int{3000}})
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/sandboxes", `{"ports":[3000]`, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/sandboxes", `{"portz":[3000]}`, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/sandboxes", `{"ports":[3000]} {}`, 400, "invalid_request"},
		{"wrong type", "POST", "/v1/sandboxes", `{"ports":"3000"}`, 400, "invalid_request"},
		{"upper-case id", "POST", "/v1/sandboxes", `{"id":"Demo"}`, 400, "invalid_request"},
		{"too long id", "POST", "/v1/sandboxes", `{"id":"` + strings.Repeat("a", 41) + `"}`, 400, "invalid_request"},
		{"slash id", "POST", "/sandbox", `{"id":"../../etc"}`, 400, "invalid_request"},
		{"port 0", "POST", "/v1/sandboxes", `{"ports":[0]}`, 400, "invalid_request"},
		{"port 65536", "POST", "/v1/sandboxes", `{"ports":[65536]}`, 400, "invalid_request"},
		{"negative port", "POST", "/v1/sandboxes", `{"ports":[-1]}`, 400, "invalid_request"},
		{"duplicate id", "POST", "/v1/sandboxes", `{"id":"keep"}`, 409, "conflict"},
		{"missing image", "POST", "/v1/sandboxes", `{"image":"sandboxd/none:1"}`, 400, "invalid_request"},
		{"oversized body", "POST", "/v1/sandboxes", `{"id":"big","env":{"A":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, "too_large"},
		{"purge ..%2F", "POST", "/sandbox/..%2F/purge", "", 400, "invalid_request"},
		{"purge ..%2F..", "POST", "/sandbox/..%2F..%2F/purge", "", 400, "invalid_request"},
		{"delete %2e%2e", "DELETE", "/v1/sandboxes/%2e%2e", "", 400, "invalid_request"},
		{"get upper case", "GET", "/v1/sandboxes/KEEP", "", 400, "invalid_request"},
		{"exec unknown", "POST", "/v1/sandboxes/nosuch/exec", `{"cmd":["true"]}`, 404, "not_found"},
		{"exec empty cmd", "POST", "/v1/sandboxes/keep/exec", `{"cmd":[]}`, 400, "invalid_request"},
		{"exec no body", "POST", "/v1/sandboxes/keep/exec", ``, 400, "invalid_request"},
		{"purge unknown", "POST", "/sandbox/nosuch/purge", "", 404, "not_found"},
		{"stop unknown", "POST", "/v1/sandboxes/nosuch/stop", "", 404, "not_found"},
		{"keepalive bad body", "POST", "/sandbox/keep/keepalive", `{"until":"tomorrow"}`, 400, "invalid_request"},
		{"list bad status", "GET", "/v1/sandboxes?status=happy", "", 400, "invalid_request"},
		// issue 11: values that reach a process, a file or a timer.
		{"env value with NUL", "POST", "/v1/sandboxes", `{"id":"n1","env":{"A":"x\u0000y"}}`, 400, "invalid_request"},
		{"env name with a newline", "POST", "/v1/sandboxes", `{"id":"n2","env":{"A\nB":"x"}}`, 400, "invalid_request"},
		{"service env value with NUL", "POST", "/v1/sandboxes", `{"id":"n3","services":[{"name":"web","cmd":["devserver"],"env":{"PORT":"3000\u0000"},"port":3000}]}`, 400, "invalid_request"},
		{"service argv with NUL", "POST", "/v1/sandboxes", `{"id":"n4","services":[{"name":"web","cmd":["sh","-c","a\u0000"]}]}`, 400, "invalid_request"},
		{"service name with a newline", "POST", "/v1/sandboxes", `{"id":"n5","services":[{"name":"web\n","cmd":["devserver"]}]}`, 400, "invalid_request"},
		{"service cwd with a newline", "POST", "/v1/sandboxes", `{"id":"n6","services":[{"name":"web","cmd":["devserver"],"cwd":"a\nb"}]}`, 400, "invalid_request"},
		{"memory 1e300", "POST", "/v1/sandboxes", `{"id":"n7","memory":1e300}`, 400, "invalid_request"},
		{"memory overflowing", "POST", "/v1/sandboxes", `{"id":"n8","memory":"99999999999999P"}`, 400, "invalid_request"},
		{"memory negative", "POST", "/v1/sandboxes", `{"id":"n9","memory":-1}`, 400, "invalid_request"},
		{"cpus 1e300", "POST", "/v1/sandboxes", `{"id":"n10","cpus":1e300}`, 400, "invalid_request"},
		{"cpus negative", "POST", "/v1/sandboxes", `{"id":"n11","cpus":-2}`, 400, "invalid_request"},
		{"idle timeout 1e300", "POST", "/v1/sandboxes", `{"id":"n12","idle_timeout":1e300}`, 400, "invalid_request"},
		{"idle timeout negative", "POST", "/v1/sandboxes", `{"id":"n13","idle_timeout":-5}`, 400, "invalid_request"},
		{"port overflowing", "POST", "/v1/sandboxes", `{"id":"n14","ports":[18446744073709551617]}`, 400, "invalid_request"},
		{"services put with NUL", "PUT", "/v1/sandboxes/keep/services", `{"services":[{"name":"web","cmd":["devserver"],"env":{"A":"\u0000"}}]}`, 400, "invalid_request"},
		{"exec argv with NUL", "POST", "/v1/sandboxes/keep/exec", `{"cmd":["echo","a\u0000"]}`, 400, "invalid_request"},
		{"exec env name with a newline", "POST", "/v1/sandboxes/keep/exec", `{"cmd":["true"],"env":{"A\n":"1"}}`, 400, "invalid_request"},
		{"exec cwd with a newline", "POST", "/v1/sandboxes/keep/exec", `{"cmd":["true"],"cwd":"a\nb"}`, 400, "invalid_request"},
		{"exec timeout 1e300", "POST", "/v1/sandboxes/keep/exec", `{"cmd":["true"],"timeout":1e300}`, 400, "invalid_request"},
		{"exec timeout negative", "POST", "/v1/sandboxes/keep/exec", `{"cmd":["true"],"timeout":-1}`, 400, "invalid_request"},
		{"detached exec with NUL", "POST", "/v1/sandboxes/keep/exec", `{"cmd":["true","\u0000"],"detach":true}`, 400, "invalid_request"},
		{"keepalive seconds 1e300", "POST", "/sandbox/keep/keepalive", `{"seconds":1e300}`, 400, "invalid_request"},
		{"keepalive seconds negative", "POST", "/sandbox/keep/keepalive", `{"seconds":-60}`, 400, "invalid_request"},
		{"keepalive duration negative", "POST", "/sandbox/keep/keepalive", `{"duration":"-1h"}`, 400, "invalid_request"},
		{"keepalive until passed", "POST", "/sandbox/keep/keepalive", `{"until":"2001-01-01T00:00:00Z"}`, 400, "invalid_request"},
		{"task prompt with NUL", "POST", "/v1/sandboxes/keep/tasks", `{"prompt":"do \u0000 it"}`, 400, "invalid_request"},
		{"task env with NUL", "POST", "/v1/sandboxes/keep/tasks", `{"prompt":"x","env":{"K":"\u0000"}}`, 400, "invalid_request"},
	}
	// The field each of issue 11's cases must name.
	names := map[string]string{
		"env value with NUL": "env.A", "env name with a newline": "env name", "service env value with NUL": "services[web].env.PORT",
		"service argv with NUL": "services[web].cmd[2]", "service name with a newline": "services[0].name",
		"service cwd with a newline": "services[web].cwd", "memory 1e300": "memory", "memory overflowing": "memory",
		"memory negative": "memory", "cpus 1e300": "cpus", "cpus negative": "cpus", "idle timeout 1e300": "idle_timeout",
		"idle timeout negative": "idle_timeout", "port overflowing": "ports", "services put with NUL": "services[web].env.A",
		"exec argv with NUL": "cmd[1]", "exec env name with a newline": "env name", "exec cwd with a newline": "cwd",
		"exec timeout 1e300": "timeout", "exec timeout negative": "timeout", "detached exec with NUL": "cmd[1]",
		"keepalive seconds 1e300": "seconds", "keepalive seconds negative": "seconds", "keepalive duration negative": "duration",
		"keepalive until passed": "until", "task prompt with NUL": "prompt", "task env with NUL": "env.K",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			code := call(t, c.method, d.API+c.path, c.body, &body)
			if code != c.status || body.Error.Code != c.code || body.Error.Message == "" {
				t.Fatalf("%s %s = %d %+v, want %d %s with a message", c.method, c.path, code, body, c.status, c.code)
			}
			if field := names[c.name]; !strings.HasPrefix(body.Error.Message, field) {
				t.Fatalf("message %q does not begin with the field %s", body.Error.Message, field)
			}
		})
	}
	// Nothing changed: one workspace, one container, one row, and the data dir intact.
	entries, _ := os.ReadDir(filepath.Join(e.data(), "workspaces"))
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Errorf("workspaces: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(e.data(), "sandboxd.db")); err != nil {
		t.Errorf("database: %v", err)
	}
	list, err := e.docker.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "sandboxd.instance="+lifecycle.InstanceOf(e.data())))})
	if err != nil || len(list) != 1 {
		t.Errorf("containers: %d %v", len(list), err)
	}
	var all []sandboxJSON
	if code := call(t, "GET", d.API+"/sandboxes", nil, &all); code != 200 || len(all) != 1 || all[0].ID != keep.ID {
		t.Errorf("rows: %d %+v", code, all)
	}
	if got, _ := getSandbox(t, d, "keep"); got.Status != "running" {
		t.Errorf("keep: %+v", got)
	}
	var full struct {
		Services       []any   `json:"services"`
		KeepaliveUntil *string `json:"keepalive_until"`
	}
	if call(t, "GET", d.API+"/v1/sandboxes/keep", nil, &full); len(full.Services) != 0 || full.KeepaliveUntil != nil {
		t.Errorf("keep changed: services %v, keepalive %v", full.Services, full.KeepaliveUntil)
	}
	configs, _ := os.ReadDir(filepath.Join(e.data(), "sandboxes"))
	if len(configs) != 1 || configs[0].Name() != "keep.json" {
		t.Errorf("saved configs: %v", configs)
	}
	var tasks struct {
		Tasks []any `json:"tasks"`
	}
	if call(t, "GET", d.API+"/v1/sandboxes/keep/tasks", nil, &tasks); len(tasks.Tasks) != 0 {
		t.Errorf("tasks: %v", tasks.Tasks)
	}
}

// kill -9 in the middle of a create and of a stop, then a restart: no orphan, no row stuck,
// the workspace intact and the sandbox usable.
func TestCrashMidOperation(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"create.recorded", "create.container", "stop.stopping"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			p := e.startHooked(point, nil)
			id := "crash"
			hookReached := p.logs.expect(`"point":"` + point + `"`)
			if strings.HasPrefix(point, "stop") {
				mustCreate(t, p.daemon, map[string]any{"id": id, "ports": []int{3000}})
				mustExec(t, p.daemon, id, "sh", "-c", "echo precious > workspace/app/data.txt")
				go http.Post(p.API+"/v1/sandboxes/"+id+"/stop", "application/json", nil)
			} else {
				go http.Post(p.API+"/v1/sandboxes", "application/json", strings.NewReader(`{"id":"crash","ports":[3000]}`))
			}
			hookReached(t, time.Minute)
			p.kill9(t)

			d := e.start()
			sb, code := getSandbox(t, d, id)
			if code != 200 {
				t.Fatalf("after restart: %d", code)
			}
			if sb.Status != "running" && sb.Status != "stopped" {
				t.Fatalf("row stuck in %q after restart", sb.Status)
			}
			res := mustExec(t, d, id, "sh", "-c", "echo usable; cat workspace/app/data.txt 2>/dev/null || true")
			if !strings.HasPrefix(res.Stdout, "usable\n") {
				t.Fatalf("sandbox not usable: %+v", res)
			}
			if strings.HasPrefix(point, "stop") && !strings.Contains(res.Stdout, "precious") {
				t.Fatalf("workspace lost: %+v", res)
			}
			list, err := e.docker.ContainerList(context.Background(), container.ListOptions{All: true,
				Filters: filters.NewArgs(filters.Arg("label", "sandboxd.instance="+lifecycle.InstanceOf(e.data())))})
			if err != nil || len(list) != 1 || list[0].Labels["sandboxd.id"] != id {
				t.Fatalf("containers after restart: want exactly the sandbox's one, got %d (%v)", len(list), err)
			}
		})
	}
}

// A sandboxd that stops leaves sandboxes running; the next one adopts them as they are.
func TestRestartAdoptsRunningSandboxes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	sb := mustCreate(t, d, map[string]any{"id": "adopt", "ports": []int{3000}})
	before, err := e.docker.ContainerInspect(context.Background(), e.containerName("adopt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}
	d2 := e.start()
	got, _ := getSandbox(t, d2, "adopt")
	if got.Status != "running" || got.IP != sb.IP {
		t.Fatalf("after restart: %+v, want running at %s", got, sb.IP)
	}
	after, err := e.docker.ContainerInspect(context.Background(), before.ID)
	if err != nil || after.State.StartedAt != before.State.StartedAt {
		t.Fatalf("the container was restarted (or lost): %v", err)
	}
	mustExec(t, d2, "adopt", "true")

	// Explicit stop and start through the API.
	if code := call(t, "POST", d2.API+"/v1/sandboxes/adopt/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	var started struct {
		sandboxJSON
		WakeMS *int64 `json:"wake_duration_ms"`
	}
	if code := call(t, "POST", d2.API+"/v1/sandboxes/adopt/start", nil, &started); code != 200 || started.Status != "running" || started.WakeMS == nil || started.ID != "adopt" {
		t.Fatalf("start: %d %+v", code, started)
	}
}

// Reconcile converges Docker to the rows: a container removed behind sandboxd's back is
// recreated on the next start; one started behind its back is adopted.
func TestReconcileWithEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "gone", "ports": []int{3000}})
	mustExec(t, d, "gone", "sh", "-c", "echo still-here > workspace/app/f")
	name := e.containerName("gone")
	if err := e.docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the row to follow the destroyed container", func() bool {
		sb, _ := getSandbox(t, d, "gone")
		return sb.Status == "stopped"
	})
	res := mustExec(t, d, "gone", "cat", "workspace/app/f") // exec wakes: the container is recreated
	if res.Stdout != "still-here\n" {
		t.Fatalf("recreated sandbox: %+v", res)
	}

	if code := call(t, "POST", d.API+"/v1/sandboxes/gone/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	if err := e.docker.ContainerStart(context.Background(), name, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the row to adopt the container started behind sandboxd's back", func() bool {
		sb, _ := getSandbox(t, d, "gone")
		return sb.Status == "running"
	})
}
