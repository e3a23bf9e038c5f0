package envd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process/processconnect"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// processService is process.Process over the process table.
type processService struct{ h *Handler }

var _ processconnect.ProcessHandler = (*processService)(nil)

// Start runs a process and streams its events. The process outlives the stream: a client
// that leaves (E2B's background commands, a disconnect) leaves it running, to be reached
// with Connect, SendInput, SendSignal. The stream's timeout (Connect-Timeout-Ms) is the
// process's: when it passes, the process is killed, as E2B's envd does.
func (s *processService) Start(ctx context.Context, req *connect.Request[process.StartRequest], stream *connect.ServerStream[process.StartResponse]) error {
	h := s.h
	cfg := req.Msg.GetProcess()
	if cfg.GetCmd() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is required"))
	}
	cwd := cfg.GetCwd()
	id, err := prepare(ctx, req.Header(), &cwd)
	if err != nil {
		return err
	}
	for k := range cfg.GetEnvs() {
		if k == "" {
			return connect.NewError(connect.CodeInvalidArgument, errors.New("process.envs has an empty name"))
		}
	}
	if err := h.awake(ctx, id); err != nil {
		return h.rpcError(err, "start process")
	}
	if cfg.Cwd != nil {
		// E2B refuses a missing cwd before it starts anything; Docker would start the exec
		// and fail in it.
		if r, err := h.runFS(ctx, id, nil, nil, "stat", cwd); err != nil {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cwd '%s' does not exist", show(cwd)))
		} else if r.Entry.Type != "dir" {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cwd '%s' is not a directory", show(cwd)))
		}
	}
	p, sub, err := h.startProcess(ctx, id, req.Msg, cwd, streamTimeout(ctx))
	if err != nil {
		return err
	}
	defer p.unsubscribe(sub)
	send := func(ev *process.ProcessEvent) error { return stream.Send(&process.StartResponse{Event: ev}) }
	return h.follow(ctx, req.Header().Get(headerKeepalive), p, sub, send)
}

// Connect streams the events of a process from now on: its start (its pid), its output,
// its end. A process that has ended answers its start and its end.
func (s *processService) Connect(ctx context.Context, req *connect.Request[process.ConnectRequest], stream *connect.ServerStream[process.ConnectResponse]) error {
	id, err := prepare(ctx, req.Header())
	if err != nil {
		return err
	}
	p, err := s.h.procs.find(id, req.Msg.GetProcess())
	if err != nil {
		return err
	}
	sub, err := p.subscribe()
	if err != nil {
		return err
	}
	defer p.unsubscribe(sub)
	send := func(ev *process.ProcessEvent) error { return stream.Send(&process.ConnectResponse{Event: ev}) }
	return s.h.follow(ctx, req.Header().Get(headerKeepalive), p, sub, send)
}

