package task

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// The agent ends on its own: how it ended decides the result, its lines are the events
// between "started" and "done", and the sandbox is busy exactly while the task runs.
func TestTaskEnds(t *testing.T) {
	cases := []struct {
		name   string
		end    func(h *harness, taskID string) // how the agent ends
		status string
		reason string
		code   int
	}{
		{"exit 0", func(h *harness, id string) { h.exit(id, 0) }, store.TaskSucceeded, "", 0},
		{"exit 2", func(h *harness, id string) { h.exit(id, 2) }, store.TaskFailed, "agent_error", 2},
		{"the wrapper died without an exit file", func(h *harness, id string) { h.died.Store(true) },
			store.TaskFailed, "agent_error", 137},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				defer h.close()
				const key = "sk-ant-secret-0123456789"
				var gotArgv []string
				var gotEnv map[string]string
				var gotLog, gotCwd string
				h.fake.execExited = func(_ context.Context, execID string) (int, bool) {
					return 137, execID == "exec-1" && h.died.Load()
				}
				h.fake.startLoggedExec = func(_ context.Context, sb store.Sandbox, logFile string, argv []string, env map[string]string, cwd string) (string, error) {
					gotLog, gotArgv, gotEnv, gotCwd = logFile, argv, env, cwd
					return "exec-1", nil
				}
				tk := h.start(Request{Prompt: "make a todo app", Env: map[string]string{"ANTHROPIC_API_KEY": key}})
				if want := lifecycle.Home + "/" + taskLog(tk.ID); gotLog != want || gotCwd != agent.AppDir {
					t.Fatalf("agent started with log %q in %q, want %q in %q", gotLog, gotCwd, want, agent.AppDir)
				}
				if !slices.Contains(gotArgv, "make a todo app") || gotEnv["ANTHROPIC_API_KEY"] != key {
					t.Fatalf("agent argv %q env %v", gotArgv, gotEnv)
				}
				synctest.Wait()
				if h.inUse.Load() != 1 || h.r.Running() != 1 {
					t.Fatalf("while the task runs: busy %d, running %d; want 1 and 1", h.inUse.Load(), h.r.Running())
				}
				h.write(tk.ID, text("reading the app")+text("my key is "+key))
				if err := os.WriteFile(filepath.Join(h.ws, "workspace", "app", "index.html"), []byte("<ul></ul>"), 0o644); err != nil {
					t.Fatal(err)
				}
				c.end(h, tk.ID)
				done := h.waitEnd(tk.ID)

				res := h.result(done)
				if done.Status != c.status || res.FailureReason != c.reason || res.ExitCode == nil || *res.ExitCode != c.code {
					t.Fatalf("result: status %s reason %q exit %v; want %s %q %d", done.Status, res.FailureReason, res.ExitCode, c.status, c.reason, c.code)
				}
				if want := []FileChange{{Path: "index.html", Change: "added"}}; !reflect.DeepEqual(res.FilesChanged, want) {
					t.Fatalf("files changed %v, want %v", res.FilesChanged, want)
				}
				evs := h.events(tk.ID)
				checkSeqs(t, evs)
				if evs[0].Type != agent.TypeStatus || !strings.Contains(string(evs[0].Data), `"started"`) {
					t.Fatalf("first event %s %s, want the started status", evs[0].Type, evs[0].Data)
				}
				if got := messages(t, evs); !slices.Equal(got, []string{"reading the app", "my key is [redacted]"}) {
					t.Fatalf("messages %q", got)
				}
				for _, e := range evs {
					if strings.Contains(string(e.Data), key) {
						t.Fatalf("event %d shows the key: %s", e.Seq, e.Data)
					}
				}
				if h.inUse.Load() != 0 || h.r.Running() != 0 || !slices.Equal(h.ended, []string{c.status}) {
					t.Fatalf("after the end: busy %d, running %d, ended %v", h.inUse.Load(), h.r.Running(), h.ended)
				}
				if _, err := os.Stat(h.checkpointPath(tk.ID)); err != nil {
					t.Fatalf("the checkpoint did not outlive its task, which a revert needs: %v", err)
				}
			})
		})
	}
}

// A task that runs past its timeout is killed and ends failed, reason timeout.
func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		h.fake.signalExec = func(_, _ string, sig syscall.Signal) {
			if sig == syscall.SIGTERM {
				h.exit(h.lastTask(), 143)
			}
		}
		start := time.Now()
		tk := h.start(Request{Prompt: "sleep", Timeout: 2 * time.Second})
		done := h.waitEnd(tk.ID)
		took := time.Since(start)
		res := h.result(done)
		if done.Status != store.TaskFailed || res.FailureReason != "timeout" {
			t.Fatalf("status %s reason %q, want failed, timeout", done.Status, res.FailureReason)
		}
		if took < 2*time.Second || took > 2*time.Second+2*taskTick {
			t.Fatalf("the task ended after %s, want just past its 2s timeout", took)
		}
		if res.DurationMS != took.Milliseconds() {
			t.Fatalf("duration_ms %d, want %d", res.DurationMS, took.Milliseconds())
		}
	})
}

