package task

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/lifecycle"
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
	inspectEvery  = 2 * time.Second // how often the engine is asked whether the agent died
	taskKillGrace = 3 * time.Second // SIGTERM, then SIGKILL to the process group
	taskKillLimit = 5 * time.Second // then the task ends cancelled whatever the agent does
)

func taskLog(taskID string) string { return initproto.TaskLog(taskID) }

// job is one task's run: it owns the tail of the agent's log until the task ends.
type job struct {
	r       *Runner
	t       store.Task
	parser  agent.Parser
	secrets []string

	cancelOnce sync.Once
	cancelCh   chan struct{}
	done       chan struct{} // closed by detach
	more       chan struct{} // readers wait on it; guarded by Runner.mu (hub.go)
	preset     *Result       // decided before the loop: the agent did not start

	// The log is read in order. Bytes [0, offset) are stored as events, with offset beside
	// them; [offset, read) are parsed into pending, events not stored yet because the store
	// failed (issue 10: an offset that moved apart from the read position made the next
	// read start inside bytes already read); [read, read+len(partial)) is a line not yet
	// complete. The parser sees each byte once, in order.
	offset  int64
	read    int64
	pending []agent.Event
	partial []byte
	failing bool // the last store failed (logged once per outage)

	// Caps (limits.go): what the task has stored, and whether it reached a cap. They move
	// only once a store succeeds. skipping: the rest of an overlong line is being dropped.
	stored, storedBytes int64
	truncated           bool
	skipping            bool
	purged              bool // the store no longer has the task: its sandbox was purged
}

func (r *Runner) newJob(t store.Task, ad agent.Adapter, secrets []string) *job {
	if env, err := r.db.SandboxEnv(context.Background(), t.SandboxID); err == nil {
		for k, v := range env {
			if looksSecret(k) && len(v) >= 6 {
				secrets = append(secrets, v)
			}
		}
	}
	// Longest first, so a secret containing another is scrubbed whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	return &job{r: r, t: t, parser: ad.NewParser(), secrets: secrets, offset: t.LogOffset, read: t.LogOffset,
		cancelCh: make(chan struct{}), done: make(chan struct{})}
}

func (j *job) cancel() { j.cancelOnce.Do(func() { close(j.cancelCh) }) }

func (j *job) fail(reason, msg string) {
	j.preset = &Result{Status: store.TaskFailed, FailureReason: reason, Error: msg}
}

func (j *job) loop(ctx context.Context) {
	if j.preset != nil {
		j.finish(ctx, *j.preset)
		return
	}
	root, err := os.OpenRoot(j.r.sandboxes.WorkspaceDir(j.t.SandboxID))
	if err != nil {
		j.finish(ctx, Result{Status: store.TaskFailed, FailureReason: "internal", Error: "workspace is gone"})
		return
	}
	defer root.Close()
	if j.offset > 0 {
		j.replay(root) // a resumed run: rebuild the parser's state without emitting again
	} else {
		j.pending = []agent.Event{{Type: "status", Phase: "started", Text: j.t.Agent}}
		j.flush(ctx)
	}

	var reason string
	var killedAt time.Time
	hard := false
	cancelled := j.cancelCh // wakes the loop once; nil after, or a closed channel would spin it
	lastInspect := j.r.now()
	tick := time.NewTimer(taskTick)
	defer tick.Stop()
	for {
		j.consume(ctx, root, false)
		if j.purged {
			j.r.log.Info("task's sandbox was purged; no longer following it", "sandbox", j.t.SandboxID, "task", j.t.ID)
			return
		}
		if code, ok, _ := lifecycle.ReadExitFile(root, taskLog(j.t.ID)); ok {
			j.consume(ctx, root, true)
			j.finish(ctx, j.outcome(reason, &code))
			return
		}
		if _, err := j.r.sandboxes.RunningSandbox(j.t.SandboxID); err != nil {
			j.consume(ctx, root, true)
			j.finish(ctx, Result{Status: store.TaskFailed, FailureReason: "sandbox_stopped",
				Error: "the sandbox stopped while the agent ran"})
			return
		}
		now := j.r.now()
		if reason == "" {
			select {
			case <-j.cancelCh:
				reason = "cancelled"
			default:
				if now.After(j.t.Deadline) {
					reason = "timeout"
				}
			}
			if reason != "" {
				killedAt, cancelled = now, nil
				j.kill(syscall.SIGTERM)
			}
		}
		if reason != "" && !hard && now.Sub(killedAt) > taskKillGrace {
			hard = true
			j.kill(syscall.SIGKILL)
		}
		if reason != "" && now.Sub(killedAt) > taskKillLimit {
			j.consume(ctx, root, true)
			j.finish(ctx, j.outcome(reason, nil))
			return
		}
		if now.Sub(lastInspect) > inspectEvery {
			lastInspect = now
			if code, gone := j.execGone(ctx); gone {
				// The wrapper itself died (SIGKILL, OOM) and wrote no exit file.
				j.consume(ctx, root, true)
				j.finish(ctx, j.outcome(reason, &code))
				return
			}
		}
		tick.Reset(taskTick)
		select {
		case <-ctx.Done():
			return // sandboxd stops: the task stays running; the next boot resumes it
		case <-cancelled:
		case <-tick.C:
		}
	}
}