// follow sends a process's start event, then what sub receives, then its end; keepalive
// events fill the silences.
func (h *Handler) follow(ctx context.Context, keepaliveHeader string, p *proc, sub *subscriber, send func(*process.ProcessEvent) error) error {
	if err := send(&process.ProcessEvent{Event: &process.ProcessEvent_Start{Start: &process.ProcessEvent_StartEvent{Pid: p.pid}}}); err != nil {
		return err
	}
	ka := newKeepalive(keepaliveHeader)
	defer ka.Stop()
	for {
		select {
		case ev := <-sub.events:
			if err := send(ev); err != nil {
				return err
			}
			ka.Reset()
		case <-p.done:
			if err := ctx.Err(); err != nil {
				// The stream's own timeout passed too: a Start's process dies with its
				// stream's deadline, and E2B's stream then ends with deadline_exceeded, not
				// the end. Both are ready at once, and select picks either.
				return err
			}
			for {
				select {
				case ev := <-sub.events:
					if err := send(ev); err != nil {
						return err
					}
					continue
				default:
				}
				break
			}
			return send(&process.ProcessEvent{Event: &process.ProcessEvent_End{End: p.ending()}})
		case <-sub.cut:
			return connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("this stream did not read the output of process %d for %s: it was cut off (the process runs on; Connect to it again)", p.pid, slowSubscriber))
		case <-ka.C():
			if err := send(&process.ProcessEvent{Event: &process.ProcessEvent_Keepalive{Keepalive: &process.ProcessEvent_KeepAlive{}}}); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startProcess starts the process of req in sandbox id (awake) and subscribes to it before
// it can write anything.
func (h *Handler) startProcess(ctx context.Context, id string, req *process.StartRequest, cwd string, timeout time.Duration) (*proc, *subscriber, error) {
	if timeout <= 0 || timeout > lifecycle.MaxExecTimeout {
		timeout = lifecycle.MaxExecTimeout
	}
	cfg := req.GetProcess()
	argv := append([]string{cfg.GetCmd()}, cfg.GetArgs()...)
	pctx, kill := context.WithTimeout(h.base, timeout)
	p := &proc{tag: req.Tag, config: cfg, pty: req.GetPty() != nil, kill: kill,
		done: make(chan struct{}), subs: map[*subscriber]struct{}{}}
	limit := h.MaxProcesses
	if limit <= 0 {
		limit = defaultMaxProcesses
	}
	h.procs.prune(h.sandboxes.Running)
	if err := h.procs.add(id, p, limit); err != nil {
		kill()
		return nil, nil, err
	}
	sub, _ := p.subscribe()
	fail := func(err error) (*proc, *subscriber, error) {
		kill()
		h.procs.ended(id, p)
		p.finish(&process.ProcessEvent_EndEvent{ExitCode: -1, Status: "error", Error: ptr(publicMessage(err))})
		return nil, nil, h.rpcError(err, "start process")
	}
	if p.pty {
		size := req.GetPty().GetSize()
		// A TTY exec starts in the home; sh moves to cwd and becomes the command.
		cmd := append([]string{"/bin/sh", "-c", `cd -- "$0" && exec "$@"`, cwd}, argv...)
		var term lifecycle.Terminal
		if err := h.awakeFor(ctx, id, func() (err error) {
			term, err = h.sandboxes.Terminal(pctx, id, lifecycle.TerminalRequest{
				Cmd: cmd, Env: cfg.GetEnvs(), Cols: uint(size.GetCols()), Rows: uint(size.GetRows())})
			return err
		}); err != nil {
			return fail(err)
		}
		p.term = term
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.runTerminal(pctx, id, p, term)
		}()
		return p, sub, nil
	}
	var stdin io.Reader
	if req.GetStdin() {
		pr, pw := io.Pipe()
		stdin, p.stdin = pr, pw
		context.AfterFunc(pctx, func() { pr.CloseWithError(errors.New("the process ended")) })
	}
	execReq := lifecycle.ExecRequest{Cmd: argv, Env: cfg.GetEnvs(), Cwd: cwd, Timeout: timeout, Stdin: stdin}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		// A container that died since the wake is woken again and the exec made once more:
		// the error comes before the command ran or read its stdin.
		var st lifecycle.ExecStatus
		err := h.awakeFor(pctx, id, func() (err error) {
			st, err = h.sandboxes.ExecStream(pctx, id, execReq, output{p, 1}, output{p, 2})
			return err
		})
		h.ended(id, p, st.ExitCode, st.TimedOut || errors.Is(err, context.DeadlineExceeded), err)
	}()
	return p, sub, nil
}

// runTerminal copies a PTY's output until it closes, then records how the process ended.
// The terminal is closed (the session hung up) when pctx ends: a kill or the timeout.
func (h *Handler) runTerminal(pctx context.Context, id string, p *proc, term lifecycle.Terminal) {
	stop := context.AfterFunc(pctx, func() { term.Close() })
	defer stop()
	_, err := io.Copy(output{p, 3}, term)
	_ = err // a PTY read ends with EIO when the session is gone: that is its end
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	code, werr := term.Wait(wctx)
	cancel()
	term.Close()
	h.ended(id, p, code, errors.Is(pctx.Err(), context.DeadlineExceeded), werr)
}

