package envd

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process"
)

func bashStart(script string) *process.StartRequest {
	return &process.StartRequest{Process: &process.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-l", "-c", script}}}
}

// TestEnvd runs the conformance cases that share one sandbox, in order.
func TestEnvd(t *testing.T) {
	h := newHarness(t)
	t.Run("envelopes JSON", func(t *testing.T) { testEnvelopesJSON(t, h) })
	t.Run("envelopes proto", func(t *testing.T) { testEnvelopesProto(t, h) })
	t.Run("end-of-stream error", func(t *testing.T) { testEndOfStreamError(t, h) })
	t.Run("unary errors", func(t *testing.T) { testUnaryErrors(t, h) })
	t.Run("auth", func(t *testing.T) { testAuth(t, h) })
	t.Run("streaming as produced", func(t *testing.T) { testStreamingAsProduced(t, h) })
	t.Run("background kill", func(t *testing.T) { testBackgroundKill(t, h) })
	t.Run("timeout header kills", func(t *testing.T) { testTimeoutHeader(t, h) })
	t.Run("pty", func(t *testing.T) { testPTY(t, h) })
	t.Run("filesystem", func(t *testing.T) { testFilesystem(t, h) })
	t.Run("files", func(t *testing.T) { testFiles(t, h) })
	t.Run("watch", func(t *testing.T) { testWatch(t, h) })
	t.Run("start after death", func(t *testing.T) { testStartAfterDeath(t, h) })
	t.Run("health and wake", func(t *testing.T) { testHealthAndWake(t, h) })
}

// testAuth: no token, another sandbox's token, a bad id and root are refused, before
// anything runs.
func testAuth(t *testing.T, h *harness) {
	try := func(hdr http.Header, path string) (int, string) {
		req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(`{}`))
		req.Header = hdr
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name string
		hdr  http.Header
		code int
		body string
	}{
		{"no token", http.Header{HeaderSandboxID: {h.id}}, 401, `"code":"unauthenticated"`},
		{"other sandbox's token", http.Header{HeaderSandboxID: {h.id}, HeaderAccessToken: {AccessToken(testKey, "other")}}, 401, `"code":"unauthenticated"`},
		{"no sandbox", http.Header{HeaderAccessToken: {h.token}}, 400, `"code":"invalid_argument"`},
		{"another port", http.Header{HeaderSandboxID: {h.id}, HeaderAccessToken: {h.token}, HeaderSandboxPort: {"3000"}}, 400, "other ports"},
		{"root", http.Header{HeaderSandboxID: {h.id}, HeaderAccessToken: {h.token}, "Authorization": {"Basic cm9vdDo="}}, 401, `user \"root\" is not available`},
	}
	for _, c := range cases {
		if code, body := try(c.hdr, "/process.Process/List"); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%s: %d %s, want %d with %s", c.name, code, body, c.code, c.body)
		}
	}
	// /health and /files answer envd's own error shape.
	if code, body := try(http.Header{HeaderSandboxID: {h.id}}, "/files?path=x"); code != 401 || !strings.Contains(body, `"code":401`) {
		t.Errorf("files without token: %d %s", code, body)
	}
}

// testStreamingAsProduced: output reaches the client while the process still runs (it is
// blocked reading stdin until the test sends a line), and stdin works.
func testStreamingAsProduced(t *testing.T, h *harness) {
	ctx := within(t, time.Minute)
	req := bashStart("echo first; read line; echo second $line; exit 3")
	yes := true
	req.Stdin = &yes
	pc := h.process(true)
	stream, err := pc.Start(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	next := func() *process.ProcessEvent {
		t.Helper()
		for stream.Receive() {
			if ev := stream.Msg().GetEvent(); ev.GetKeepalive() == nil {
				return ev
			}
		}
		t.Fatalf("stream ended: %v", stream.Err())
		return nil
	}
	pid := next().GetStart().GetPid()
	if got := next().GetData().GetStdout(); string(got) != "first\n" {
		t.Fatalf("first output %q", got)
	}
	// The process waits on stdin: "first" came before it could end.
	if _, err := pc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
		Process: &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}},
		Input:   &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: []byte("hello\n")}}})); err != nil {
		t.Fatal(err)
	}
	if got := next().GetData().GetStdout(); string(got) != "second hello\n" {
		t.Fatalf("second output %q", got)
	}
	end := next().GetEnd()
	if end.GetExitCode() != 3 || !end.GetExited() || end.GetStatus() != "exit status 3" {
		t.Fatalf("end %v", end)
	}
	if stream.Receive() || stream.Err() != nil {
		t.Fatalf("after the end: %v, %v", stream.Msg(), stream.Err())
	}
}