// outcome classifies the end of the agent.
func (j *job) outcome(reason string, code *int) Result {
	res := Result{Status: store.TaskSucceeded, ExitCode: code}
	pr := j.parser.Result()
	switch {
	case reason == "cancelled":
		res.Status, res.FailureReason = store.TaskCancelled, "cancelled"
	case reason == "timeout":
		res.Status, res.FailureReason, res.Error = store.TaskFailed, "timeout", "the task ran past its timeout and was killed"
	case code == nil || *code != 0 || pr.Failed:
		res.Status, res.FailureReason = store.TaskFailed, "agent_error"
		res.Error, res.FailureKind, res.ErrorRef = pr.Error, pr.FailureKind, pr.ErrorRef
		if res.FailureKind == "" && code != nil && *code == 130 {
			res.FailureKind = agent.FailureAborted // SIGINT (OpenCode 2.0 exits 130)
		}
		if res.Error == "" && code != nil {
			res.Error = "the agent exited with code " + strconv.Itoa(*code)
		}
	}
	return res
}

// consume reads the complete lines the agent wrote since the last call and stores their
// events with the new offset. At the end (final) a last line without a newline counts too.
// While the store fails, nothing more is read (final aside), so pending stays within one
// read; the next call stores it first.
func (j *job) consume(ctx context.Context, root *os.Root, final bool) {
	if !j.flush(ctx) && !final {
		return
	}
	f, _, err := lifecycle.OpenRegular(root, taskLog(j.t.ID)) // never a FIFO the sandbox planted
	if err != nil {
		return // not created yet
	}
	defer f.Close()
	if _, err := f.Seek(j.read+int64(len(j.partial)), io.SeekStart); err != nil {
		return
	}
	buf, _ := io.ReadAll(io.LimitReader(f, 8<<20))
	data := append(j.partial, buf...)
	consumed := 0
	for {
		i := bytes.IndexByte(data[consumed:], '\n')
		if i < 0 {
			break
		}
		if j.skipping { // the end of an overlong line, already cut and parsed
			j.skipping = false
		} else {
			j.pending = append(j.pending, j.parse(capLine(data[consumed:consumed+i]))...)
		}
		consumed += i + 1
	}
	rest := data[consumed:]
	switch {
	case j.skipping:
		consumed += len(rest)
		rest = nil
	case len(rest) > maxLineBytes:
		// A line this long is cut: its head is parsed now, the rest skipped as it comes.
		j.pending = append(j.pending, j.parse(rest[:maxLineBytes])...)
		consumed += len(rest)
		rest = nil
		j.skipping = true
	case final && len(rest) > 0:
		j.pending = append(j.pending, j.parse(rest)...)
		consumed += len(rest)
		rest = nil
	}
	if final {
		// The stream ended: an error line the parser held back to see whether the agent
		// went on after it is an error now.
		if f, ok := j.parser.(agent.Finisher); ok {
			j.pending = append(j.pending, f.Finish()...)
		}
	}
	j.partial = append([]byte(nil), rest...)
	j.read += int64(consumed)
	j.flush(ctx)
}

