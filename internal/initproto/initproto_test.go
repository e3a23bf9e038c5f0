package initproto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// What one side writes, the other reads back unchanged.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	t.Run("services", func(t *testing.T) {
		in := []Service{
			{Name: "web", Cmd: []string{"bash", "-lc", "npm run dev"}, Cwd: "workspace/app", Env: map[string]string{"PORT": "4000"}, Port: 4000},
			{Name: "worker", Cmd: []string{"work"}},
		}
		b, err := EncodeServices(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := DecodeServices(b)
		if err != nil || !reflect.DeepEqual(out, in) {
			t.Fatalf("decoded %+v, %v; want %+v", out, err, in)
		}
	})
	t.Run("no services", func(t *testing.T) {
		b, err := EncodeServices(nil)
		if err != nil || string(b) != `{"services":[]}` {
			t.Fatalf("EncodeServices(nil) = %s, %v; want an empty list, never null", b, err)
		}
	})
	t.Run("state", func(t *testing.T) {
		at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
		in := State{UpdatedAt: at, Services: []ServiceState{
			{Name: "crash", State: StateBackoff, Restarts: 2, StartedAt: at.Add(-time.Minute),
				LastExit: &Exit{Code: 137, Signal: "SIGKILL", At: at}},
			{Name: "main", State: StateRunning, PID: 7},
			{Name: "web", State: StateStarting, PID: 9, Port: 4000, Error: "was broken"},
		}}
		b, err := EncodeState(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := DecodeState(strings.NewReader(string(b)))
		if err != nil || !reflect.DeepEqual(out, in) {
			t.Fatalf("decoded %+v, %v; want %+v", out, err, in)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		for _, code := range []int{0, 1, 127, 137, 255} {
			got, err := ParseExitCode(FormatExitCode(code))
			if err != nil || got != code {
				t.Errorf("exit code %d came back as %d, %v", code, got, err)
			}
		}
	})
	t.Run("relay", func(t *testing.T) {
		for _, port := range []int{1, 80, 3000, 65535} {
			line := RelayRequest(port)
			if len(line) > RelayMaxRequest || !strings.HasSuffix(line, "\n") {
				t.Fatalf("request %q: want one line of at most %d bytes", line, RelayMaxRequest)
			}
			got, err := ParseRelayRequest(strings.TrimSuffix(line, "\n"))
			if err != nil || got != port {
				t.Errorf("port %d came back as %d, %v", port, got, err)
			}
		}
		if err := ParseRelayAnswer(RelayOK); err != nil {
			t.Errorf("OK answer: %v", err)
		}
		refusal := RelayRefusal("port 3000: connection refused\nand more")
		var re *RelayError
		if strings.Count(refusal, "\n") != 1 || !errors.As(ParseRelayAnswer(strings.TrimSuffix(refusal, "\n")), &re) ||
			re.Reason != "port 3000: connection refused and more" {
			t.Errorf("refusal %q read back as %v", refusal, re)
		}
	})
}

// Files written by the sandbox-init of an earlier release still read: a sandbox keeps its
// sandbox-init binary while sandboxd is upgraded.
func TestStateFromEarlierSandboxInit(t *testing.T) {
	t.Parallel()
	const written = `{
  "updated_at": "2026-05-01T12:00:00.123456789Z",
  "services": [
    {"name": "crash", "state": "backoff", "restarts": 2, "started_at": "2026-05-01T11:59:00Z",
     "last_exit": {"code": 3, "signal": "", "at": "2026-05-01T11:59:30Z"}, "port": 4000, "some_later_field": 1}
  ]
}`
	st, err := DecodeState(strings.NewReader(written))
	if err != nil {
		t.Fatal(err)
	}
	s := st.Services[0]
	if s.Name != "crash" || s.State != StateBackoff || s.Restarts != 2 || s.Port != 4000 ||
		!s.StartedAt.Equal(time.Date(2026, 5, 1, 11, 59, 0, 0, time.UTC)) || s.LastExit == nil || s.LastExit.Code != 3 {
		t.Fatalf("decoded %+v", s)
	}
}

func TestDecodeStateBounded(t *testing.T) {
	t.Parallel()
	huge := `{"services":[],"pad":"` + strings.Repeat("x", MaxStateSize) + `"}`
	if _, err := DecodeState(strings.NewReader(huge)); err == nil {
		t.Fatal("a state file past MaxStateSize was read")
	}
}

func TestParseRelayRequest(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]int{
		"RELAY 1": 1, "RELAY 80": 80, "RELAY 65535": 65535, "RELAY 0080": 80, "RELAY 80\r": 80,
		"RELAY 0": -1, "RELAY 65536": -1, "RELAY -1": -1, "RELAY +80": -1, "RELAY 80 ": -1,
		"RELAY  80": -1, "RELAY": -1, "RELAY ": -1, "RELAY 0x50": -1, "RELAY 99999999999999999999": -1,
		"relay 80": -1, "80": -1, "": -1, "RELAY ::1:80": -1,
	} {
		got, err := ParseRelayRequest(line)
		if want < 0 {
			if !errors.Is(err, ErrBadRelayRequest) && !errors.Is(err, ErrBadRelayPort) {
				t.Errorf("%q: got port %d, %v; want a bad request or port", line, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", line, got, err, want)
		}
	}
}

func TestParseExitCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"0": 0, "3": 3, " 137\n": 137, "": -1, "x": -1, "1 2": -1} {
		got, err := ParseExitCode([]byte(in))
		if (err != nil) != (want < 0) || (want >= 0 && got != want) {
			t.Errorf("ParseExitCode(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestExecCommand(t *testing.T) {
	t.Parallel()
	if got := ExecCommand("", "ls", "-l"); !reflect.DeepEqual(got, []string{InitPath, "exec", "--", "ls", "-l"}) {
		t.Errorf("ExecCommand without a log = %q", got)
	}
	log := "/home/sandbox/" + TaskLog("t1")
	if got := ExecCommand(log, "claude"); !reflect.DeepEqual(got, []string{InitPath, "exec", "--log", log, "--", "claude"}) {
		t.Errorf("ExecCommand with a log = %q", got)
	}
}
