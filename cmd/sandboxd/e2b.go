package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/admin/e2b"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
	"github.com/sandboxd/sandboxd/wake"
)

// newE2B makes the E2B listener's server (SANDBOXD_E2B_BIND): E2B's API and envd over the
// manager, taking the admin API's tokens as API keys.
func newE2B(cfg *config, mgr *lifecycle.Manager, waker *wake.Waker, keys *apikey.Keys, db *store.DB, log *slog.Logger) (*e2b.Server, error) {
	key, err := e2b.LoadKey(filepath.Join(cfg.DataDir, "e2b.key"))
	if err != nil {
		return nil, err
	}
	srv := e2b.New(mgr, waker, pauser{mgr, waker}, tokenAuth{keys}, key, log)
	srv.Domain = "preview." + cfg.PreviewDomain
	srv.Audit = db
	// Without tokens any X-API-Key acts as the operator, so a loopback listener must refuse
	// a DNS-rebound Host as the admin API does (its LoopbackOnly is set the same way).
	srv.LoopbackOnly = len(cfg.Tokens) == 0 && loopbackBind(cfg.E2BBind)
	return srv, nil
}

// pauser is E2B's pause and resume: the cgroup freezer (issue 14), so a resumed sandbox
// has its processes and memory; resume goes through the waker, which unpauses a paused
// sandbox and starts one stopped since (stop_after, memory pressure) with admission.
type pauser struct {
	m *lifecycle.Manager
	w *wake.Waker
}

func (p pauser) Pause(ctx context.Context, id string) error { return p.m.Pause(ctx, id) }

func (p pauser) Resume(ctx context.Context, id string) (bool, error) {
	if _, ok := p.m.Running(id); ok {
		return false, nil
	}
	if _, err := p.w.Wake(ctx, id, 0); err != nil {
		return false, err
	}
	return true, nil
}

// tokenAuth takes the admin API's tokens, with their tenants, as E2B API keys.
type tokenAuth struct{ keys *apikey.Keys }

func (a tokenAuth) Authenticate(ctx context.Context, secret string) (e2b.Principal, error) {
	p, err := a.keys.Authenticate(ctx, secret)
	if errors.Is(err, apikey.ErrUnknown) {
		if !a.keys.Required() {
			// No tokens set: like the admin API, the listener serves whoever reaches it
			// (loopback, or auth disabled) as the operator. The SDKs always send some key.
			return e2b.Principal{Actor: "operator"}, nil
		}
		return e2b.Principal{}, e2b.ErrUnknownKey
	}
	return e2b.Principal{Actor: p.Name, Tenant: p.Tenant}, err
}

var (
	_ e2b.Sandboxes = (*lifecycle.Manager)(nil)
	_ e2b.Pauser    = pauser{}
	_ e2b.Pauser    = (*lifecycle.Manager)(nil) // the methods the adapter was promised
)

// addrOf is a listener's address for the log, "" for none.
func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