// The sandbox stops under a running agent: what the agent wrote is kept, and the task
// ends failed, reason sandbox_stopped.
func TestSandboxStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		tk := h.start(Request{Prompt: "build"})
		h.write(tk.ID, text("one")+`{"type":"text","part":{"type":"text","text":"last words"}}`) // no newline yet
		h.setStopped()
		done := h.waitEnd(tk.ID)
		res := h.result(done)
		if done.Status != store.TaskFailed || res.FailureReason != "sandbox_stopped" {
			t.Fatalf("status %s reason %q, want failed, sandbox_stopped", done.Status, res.FailureReason)
		}
		evs := h.events(tk.ID)
		checkSeqs(t, evs)
		if got := messages(t, evs); !slices.Equal(got, []string{"one", "last words"}) {
			t.Fatalf("messages %q", got)
		}
	})
}

// What StartTask refuses changes nothing; an agent that cannot start ends its task failed.
func TestStartRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		for _, c := range []struct {
			id   string
			req  Request
			code lifecycle.Code
			says string
		}{
			{"sb", Request{Prompt: " "}, lifecycle.CodeInvalid, "prompt"},
			{"sb", Request{Prompt: "x", Agent: "cursor"}, lifecycle.CodeInvalid, "opencode"},
			{"sb", Request{Prompt: "x", Model: "a b"}, lifecycle.CodeInvalid, "model"},
			{"sb", Request{Prompt: "x", Timeout: 25 * time.Hour}, lifecycle.CodeInvalid, "timeout"},
			{"nope", Request{Prompt: "x"}, lifecycle.CodeNotFound, "nope"},
		} {
			_, err := h.r.StartTask(h.ctx, c.id, c.req)
			if lifecycle.ErrorCode(err) != c.code || !strings.Contains(lifecycle.ErrorMessage(err), c.says) {
				t.Errorf("%+v: %v, want %s naming %q", c.req, err, c.code, c.says)
			}
		}
		h.fake.canRunAgent = func(context.Context, store.Sandbox, agent.Adapter) error {
			return &lifecycle.Error{Code: lifecycle.CodeUnsupported, Message: "agent opencode is not installed"}
		}
		if _, err := h.r.StartTask(h.ctx, "sb", Request{Prompt: "x"}); lifecycle.ErrorCode(err) != lifecycle.CodeUnsupported {
			t.Fatalf("missing agent: %v", err)
		}
		if list, _ := h.r.ListTasks(h.ctx, "sb", 10); len(list) != 0 {
			t.Fatalf("refused starts left tasks: %+v", list)
		}
		h.fake.canRunAgent = func(context.Context, store.Sandbox, agent.Adapter) error { return nil }

		h.fake.startLoggedExec = func(context.Context, store.Sandbox, string, []string, map[string]string, string) (string, error) {
			return "", &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "create exec in container c0ffee"}
		}
		tk := h.start(Request{Prompt: "x"})
		done := h.waitEnd(tk.ID)
		res := h.result(done)
		if done.Status != store.TaskFailed || res.FailureReason != "internal" || !strings.Contains(res.Error, "could not start the agent: create exec") {
			t.Fatalf("agent that could not start: %s %+v", done.Status, res)
		}

		h.fake.startLoggedExec = func(context.Context, store.Sandbox, string, []string, map[string]string, string) (string, error) {
			return "exec-1", nil
		}
		running := h.start(Request{Prompt: "x"})
		_, err := h.r.StartTask(h.ctx, "sb", Request{Prompt: "y"})
		if lifecycle.ErrorCode(err) != lifecycle.CodeConflict || !strings.Contains(lifecycle.ErrorMessage(err), running.ID) {
			t.Fatalf("second task: %v, want a conflict naming %s", err, running.ID)
		}
		h.exit(running.ID, 0)
		h.waitEnd(running.ID)
	})
}

// A task left running by a sandboxd that stopped before starting its agent ends failed,
// reason sandboxd_lost, when the next one resumes it.
func TestResumeWithoutAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		now := time.Now()
		lost := store.Task{ID: "01jabcdefghjkmnpqrstvwxyz0", SandboxID: "sb", Agent: "claude", Prompt: "x",
			Status: store.TaskRunning, CreatedAt: now, Deadline: now.Add(time.Hour)}
		if err := h.db.CreateTask(h.ctx, lost); err != nil {
			t.Fatal(err)
		}
		if err := h.r.Resume(h.ctx); err != nil {
			t.Fatal(err)
		}
		done := h.waitEnd(lost.ID)
		var res Result
		json.Unmarshal(done.Result, &res)
		if done.Status != store.TaskFailed || res.FailureReason != "sandboxd_lost" {
			t.Fatalf("%s %+v", done.Status, res)
		}
	})
}
