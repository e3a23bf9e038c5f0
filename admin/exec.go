package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
)

type execBody struct {
	Cmd     []string          `json:"cmd"`
	Env     map[string]string `json:"env"`
	Cwd     string            `json:"cwd"`
	Timeout duration          `json:"timeout"`
	Stdin   *string           `json:"stdin"`
	Stream  bool              `json:"stream"` // prior system: accepted, answered buffered
}

type execView struct {
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	ExitCode   int    `json:"exit_code"`
	TimedOut   bool   `json:"timed_out"`
	Truncated  bool   `json:"truncated"`
	DurationMS int64  `json:"duration_ms"`
}

// exec runs a command and answers its output and exit code. A stopped sandbox is woken
// first, through the same waker (and admission) as the edge.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b execBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	req := lifecycle.ExecRequest{Cmd: b.Cmd, Env: b.Env, Cwd: b.Cwd, Timeout: time.Duration(b.Timeout)}
	if b.Stdin != nil {
		req.Stdin = strings.NewReader(*b.Stdin)
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	if _, err := s.waker.Wake(r.Context(), id, 0); err != nil {
		return err
	}
	start := time.Now()
	res, err := s.sandboxes.Exec(r.Context(), id, req)
	if err != nil {
		return err
	}
	first := ""
	if len(b.Cmd) > 0 {
		first = b.Cmd[0]
	}
	s.record(r, "sandbox.exec", id, first)
	writeJSON(w, http.StatusOK, execView{
		Stdout: string(res.Stdout), Stderr: string(res.Stderr), ExitCode: res.ExitCode,
		TimedOut: res.TimedOut, Truncated: res.Truncated, DurationMS: time.Since(start).Milliseconds(),
	})
	return nil
}