// ended records a process's end for its subscribers and the table.
func (h *Handler) ended(id string, p *proc, code int, timedOut bool, err error) {
	p.kill() // releases the context's resources
	end := &process.ProcessEvent_EndEvent{ExitCode: int32(code), Exited: true, Status: "exit status " + fmt.Sprint(code)}
	switch {
	case timedOut:
		end.Exited, end.Status, end.Error = false, "signal: killed", ptr("the process was killed when its timeout passed")
		end.ExitCode = -1
	case err != nil && errors.Is(err, context.Canceled):
		end.Exited, end.Status, end.ExitCode = false, "signal: killed", -1
	case err != nil:
		end.Exited, end.Status, end.ExitCode = false, "error", -1
		end.Error = ptr(publicMessage(err))
		if connectCode(err) == connect.CodeInternal {
			h.log.Error("envd: process failed", "sandbox", id, "pid", p.pid, "err", err)
		}
	case code > 128 && code <= 128+64:
		// A shell's way of saying "killed by a signal".
		end.Exited, end.Status = false, "signal: "+syscall.Signal(code-128).String()
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	// Off the running list first: a client that has read the end and lists at once must
	// not find the process still running.
	h.procs.ended(id, p)
	p.finish(end)
}

// List names the processes that run now, by pid.
func (s *processService) List(ctx context.Context, req *connect.Request[process.ListRequest]) (*connect.Response[process.ListResponse], error) {
	id, err := prepare(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	procs := s.h.procs.list(id)
	sort.Slice(procs, func(i, j int) bool { return procs[i].pid < procs[j].pid })
	out := &process.ListResponse{Processes: make([]*process.ProcessInfo, 0, len(procs))}
	for _, p := range procs {
		out.Processes = append(out.Processes, p.info())
	}
	return connect.NewResponse(out), nil
}

// running finds a process of the request's sandbox that has not ended.
func (s *processService) running(ctx context.Context, sel *process.ProcessSelector) (*proc, error) {
	id := sandboxOf(ctx)
	p, err := s.h.procs.find(id, sel)
	if err != nil {
		return nil, err
	}
	if p.ending() != nil {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process %d has ended", p.pid))
	}
	return p, nil
}

// SendSignal delivers SIGKILL: the process's whole group is killed (a PTY's session hung
// up first). SIGTERM is refused: sandboxd holds no handle to deliver it through.
func (s *processService) SendSignal(ctx context.Context, req *connect.Request[process.SendSignalRequest]) (*connect.Response[process.SendSignalResponse], error) {
	if _, err := prepare(ctx, req.Header()); err != nil {
		return nil, err
	}
	p, err := s.running(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	switch req.Msg.GetSignal() {
	case process.Signal_SIGNAL_SIGKILL:
		p.kill()
	case process.Signal_SIGNAL_SIGTERM:
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("sandboxd delivers SIGKILL only: send SIGNAL_SIGKILL"))
	default:
		return nil, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("invalid signal: %s", req.Msg.GetSignal()))
	}
	return connect.NewResponse(&process.SendSignalResponse{}), nil
}

// input writes in to p: to the PTY, or to stdin.
func (s *processService) input(p *proc, in *process.ProcessInput) error {
	var err error
	switch v := in.GetInput().(type) {
	case *process.ProcessInput_Pty:
		if p.term == nil {
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("process %d has no PTY: send stdin", p.pid))
		}
		_, err = p.term.Write(v.Pty)
	case *process.ProcessInput_Stdin:
		switch {
		case p.term != nil:
			_, err = p.term.Write(v.Stdin)
		case p.stdin == nil:
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("process %d was started without stdin", p.pid))
		default:
			_, err = p.stdin.Write(v.Stdin)
		}
	default:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("input must be stdin or pty bytes"))
	}
	if err != nil {
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("process %d takes no more input: %v", p.pid, err))
	}
	return nil
}

// SendInput sends one piece of input.
func (s *processService) SendInput(ctx context.Context, req *connect.Request[process.SendInputRequest]) (*connect.Response[process.SendInputResponse], error) {
	if _, err := prepare(ctx, req.Header()); err != nil {
		return nil, err
	}
	p, err := s.running(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := s.input(p, req.Msg.GetInput()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&process.SendInputResponse{}), nil
}

// StreamInput sends input in order: the first message names the process.
func (s *processService) StreamInput(ctx context.Context, stream *connect.ClientStream[process.StreamInputRequest]) (*connect.Response[process.StreamInputResponse], error) {
	if _, err := prepare(ctx, stream.RequestHeader()); err != nil {
		return nil, err
	}
	var p *proc
	for stream.Receive() {
		switch ev := stream.Msg().GetEvent().(type) {
		case *process.StreamInputRequest_Start:
			found, err := s.running(ctx, ev.Start.GetProcess())
			if err != nil {
				return nil, err
			}
			p = found
		case *process.StreamInputRequest_Data:
			if p == nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("the first message must be a start naming the process"))
			}
			if err := s.input(p, ev.Data.GetInput()); err != nil {
				return nil, err
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&process.StreamInputResponse{}), nil
}

// CloseStdin closes a process's stdin: it reads EOF.
func (s *processService) CloseStdin(ctx context.Context, req *connect.Request[process.CloseStdinRequest]) (*connect.Response[process.CloseStdinResponse], error) {
	if _, err := prepare(ctx, req.Header()); err != nil {
		return nil, err
	}
	p, err := s.running(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if p.stdin == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("process %d has no stdin to close (a PTY takes Ctrl-D)", p.pid))
	}
	p.stdin.Close()
	return connect.NewResponse(&process.CloseStdinResponse{}), nil
}

// Update resizes a process's PTY.
func (s *processService) Update(ctx context.Context, req *connect.Request[process.UpdateRequest]) (*connect.Response[process.UpdateResponse], error) {
	if _, err := prepare(ctx, req.Header()); err != nil {
		return nil, err
	}
	p, err := s.running(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if size := req.Msg.GetPty().GetSize(); size != nil {
		if p.term == nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("process %d has no PTY", p.pid))
		}
		if err := p.term.Resize(uint(size.GetCols()), uint(size.GetRows())); err != nil {
			return nil, s.h.rpcError(err, "resize")
		}
	}
	return connect.NewResponse(&process.UpdateResponse{}), nil
}

func ptr[T any](v T) *T { return &v }
