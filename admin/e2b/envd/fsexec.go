package envd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem"
	"github.com/sandboxd/sandboxd/lifecycle"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The wire contract of "sandbox-init fs" (cmd/sandbox-init/fscmd.go): the first line of
// its stdout is one JSON object.
type fsResult struct {
	UID     int       `json:"uid"` // the user the helper ran as
	Entry   *fsEntry  `json:"entry"`
	Entries []fsEntry `json:"entries"`
	Error   *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

type fsEntry struct {
	Name    string  `json:"name"`
	Path    string  `json:"path"`
	Type    string  `json:"type"`
	Size    int64   `json:"size"`
	Mode    uint32  `json:"mode"`
	Perm    string  `json:"perm"`
	UID     int     `json:"uid"`
	GID     int     `json:"gid"`
	Owner   string  `json:"owner"`
	Group   string  `json:"group"`
	MTime   int64   `json:"mtime_ns"`
	Symlink *string `json:"symlink"`
}

// fsTimeout bounds one file operation but a transfer; fsTransferTimeout bounds a read or
// write of a file's bytes.
const (
	fsTimeout         = time.Minute
	fsTransferTimeout = 30 * time.Minute
)

// maxFSAnswer caps the JSON answer of a file operation held in memory (a listing of the
// helper's largest, 20000 entries, fits).
const maxFSAnswer = 16 << 20

// maxFSCalls bounds the file operations running at once per sandbox: each holds an exec
// and up to maxFSAnswer of memory.
const maxFSCalls = 8

// runFS runs "sandbox-init fs args..." in the sandbox (awake) and returns its first line,
// decoded; what follows it goes to rest (a read's bytes), or is an error when rest is nil.
func (h *Handler) runFS(ctx context.Context, id string, stdin io.Reader, rest io.Writer, args ...string) (fsResult, error) {
	release, err := h.fsSlots.take(id, maxFSCalls)
	if err != nil {
		return fsResult{}, err
	}
	defer release()
	timeout := fsTimeout
	if stdin != nil || rest != nil {
		timeout = fsTransferTimeout
	}
	req := lifecycle.ExecRequest{Cmd: append([]string{h.initPath(), "fs"}, args...), Timeout: timeout, Stdin: stdin}
	var (
		out    *lineThen
		stderr cappedBuffer
		st     lifecycle.ExecStatus
	)
	// A container that died since the wake is woken again and the exec made once more.
	if werr := h.awakeFor(ctx, id, func() error {
		out, stderr = &lineThen{rest: rest, max: maxFSAnswer}, cappedBuffer{}
		st, err = h.sandboxes.ExecStream(ctx, id, req, out, &stderr)
		if err != nil && !out.done {
			return err
		}
		return nil
	}); werr != nil {
		return fsResult{}, werr
	}
	if !out.done {
		if st.ExitCode == 126 || st.ExitCode == 127 {
			return fsResult{}, connect.NewError(connect.CodeFailedPrecondition,
				errors.New("this sandbox runs without sandbox-init, which envd's file calls need"))
		}
		h.log.Error("envd: sandbox-init fs gave no answer", "sandbox", id, "op", args[0], "exit", st.ExitCode, "stderr", stderr.String())
		return fsResult{}, connect.NewError(connect.CodeInternal, fmt.Errorf("file operation %s failed (exit %d)", args[0], st.ExitCode))
	}
	var r fsResult
	if err := json.Unmarshal(out.line.Bytes(), &r); err != nil {
		return fsResult{}, connect.NewError(connect.CodeInternal, fmt.Errorf("file operation %s: bad answer: %w", args[0], err))
	}
	if r.Error != nil {
		return r, fsError(r.Error.Kind, r.Error.Message)
	}
	if err != nil { // the answer came, then the transfer broke
		return r, err
	}
	return r, nil
}

// fsError is the Connect error of a failed file operation. Messages name container paths;
// they are shown as the client wrote them where it matters (the home).
func fsError(kind, msg string) error {
	code := connect.CodeInternal
	switch kind {
	case "not_found":
		code = connect.CodeNotFound
	case "exists":
		code = connect.CodeAlreadyExists
	case "not_dir", "is_dir", "invalid":
		code = connect.CodeInvalidArgument
	case "permission":
		code = connect.CodePermissionDenied
	case "no_space":
		code = connect.CodeResourceExhausted
	}
	return connect.NewError(code, errors.New(showIn(msg)))
}

// showIn rewrites the sandbox home to /home/user in a message.
func showIn(msg string) string {
	return string(bytes.ReplaceAll([]byte(msg), []byte(lifecycle.Home), []byte(UserHome)))
}

// entryInfo is an entry as E2B's EntryInfo. self is the uid of the sandbox user, shown as
// E2B's "user".
func entryInfo(e fsEntry, self int) *filesystem.EntryInfo {
	info := &filesystem.EntryInfo{
		Name: e.Name, Path: show(e.Path), Size: e.Size, Mode: e.Mode, Permissions: e.Perm,
		Owner: e.Owner, Group: e.Group, ModifiedTime: timestamppb.New(time.Unix(0, e.MTime)),
	}
	switch e.Type {
	case "file":
		info.Type = filesystem.FileType_FILE_TYPE_FILE
	case "dir":
		info.Type = filesystem.FileType_FILE_TYPE_DIRECTORY
	}
	if e.UID == self {
		info.Owner = "user"
	}
	if e.GID == self {
		info.Group = "user"
	}
	if e.Symlink != nil {
		t := show(*e.Symlink)
		info.SymlinkTarget = &t
	}
	return info
}

// slots counts what runs at once per sandbox.
type slots struct {
	mu sync.Mutex
	n  map[string]int
}

// take holds one of limit slots of id until release is called.
func (s *slots) take(id string, limit int) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	if s.n[id] >= limit {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("sandbox %s has %d file operations running, the most it may have at once", id, limit))
	}
	s.n[id]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.n[id]--; s.n[id] == 0 {
			delete(s.n, id)
		}
	}, nil
}

// lineThen keeps the first line written to it (up to max bytes) and passes the rest on.
type lineThen struct {
	line bytes.Buffer
	done bool // the line is complete
	rest io.Writer
	max  int
}

func (l *lineThen) Write(p []byte) (int, error) {
	n := len(p)
	if !l.done {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if l.line.Len()+len(p) > l.max {
				return 0, errors.New("answer too large")
			}
			l.line.Write(p)
			return n, nil
		}
		l.line.Write(p[:i])
		l.done = true
		p = p[i+1:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if l.rest == nil {
		return 0, errors.New("unexpected output after the answer")
	}
	if _, err := l.rest.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// cappedBuffer keeps the first 4 KiB written to it (a helper's stderr, for the log).
type cappedBuffer struct{ b []byte }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string { return string(c.b) }
