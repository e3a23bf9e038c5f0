package lifecycle

import (
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/store"
)

// Every value that reaches a process is checked before anything is done, and the error
// names the field: NUL nowhere, line breaks only where a program takes text.
func TestValuesThatReachAProcess(t *testing.T) {
	t.Parallel()
	m := New(nil, nil, DefaultConfig(t.TempDir()), nil)
	svc := func(mod func(s *store.Service)) []store.Service {
		s := store.Service{Name: "web", Cmd: []string{"devserver"}, Port: 3000}
		mod(&s)
		return []store.Service{s}
	}
	bad := []struct {
		name  string
		req   CreateRequest
		field string // the error names it
	}{
		{"env value with NUL", CreateRequest{Env: map[string]string{"A": "x\x00y"}}, "env.A"},
		{"env name with a newline", CreateRequest{Env: map[string]string{"A\nB": "x"}}, `env name "A\nB"`},
		{"env name with =", CreateRequest{Env: map[string]string{"A=B": "x"}}, `env name "A=B"`},
		{"env value too long", CreateRequest{Env: map[string]string{"BIG": strings.Repeat("x", maxEnvValue+1)}}, "env.BIG"},
		{"service env value with NUL", CreateRequest{Services: svc(func(s *store.Service) { s.Env = map[string]string{"PORT": "3000\x00"} })}, "services[web].env.PORT"},
		{"service env name with a newline", CreateRequest{Services: svc(func(s *store.Service) { s.Env = map[string]string{"P\n": "1"} })}, "services[web].env name"},
		{"service argv with NUL", CreateRequest{Services: svc(func(s *store.Service) { s.Cmd = []string{"sh", "-c", "a\x00b"} })}, "services[web].cmd[2]"},
		{"service empty argv", CreateRequest{Services: svc(func(s *store.Service) { s.Cmd = nil })}, "services[web].cmd"},
		{"service cwd with a newline", CreateRequest{Services: svc(func(s *store.Service) { s.Cwd = "app\nx" })}, "services[web].cwd"},
		{"service cwd outside the home", CreateRequest{Services: svc(func(s *store.Service) { s.Cwd = "../etc" })}, "services[web].cwd"},
		{"service name with a newline", CreateRequest{Services: svc(func(s *store.Service) { s.Name = "web\n" })}, "services[0].name"},
		{"service port negative", CreateRequest{Services: svc(func(s *store.Service) { s.Port = -1 })}, "services[web].port"},
		{"label with a newline", CreateRequest{Labels: map[string]string{"team": "a\nb"}}, `label "team"`},
		{"negative idle timeout", CreateRequest{IdleTimeout: -1}, "idle_timeout"},
		{"negative cpus", CreateRequest{NanoCPUs: -1}, "cpus"},
		{"memory below the minimum", CreateRequest{MemoryBytes: 1}, "memory"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			err := m.normalize(&req)
			if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), c.field) {
				t.Fatalf("got %v, want invalid_request naming %s", err, c.field)
			}
		})
	}
	// Line breaks where a program takes text are fine.
	ok := CreateRequest{Env: map[string]string{"PEM": "-----BEGIN-----\nabc\n-----END-----\n"},
		Services: svc(func(s *store.Service) { s.Cmd = []string{"sh", "-c", "echo one\necho two"} })}
	if err := m.normalize(&ok); err != nil {
		t.Fatalf("newlines in env values and argv items: %v", err)
	}

	execs := []struct {
		name  string
		req   ExecRequest
		field string
	}{
		{"argv with NUL", ExecRequest{Cmd: []string{"echo", "a\x00"}}, "cmd[1]"},
		{"empty argv", ExecRequest{Cmd: []string{""}}, "cmd"},
		{"env with NUL", ExecRequest{Cmd: []string{"true"}, Env: map[string]string{"X": "\x00"}}, "env.X"},
		{"cwd with NUL", ExecRequest{Cmd: []string{"true"}, Cwd: "a\x00"}, "cwd"},
		{"cwd with a newline", ExecRequest{Cmd: []string{"true"}, Cwd: "a\nb"}, "cwd"},
		{"negative timeout", ExecRequest{Cmd: []string{"true"}, Timeout: -1}, "timeout"},
	}
	for _, c := range execs {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			err := validExec(&req)
			if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), c.field) {
				t.Fatalf("got %v, want invalid_request naming %s", err, c.field)
			}
		})
	}
}
