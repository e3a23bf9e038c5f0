package admin

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// Detached execs: POST .../exec with "detach":true starts one; these routes read its status
// and its output (stdout and stderr together, as the command wrote them). Both work while
// the sandbox sleeps and never wake it.

// DetachedExecs starts commands that run on after the request, and reads their status and
// output from the host, whether or not the sandbox runs.
type DetachedExecs interface {
	ExecDetached(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.DetachedExec, error)
	DetachedStatus(ctx context.Context, id, execID string) (lifecycle.DetachedExec, error)
	DetachedOutput(ctx context.Context, id, execID string) (io.ReadSeekCloser, time.Time, error)
}

type detachedView struct {
	ExecID    string    `json:"exec_id"` // never "id": a sandbox's id is the only "id" key
	Status    string    `json:"status"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	TimedOut  bool      `json:"timed_out,omitempty"`
	Cmd       []string  `json:"cmd"`
	StartedAt time.Time `json:"started_at"`
	StatusURL string    `json:"status_url"`
	OutputURL string    `json:"output_url"`
}

func viewDetached(id string, d lifecycle.DetachedExec) detachedView {
	base := "/v1/sandboxes/" + id + "/execs/" + d.ID
	return detachedView{
		ExecID: d.ID, Status: d.Status, ExitCode: d.ExitCode, TimedOut: d.TimedOut,
		Cmd: d.Cmd, StartedAt: d.StartedAt, StatusURL: base, OutputURL: base + "/output",
	}
}

// execDetached starts a command that runs on after the answer: 202 with its exec id and
// where to read its status and output. The sandbox is already awake.
func (s *Server) execDetached(w http.ResponseWriter, r *http.Request, id string, req lifecycle.ExecRequest) error {
	d, err := s.detached.ExecDetached(r.Context(), id, req)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.exec", id, "detached "+d.ID+": "+req.Cmd[0])
	v := viewDetached(id, d)
	w.Header().Set("Location", v.StatusURL)
	writeJSON(w, http.StatusAccepted, v)
	return nil
}

// getExec answers a detached exec's status: running, exited (with exit_code when known),
// or unknown (sandboxd restarted since it began; the command may still run).
func (s *Server) getExec(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	d, err := s.detached.DetachedStatus(r.Context(), id, mux.Vars(r)["execId"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewDetached(id, d))
	return nil
}

// getExecOutput answers a detached exec's output so far, with Range and conditional
// requests (http.ServeContent): a client follows a running command by asking for the bytes
// after those it has.
func (s *Server) getExecOutput(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	out, mod, err := s.detached.DetachedOutput(r.Context(), id, mux.Vars(r)["execId"])
	if err != nil {
		return err
	}
	defer out.Close()
	// What a sandbox prints is never rendered as a page of this origin.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", mod, out)
	return nil
}
