package lifecycle

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// PortService is what the edge's starting page and its 502 "port closed" show of the
// service behind a port that does not answer (issue 14).
type PortService struct {
	// Name is the service that declares the port; when none does, the image's own
	// command (initproto.MainService) if sandbox-init runs it; "" when neither.
	Name     string
	Declared bool // Name declares the port
	// State, StartedAt, Restarts, LastExit and Error are as sandbox-init last wrote them
	// to its state file; State is "" while the sandbox does not run (the file is then
	// the last run's) or when the file names no such service.
	State     string
	StartedAt time.Time
	Restarts  int
	LastExit  string
	Error     string
	// Log is the service's log relative to the home; Tail is its last bytes, TailCut
	// true when Tail starts inside it.
	Log     string
	Tail    []byte
	TailCut bool
	// Secrets are the env values of the sandbox and of its services, which whoever shows
	// Tail must redact. When they cannot be read, Tail is left empty.
	Secrets []string
}

// PortService describes the service behind port of sandbox id, with at most tailBytes of
// the end of its log. It reads memory and files only, never SQLite or Docker: the sandbox's
// row from memory, sandbox-init's state file and the log from the workspace (through
// os.Root and a non-blocking open: the sandbox owns those paths and may plant a symlink or
// a FIFO there), and the env values from the sandbox's config file. It is meant for the
// edge's slow paths, which call it at most once a second per port.
func (m *Manager) PortService(id string, port, tailBytes int) (PortService, error) {
	sb, ok := m.cached(id)
	if !ok || !ValidID(id) {
		return PortService{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	var ps PortService
	for _, s := range sb.Services {
		if s.Port == port {
			ps.Name, ps.Declared = s.Name, true
			break
		}
	}
	if m.cfg.InitPath == "" {
		return ps, nil // no sandbox-init: no state file and no service logs
	}
	st, err := m.readState(id)
	if err != nil {
		return ps, internal(err, "read the state of %s", id)
	}
	for _, s := range st.Services {
		if ps.Name == "" && s.Name == initproto.MainService {
			ps.Name = s.Name
		}
		if s.Name != ps.Name || ps.Name == "" {
			continue
		}
		if sb.Status == store.StatusRunning {
			ps.State, ps.StartedAt, ps.Restarts, ps.Error = s.State, s.StartedAt, s.Restarts, s.Error
			if s.LastExit != nil {
				ps.LastExit = s.LastExit.String()
			}
		}
		break
	}
	if ps.Name == "" {
		return ps, nil
	}
	ps.Log = initproto.ServiceLog(ps.Name)
	secrets, err := m.envValues(sb)
	if err != nil {
		m.log.Warn("read env values to redact a service log; the log is not shown", "sandbox", id, "err", err)
		return ps, nil
	}
	ps.Secrets = secrets
	ps.Tail, ps.TailCut, err = m.logTail(id, ps.Log, tailBytes)
	if err != nil {
		return ps, internal(err, "read the log of service %s of %s", ps.Name, id)
	}
	return ps, nil
}

// envValues returns the env values of sb and of its services, from its config file (the
// database holds them too, but the edge's slow path reads no SQLite) and from memory.
// A value that is one of the sandbox's ports (PORT=4000) is left out: the preview URL shows
// it anyway, and "listening on [redacted]" would help nobody.
func (m *Manager) envValues(sb store.Sandbox) ([]string, error) {
	saved, env, err := m.readConfig(sb.ID) // its values are sealed: readConfig opens them
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && len(sb.EnvKeys) == 0) {
		return nil, err // without the sandbox's values nothing can be redacted
	}
	public := map[string]bool{}
	for _, p := range sb.Ports {
		public[strconv.Itoa(p)] = true
	}
	var out []string
	add := func(vs map[string]string) {
		for _, v := range vs {
			if !public[v] {
				out = append(out, v)
			}
		}
	}
	add(env)
	for _, s := range append(saved.Services, sb.Services...) { // as saved, and as in force
		add(s.Env)
	}
	return out, nil
}

// logTail reads at most n bytes of the end of name in id's workspace; cut reports that
// they start after the file's first byte. A missing log is empty.
func (m *Manager) logTail(id, name string, n int) (tail []byte, cut bool, err error) {
	root, err := os.OpenRoot(m.workspaceDir(id))
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	f, st, err := openRegular(root, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	off := max(0, st.Size()-int64(n))
	// The file may grow or shrink between Stat and the read: read what is there, at most n.
	tail, err = io.ReadAll(io.NewSectionReader(f, off, int64(n)))
	if err != nil {
		return nil, false, err
	}
	return tail, off > 0, nil
}