// testBackgroundKill: a process whose client left runs on, is listed, can be reached with
// Connect and killed with SIGKILL; its end is then told to a late Connect.
func testBackgroundKill(t *testing.T, h *harness) {
	ctx := within(t, time.Minute)
	pc := h.process(false)
	tag := "bg"
	req := bashStart("sleep 1000")
	req.Tag = &tag
	stream, err := pc.Start(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatal(stream.Err())
	}
	pid := stream.Msg().GetEvent().GetStart().GetPid()
	stream.Close() // the client leaves, as E2B's background commands do

	list, err := pc.List(ctx, connect.NewRequest(&process.ListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.Msg.GetProcesses()); n != 1 || list.Msg.GetProcesses()[0].GetPid() != pid ||
		list.Msg.GetProcesses()[0].GetTag() != "bg" || list.Msg.GetProcesses()[0].GetConfig().GetArgs()[2] != "sleep 1000" {
		t.Fatalf("list: %v", list.Msg)
	}
	conn, err := pc.Connect(ctx, connect.NewRequest(&process.ConnectRequest{
		Process: &process.ProcessSelector{Selector: &process.ProcessSelector_Tag{Tag: "bg"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !conn.Receive() || conn.Msg().GetEvent().GetStart().GetPid() != pid {
		t.Fatalf("connect: %v %v", conn.Msg(), conn.Err())
	}
	if _, err := pc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{
		Process: &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}, Signal: process.Signal_SIGNAL_SIGKILL})); err != nil {
		t.Fatal(err)
	}
	var end *process.ProcessEvent_EndEvent
	for conn.Receive() {
		if e := conn.Msg().GetEvent().GetEnd(); e != nil {
			end = e
		}
	}
	if end == nil || end.GetExited() || end.GetStatus() != "signal: killed" {
		t.Fatalf("end after kill: %v (%v)", end, conn.Err())
	}
	list, _ = pc.List(ctx, connect.NewRequest(&process.ListRequest{}))
	if len(list.Msg.GetProcesses()) != 0 {
		t.Fatalf("still listed after kill: %v", list.Msg)
	}
	// The container has no sleep left.
	res, err := h.mgr.Exec(ctx, h.id, lifecycleExec("ps -o args | grep -c '^sleep 1000' || true"))
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Fatalf("sleep still in the sandbox: %q %v", res.Stdout, err)
	}
	late, err := pc.Connect(ctx, connect.NewRequest(&process.ConnectRequest{
		Process: &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	var events []string
	for late.Receive() {
		ev := late.Msg().GetEvent()
		switch {
		case ev.GetStart() != nil:
			events = append(events, "start")
		case ev.GetEnd() != nil:
			events = append(events, "end")
		}
	}
	if strings.Join(events, ",") != "start,end" {
		t.Fatalf("late connect: %v (%v)", events, late.Err())
	}
	if _, err := pc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{
		Process: &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}, Signal: process.Signal_SIGNAL_SIGKILL})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("kill after the end: %v", err)
	}
}

// testTimeoutHeader: the header forms of a fetch-based client (JS SDK: lower-case names,
// connect-timeout-ms), and E2B's rule that a process dies with its stream's timeout.
func testTimeoutHeader(t *testing.T, h *harness) {
	msg := []byte(`{"process":{"cmd":"/bin/bash","args":["-l","-c","echo up; sleep 30"]}}`)
	extra := http.Header{}
	for k, v := range h.headers() {
		extra[strings.ToLower(k)] = v // sent as written: Go's transport keeps non-canonical keys
	}
	extra["connect-timeout-ms"] = []string{"1500"}
	extra["keepalive-ping-interval"] = []string{"1"}
	start := time.Now()
	resp, frames := h.rawStream(t, "/process.Process/Start", "application/connect+json", msg, extra)
	if resp.StatusCode != 200 || len(frames) < 2 {
		t.Fatalf("%d %q", resp.StatusCode, frames)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the stream lasted %s: the timeout did not end the process", took)
	}
	last := frames[len(frames)-1]
	if last.flags != 2 || !strings.Contains(string(last.data), `"deadline_exceeded"`) {
		t.Fatalf("end of stream %q", last.data)
	}
	sawUp := false
	for _, f := range frames {
		// protojson varies its spacing on purpose: compare without it.
		sawUp = sawUp || strings.Contains(strings.ReplaceAll(string(f.data), " ", ""), `"stdout":"dXAK"`)
	}
	if !sawUp {
		t.Fatalf("no output before the timeout: %q", frames)
	}
	// The process is killed with the stream; its kill may finish just after the stream.
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := h.process(true).List(within(t, time.Minute), connect.NewRequest(&process.ListRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Msg.GetProcesses()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes run on after their timeout: %v", list.Msg.GetProcesses())
		}
		time.Sleep(10 * time.Millisecond) // a poll's pace, not an ordering
	}
}

// testPTY: a PTY process echoes what it is sent, takes a resize, and ends.
func testPTY(t *testing.T, h *harness) {
	ctx := within(t, time.Minute)
	pc := h.process(true)
	req := &process.StartRequest{Process: &process.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-i", "-l"}, Cwd: ptr("/tmp")},
		Pty: &process.PTY{Size: &process.PTY_Size{Cols: 80, Rows: 24}}}
	stream, err := pc.Start(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatal(stream.Err())
	}
	pid := stream.Msg().GetEvent().GetStart().GetPid()
	sel := &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}
	if _, err := pc.Update(ctx, connect.NewRequest(&process.UpdateRequest{Process: sel,
		Pty: &process.PTY{Size: &process.PTY_Size{Cols: 100, Rows: 30}}})); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{Process: sel,
		Input: &process.ProcessInput{Input: &process.ProcessInput_Pty{Pty: []byte("echo size $(stty size) in $(pwd); exit 7\n")}}})); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var end *process.ProcessEvent_EndEvent
	for stream.Receive() {
		ev := stream.Msg().GetEvent()
		out.Write(ev.GetData().GetPty())
		if ev.GetEnd() != nil {
			end = ev.GetEnd()
		}
	}
	if !strings.Contains(out.String(), "size 30 100 in /tmp") {
		t.Fatalf("pty output %q", out.String())
	}
	if end == nil || end.GetExitCode() != 7 {
		t.Fatalf("pty end %v (%v)", end, stream.Err())
	}
}
