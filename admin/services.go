package admin

import (
	"context"
	"net/http"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Services reads and replaces the services sandbox-init keeps running in a sandbox.
type Services interface {
	SetServices(ctx context.Context, id string, services []store.Service) (store.Sandbox, error)
	Services(ctx context.Context, id string) ([]lifecycle.ServiceState, error)
}

// imageService is the name sandbox-init gives the image's own command (its ENTRYPOINT and
// CMD) when it runs it beside the declared services. lifecycle refuses it as a declared
// name, so a service called this is always the image's.
const imageService = "main"

// imageServiceNote explains the one service nobody declared. Without it the list showed
// {"name":"main","cmd":null}, which told nobody anything (issue 10).
const imageServiceNote = "the image's own command (its ENTRYPOINT and CMD), which sandbox-init runs " +
	"and restarts like the declared services; PUT .../services does not change it"

// serviceView is a service as the API shows it. Source is "declared" (the create body or
// PUT .../services) or "image"; the image's service has no cmd of ours to show.
type serviceView struct {
	Name      string                 `json:"name"`
	Source    string                 `json:"source"`
	Note      string                 `json:"note,omitempty"`
	Cmd       []string               `json:"cmd,omitempty"`
	Cwd       string                 `json:"cwd,omitempty"`
	EnvKeys   []string               `json:"env_keys,omitempty"` // names only: values are write-only (issue 12)
	Port      int                    `json:"port,omitempty"`
	State     string                 `json:"state"`
	PID       int                    `json:"pid,omitempty"`
	Restarts  int                    `json:"restarts"`
	StartedAt string                 `json:"started_at,omitempty"`
	LastExit  *lifecycle.ServiceExit `json:"last_exit,omitempty"`
	Error     string                 `json:"error,omitempty"`
}

func viewService(st lifecycle.ServiceState) serviceView {
	v := serviceView{Name: st.Name, Source: "declared", Cmd: st.Cmd, Cwd: st.Cwd, EnvKeys: envKeys(st.Env), Port: st.Port,
		State: st.State, PID: st.PID, Restarts: st.Restarts, StartedAt: st.StartedAt, LastExit: st.LastExit, Error: st.Error}
	if st.Name == imageService {
		v.Source, v.Note = "image", imageServiceNote
	}
	return v
}

// getServices shows each service with its state, restarts and last exit.
func (s *Server) getServices(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	list, err := s.services.Services(r.Context(), id)
	if err != nil {
		return err
	}
	views := make([]serviceView, len(list))
	for i, st := range list {
		views[i] = viewService(st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": views})
	return nil
}

// putServices replaces the services, applied live without restarting the container.
func (s *Server) putServices(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b struct {
		Services []store.Service `json:"services"`
	}
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if b.Services == nil {
		b.Services = []store.Service{}
	}
	sb, err := s.services.SetServices(r.Context(), id, b.Services)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.services", id, "")
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}