func capLine(line []byte) []byte {
	if len(line) > maxLineBytes {
		return line[:maxLineBytes]
	}
	return line
}

func (j *job) parse(line []byte) []agent.Event {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	return j.parser.Parse(line)
}

// flush stores the pending events (scrubbed of secrets) with the log offset they bring
// the task to, in one transaction, and wakes readers. It reports whether nothing is left
// to store; on failure everything stays as it was, to be tried again.
func (j *job) flush(ctx context.Context) bool {
	if len(j.pending) == 0 && j.read == j.offset {
		return true
	}
	var evs []store.TaskEvent
	now := j.r.now()
	for _, e := range j.pending {
		if j.truncated {
			break // nothing more is stored: the offset alone moves
		}
		b, err := json.Marshal(e)
		if err != nil {
			continue
		}
		evs = append(evs, store.TaskEvent{Type: e.Type, Data: json.RawMessage(scrub(string(b), j.secrets)), At: now})
	}
	out, stored, storedBytes, truncated := j.capped(evs)
	if _, err := j.r.db.AppendTaskEvents(context.WithoutCancel(ctx), j.t.ID, out, j.read); err != nil {
		if gone(err) {
			j.purged = true
			return false
		}
		if !j.failing {
			j.r.log.Error("store task events; retrying each tick", "task", j.t.ID, "err", err)
		}
		j.failing = true
		return false
	}
	if j.failing {
		j.r.log.Info("task events stored again", "task", j.t.ID)
	}
	if truncated && !j.truncated {
		j.r.log.Warn("task reached its event cap; the rest of its output is not stored", "sandbox", j.t.SandboxID, "task", j.t.ID,
			"events", stored, "bytes", storedBytes)
	}
	j.failing = false
	j.offset, j.pending = j.read, nil
	j.stored, j.storedBytes, j.truncated = stored, storedBytes, truncated
	if len(out) > 0 {
		j.r.notify(j)
	}
	return true
}

// finish records the result with the done event, and wakes every reader a last time.
func (j *job) finish(ctx context.Context, res Result) {
	ctx = context.WithoutCancel(ctx)
	pr := j.parser.Result()
	res.FinalMessage = scrub(pr.FinalMessage, j.secrets)
	res.Error = scrub(capText(res.Error, maxErrorBytes), j.secrets)
	res.Usage = pr.Usage
	res.Subagents, res.PermissionDenials = pr.Subagents, pr.PermissionDenials
	res.DurationMS = j.r.now().Sub(j.t.CreatedAt).Milliseconds()
	res.FilesChanged, res.FilesChangedTruncated = j.r.filesChanged(ctx, j.t.SandboxID, j.t.ID)
	res.EventsTruncated = j.truncated
	body := resultJSON(res)
	if err := j.r.db.FinishTask(ctx, j.t.ID, res.Status, body, j.r.now()); gone(err) {
		j.r.log.Info("task ended after its sandbox was purged; nothing stored", "task", j.t.ID)
	} else if err != nil {
		j.r.log.Error("finish task", "task", j.t.ID, "err", err)
	}
	j.r.notify(j)
	if j.r.Ended != nil {
		j.r.Ended(res.Status)
	}
	j.r.log.Info("task ended", "sandbox", j.t.SandboxID, "task", j.t.ID, "status", res.Status, "reason", res.FailureReason)
}

// kill signals the agent's process group.
func (j *job) kill(sig syscall.Signal) {
	if j.t.ExecID != "" {
		j.r.sandboxes.SignalExec(j.t.SandboxID, j.t.ExecID, sig)
	}
}

// execGone reports an agent exec that ended without writing its exit file.
func (j *job) execGone(ctx context.Context) (int, bool) {
	if j.t.ExecID == "" {
		return 0, false
	}
	return j.r.sandboxes.ExecExited(ctx, j.t.ExecID)
}

// secretValues are the values to scrub from anything a task stores or shows: every task
// env value (provider keys come that way) longer than a few characters.
func secretValues(env map[string]string) []string {
	var out []string
	for _, v := range env {
		if len(v) >= 6 {
			out = append(out, v)
		}
	}
	return out
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

func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
