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

type serviceView struct {
	store.Service
	State     string                 `json:"state"`
	PID       int                    `json:"pid,omitempty"`
	Restarts  int                    `json:"restarts"`
	StartedAt string                 `json:"started_at,omitempty"`
	LastExit  *lifecycle.ServiceExit `json:"last_exit,omitempty"`
	Error     string                 `json:"error,omitempty"`
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
		views[i] = serviceView{Service: st.Service, State: st.State, PID: st.PID, Restarts: st.Restarts,
			StartedAt: st.StartedAt, LastExit: st.LastExit, Error: st.Error}
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
