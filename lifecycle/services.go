package lifecycle

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// ServiceState is a service as sandbox-init reports it.
type ServiceState struct {
	store.Service
	State     string // starting, running, backoff, stopped; "stopped" when the sandbox is not running
	PID       int
	Restarts  int
	StartedAt string
	LastExit  *ServiceExit
	Error     string
}

// ServiceExit is how a service's process last ended, as the API shows it.
type ServiceExit struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
	At     string `json:"at"`
}

// SetServices replaces a sandbox's services and applies them live: sandbox-init is told to
// reload (SIGHUP), so unchanged services keep running and the container does not restart.
// Ports of new services are declared too, so their preview URLs answer.
func (m *Manager) SetServices(ctx context.Context, id string, services []store.Service) (store.Sandbox, error) {
	if err := validServices(services); err != nil {
		return store.Sandbox{}, err
	}
	if !ValidID(id) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	if m.cfg.InitPath == "" {
		return store.Sandbox{}, errorf(CodeInvalid, "services need sandbox-init (SANDBOXD_INIT_PATH)")
	}
	ctx, unlock, err := m.lockDetached(ctx, id)
	if err != nil {
		return store.Sandbox{}, err
	}
	defer unlock()
	sb, ok := m.cached(id)
	if !ok {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	ports, err := normalizePorts(nil, append(portServices(sb.Ports), services...))
	if err != nil {
		return store.Sandbox{}, err
	}
	if err := m.db.SetServices(ctx, id, services, ports, m.now()); err != nil {
		return store.Sandbox{}, internal(err, "record services of %s", id)
	}
	sb.Services, sb.Ports, sb.UpdatedAt = services, ports, m.now()
	m.remember(sb)
	if err := m.writeConfigFromStore(ctx, sb); err != nil {
		// The row holds the change; the next boot writes the config again.
		m.log.Warn("save the sandbox config", "sandbox", id, "err", err)
	}
	if err := m.writeServices(sb); err != nil {
		return sb, err
	}
	if sb.Status == store.StatusRunning {
		cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
		defer cancel()
		if err := m.docker.ContainerKill(cctx, sb.ContainerID, "HUP"); err != nil {
			// sandbox-init also polls the file, so the change still lands within a second.
			m.log.Warn("signal sandbox-init to reload", "sandbox", id, "err", err)
		}
	}
	m.overlay(&sb)
	return sb, nil
}

// portServices turns declared ports into port-only entries for normalizePorts.
func portServices(ports []int) []store.Service {
	out := make([]store.Service, len(ports))
	for i, p := range ports {
		out[i].Port = p
	}
	return out
}

// Services returns a sandbox's declared services, and the image's own command as "main",
// with their state as sandbox-init last reported it.
func (m *Manager) Services(ctx context.Context, id string) ([]ServiceState, error) {
	sb, ok := m.cached(id)
	if !ok || !ValidID(id) {
		return nil, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	out := make([]ServiceState, 0, len(sb.Services)+1)
	for _, s := range sb.Services {
		out = append(out, ServiceState{Service: s, State: "stopped"})
	}
	if !alive(sb.Status) { // a paused sandbox's services are frozen where they were
		return out, nil
	}
	st, err := m.readState(id)
	if err != nil {
		m.log.Warn("read sandbox-init state", "sandbox", id, "err", err)
		return out, nil
	}
	for _, s := range st.Services {
		i := slices.IndexFunc(out, func(o ServiceState) bool { return o.Name == s.Name })
		if i < 0 {
			if s.Name != initproto.MainService {
				continue // gone from the config; sandbox-init is stopping it
			}
			out = append(out, ServiceState{Service: store.Service{Name: initproto.MainService, Port: s.Port}})
			i = len(out) - 1
		}
		o := &out[i]
		o.State, o.PID, o.Restarts, o.StartedAt, o.LastExit, o.Error = s.State, s.PID, s.Restarts, timestamp(s.StartedAt), serviceExit(s.LastExit), s.Error
	}
	return out, nil
}

// timestamp is t as the API shows it: RFC 3339 with nanoseconds, "" when unset.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func serviceExit(e *initproto.Exit) *ServiceExit {
	if e == nil {
		return nil
	}
	return &ServiceExit{Code: e.Code, Signal: e.Signal, At: timestamp(e.At)}
}

// readState reads sandbox-init's state file through os.Root: the workspace belongs to the
// sandbox, which may have put a symlink anywhere in it.
func (m *Manager) readState(id string) (initproto.State, error) {
	root, err := os.OpenRoot(m.workspaceDir(id))
	if err != nil {
		return initproto.State{}, err
	}
	defer root.Close()
	f, _, err := openRegular(root, initproto.StateFile) // a FIFO there must not hang us
	if errors.Is(err, fs.ErrNotExist) {
		return initproto.State{}, nil
	}
	if err != nil {
		return initproto.State{}, err
	}
	defer f.Close()
	return initproto.DecodeState(f)
}
