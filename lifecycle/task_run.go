package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// The agent runs detached through `sandbox-init exec --log`, which appends its output to
// ~/.sandboxd/tasks/<task>.log and writes the exit code to <log>.exit. sandboxd tails that
// log from the host (through os.Root) and turns each line into events. Because the agent
// does not depend on sandboxd's connection, a restart of sandboxd neither kills it nor
// loses its output: the next boot resumes tailing from the offset stored with the events.

const (
	taskTick      = 100 * time.Millisecond
	taskKillGrace = 3 * time.Second // SIGTERM, then SIGKILL to the process group
	taskKillLimit = 5 * time.Second // then the task ends cancelled whatever the agent does
	maxLineBytes  = 1 << 20
)

func taskLog(taskID string) string { return initproto.TaskLog(taskID) }

// run is one task's runner: it owns the tail of the agent's log until the task ends.
type run struct {
	m       *Manager
	t       store.Task
	parser  agent.Parser
	secrets []string

	cancelOnce sync.Once
	cancelCh   chan struct{}
	done       chan struct{}
	preset     *TaskResult // decided before the loop: the agent did not start

	offset  int64 // bytes of the log consumed (complete lines only)
	partial []byte
}

func (m *Manager) newRun(t store.Task, ad agent.Adapter, secrets []string) *run {
	if env, err := m.db.SandboxEnv(context.Background(), t.SandboxID); err == nil {
		for k, v := range env {
			if looksSecret(k) && len(v) >= 6 {
				secrets = append(secrets, v)
			}
		}
	}
	// Longest first, so a secret containing another is scrubbed whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	return &run{m: m, t: t, parser: ad.NewParser(), secrets: secrets, offset: t.LogOffset,
		cancelCh: make(chan struct{}), done: make(chan struct{})}
}

func looksSecret(key string) bool {
	k := strings.ToUpper(key)
	for _, w := range []string{"KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func (r *run) cancel() { r.cancelOnce.Do(func() { close(r.cancelCh) }) }

func (r *run) fail(reason, msg string) {
	r.preset = &TaskResult{Status: store.TaskFailed, FailureReason: reason, Error: msg}
}

// launch starts the runner, owned by the Manager: it is joined on shutdown, and while it
// runs the sandbox counts as busy, so neither reaper stops it.
func (m *Manager) launch(r *run) {
	m.runsMu.Lock()
	m.runs[r.t.ID] = r
	m.runsMu.Unlock()
	release := m.busy(r.t.SandboxID)
	m.tasksWG.Add(1)
	go func() {
		defer m.tasksWG.Done()
		defer close(r.done)
		defer func() {
			m.runsMu.Lock()
			delete(m.runs, r.t.ID)
			m.runsMu.Unlock()
		}()
		defer release()
		r.loop(m.base)
	}()
}

func (r *run) loop(ctx context.Context) {
	if r.preset != nil {
		r.finish(ctx, *r.preset)
		return
	}
	root, err := os.OpenRoot(r.m.workspaceDir(r.t.SandboxID))
	if err != nil {
		r.finish(ctx, TaskResult{Status: store.TaskFailed, FailureReason: "internal", Error: "workspace is gone"})
		return
	}
	defer root.Close()
	if r.offset > 0 {
		r.replay(root) // a resumed run: rebuild the parser's state without emitting again
	} else {
		r.emit(ctx, []agent.Event{{Type: "status", Phase: "started", Text: r.t.Agent}}, r.offset)
	}

	var reason string
	var killedAt time.Time
	hard := false
	lastInspect := time.Now()
	for {
		r.consume(ctx, root, false)
		if code, ok, _ := readExitFile(root, taskLog(r.t.ID)); ok {
			r.consume(ctx, root, true)
			r.finish(ctx, r.outcome(reason, &code))
			return
		}
		if sb, ok := r.m.cached(r.t.SandboxID); !ok || sb.Status != store.StatusRunning {
			r.consume(ctx, root, true)
			r.finish(ctx, TaskResult{Status: store.TaskFailed, FailureReason: "sandbox_stopped",
				Error: "the sandbox stopped while the agent ran"})
			return
		}
		now := r.m.now()
		if reason == "" {
			select {
			case <-r.cancelCh:
				reason = "cancelled"
			default:
				if now.After(r.t.Deadline) {
					reason = "timeout"
				}
			}
			if reason != "" {
				killedAt = now
				r.kill(syscall.SIGTERM)
			}
		}
		if reason != "" && !hard && now.Sub(killedAt) > taskKillGrace {
			hard = true
			r.kill(syscall.SIGKILL)
		}
		if reason != "" && now.Sub(killedAt) > taskKillLimit {
			r.consume(ctx, root, true)
			r.finish(ctx, r.outcome(reason, nil))
			return
		}
		if time.Since(lastInspect) > 2*time.Second {
			lastInspect = time.Now()
			if code, gone := r.execGone(ctx); gone {
				// The wrapper itself died (SIGKILL, OOM) and wrote no exit file.
				r.consume(ctx, root, true)
				r.finish(ctx, r.outcome(reason, &code))
				return
			}
		}
		select {
		case <-ctx.Done():
			return // sandboxd stops: the task stays running; the next boot resumes it
		case <-r.cancelCh:
		case <-time.After(taskTick):
		}
	}
}

// outcome classifies the end of the agent.
func (r *run) outcome(reason string, code *int) TaskResult {
	res := TaskResult{Status: store.TaskSucceeded, ExitCode: code}
	pr := r.parser.Result()
	switch {
	case reason == "cancelled":
		res.Status, res.FailureReason = store.TaskCancelled, "cancelled"
	case reason == "timeout":
		res.Status, res.FailureReason, res.Error = store.TaskFailed, "timeout", "the task ran past its timeout and was killed"
	case code == nil || *code != 0 || pr.Failed:
		res.Status, res.FailureReason = store.TaskFailed, "agent_error"
		res.Error = pr.Error
		if res.Error == "" && code != nil {
			res.Error = "the agent exited with code " + strconv.Itoa(*code)
		}
	}
	return res
}

// consume reads the complete lines the agent wrote since the last call and stores their
// events with the new offset. At the end (final) a last line without a newline counts too.
func (r *run) consume(ctx context.Context, root *os.Root, final bool) {
	f, _, err := openRegular(root, taskLog(r.t.ID)) // never a FIFO the sandbox planted
	if err != nil {
		return // not created yet
	}
	defer f.Close()
	if _, err := f.Seek(r.offset+int64(len(r.partial)), io.SeekStart); err != nil {
		return
	}
	buf, _ := io.ReadAll(io.LimitReader(f, 8<<20))
	data := append(r.partial, buf...)
	var events []agent.Event
	consumed := 0
	for {
		i := bytes.IndexByte(data[consumed:], '\n')
		if i < 0 {
			break
		}
		events = append(events, r.parse(data[consumed:consumed+i])...)
		consumed += i + 1
	}
	rest := data[consumed:]
	if (final || len(rest) > maxLineBytes) && len(rest) > 0 {
		events = append(events, r.parse(rest)...)
		consumed += len(rest)
		rest = nil
	}
	r.partial = append([]byte(nil), rest...)
	if consumed == 0 {
		return
	}
	r.emit(ctx, events, r.offset+int64(consumed))
}

func (r *run) parse(line []byte) []agent.Event {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	return r.parser.Parse(line)
}

// replay feeds the already-consumed part of the log to a fresh parser, so a resumed run
// knows the final message and usage so far.
func (r *run) replay(root *os.Root) {
	f, _, err := openRegular(root, taskLog(r.t.ID))
	if err != nil {
		return
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, r.offset))
	for _, line := range bytes.Split(data, []byte("\n")) {
		r.parse(line)
	}
}

// emit stores events (scrubbed of secrets) with the log offset they bring the task to, and
// wakes readers.
func (r *run) emit(ctx context.Context, events []agent.Event, offset int64) {
	out := make([]store.TaskEvent, 0, len(events))
	now := r.m.now()
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			continue
		}
		out = append(out, store.TaskEvent{Type: e.Type, Data: json.RawMessage(scrub(string(b), r.secrets)), At: now})
	}
	if _, err := r.m.db.AppendTaskEvents(context.WithoutCancel(ctx), r.t.ID, out, offset); err != nil {
		r.m.log.Error("store task events", "task", r.t.ID, "err", err)
		return
	}
	r.offset = offset
	r.m.taskHub.notify(r.t.ID)
}

