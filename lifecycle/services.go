package lifecycle

import (
	"context"

	"github.com/sandboxd/sandboxd/store"
)

// ServiceState is a service as sandbox-init reports it.
type ServiceState struct {
	store.Service
	State    string // starting, running, backoff, stopped; "" when the sandbox is not running
	PID      int
	Restarts int
	LastExit *ServiceExit
	Error    string
}

// ServiceExit is how a service's process last ended.
type ServiceExit struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
	At     string `json:"at"`
}

// SetServices replaces a sandbox's services and applies them live.
func (m *Manager) SetServices(ctx context.Context, id string, services []store.Service) (store.Sandbox, error) {
	return store.Sandbox{}, errorf(CodeInternal, "not implemented")
}

// Services returns a sandbox's services with their live state.
func (m *Manager) Services(ctx context.Context, id string) ([]ServiceState, error) {
	return nil, errorf(CodeInternal, "not implemented")
}