// finish records the result with the done event, and wakes every reader a last time.
func (r *run) finish(ctx context.Context, res TaskResult) {
	ctx = context.WithoutCancel(ctx)
	pr := r.parser.Result()
	res.FinalMessage = scrub(pr.FinalMessage, r.secrets)
	res.Error = scrub(res.Error, r.secrets)
	res.Usage = pr.Usage
	res.DurationMS = r.m.now().Sub(r.t.CreatedAt).Milliseconds()
	if before, err := r.m.loadManifest(r.t.ID); err == nil {
		if after, err := takeManifest(r.m.workspaceDir(r.t.SandboxID)); err == nil {
			res.FilesChanged = changes(before, after)
		}
	}
	body := resultJSON(res)
	if err := r.m.db.FinishTask(ctx, r.t.ID, res.Status, body, r.m.now()); err != nil {
		r.m.log.Error("finish task", "task", r.t.ID, "err", err)
	}
	r.m.removeManifest(r.t.ID)
	r.m.taskHub.notify(r.t.ID)
	if r.m.Observe.TaskEnded != nil {
		r.m.Observe.TaskEnded(res.Status)
	}
	r.m.log.Info("task ended", "sandbox", r.t.SandboxID, "task", r.t.ID, "status", res.Status, "reason", res.FailureReason)
}

// kill signals the agent's process group by its host pid.
func (r *run) kill(sig syscall.Signal) {
	if r.t.ExecID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	info, err := r.m.docker.ContainerExecInspect(ctx, r.t.ExecID)
	if err != nil || !info.Running {
		return
	}
	killGroup(info.Pid, sig, r.m.log, r.t.SandboxID)
}

// execGone reports an agent exec that ended without writing its exit file.
func (r *run) execGone(ctx context.Context) (int, bool) {
	if r.t.ExecID == "" {
		return 0, false
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := r.m.docker.ContainerExecInspect(cctx, r.t.ExecID)
	if err != nil {
		return 0, false
	}
	return info.ExitCode, !info.Running
}

func (m *Manager) removeManifest(taskID string) {
	if err := os.Remove(m.manifestPath(taskID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("remove checkpoint", "task", taskID, "err", err)
	}
}

// resumeTasks picks up, at boot, every task still marked running: its runner tails the log
// again from the stored offset, and ends the task once the agent has (or fails it when the
// sandbox is gone).
func (m *Manager) resumeTasks(ctx context.Context) error {
	list, err := m.db.RunningTasks(ctx)
	if err != nil {
		return internal(err, "read running tasks")
	}
	for _, t := range list {
		ad, ok := agent.Lookup(t.Agent)
		if !ok {
			ad, _ = agent.Lookup("opencode")
		}
		r := m.newRun(t, ad, nil)
		if t.ExecID == "" {
			r.fail("sandboxd_lost", "sandboxd stopped before the agent started")
		}
		m.log.Info("resuming task", "sandbox", t.SandboxID, "task", t.ID, "offset", t.LogOffset)
		m.launch(r)
	}
	return nil
}
