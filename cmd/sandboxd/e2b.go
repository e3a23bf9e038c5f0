package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/sandboxd/sandboxd/admin"
	"github.com/sandboxd/sandboxd/admin/e2b"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
	"github.com/sandboxd/sandboxd/wake"
)

// newE2B makes the E2B listener's server (SANDBOXD_E2B_BIND): E2B's API and envd over the
// manager, taking the admin API's tokens as API keys.
func newE2B(cfg *config, mgr *lifecycle.Manager, waker *wake.Waker, api *admin.Server, db *store.DB, log *slog.Logger) (*e2b.Server, error) {
	key, err := e2b.LoadKey(filepath.Join(cfg.DataDir, "e2b.key"))
	if err != nil {
		return nil, err
	}
	srv := e2b.New(mgr, waker, stopPauser{mgr, waker}, tokenAuth{api}, key, log)
	srv.Domain = "preview." + cfg.PreviewDomain
	srv.Audit = db
	return srv, nil
}

// stopPauser pauses by stopping and resumes by starting, through the waker's admission.
// TODO(issue 14): the real pause (the cgroup freezer) once lifecycle has it.
type stopPauser struct {
	m *lifecycle.Manager
	w *wake.Waker
}

func (p stopPauser) Pause(ctx context.Context, id string) error { return p.m.Stop(ctx, id) }

func (p stopPauser) Resume(ctx context.Context, id string) (bool, error) {
	if _, ok := p.m.Running(id); ok {
		return false, nil
	}
	if _, err := p.w.Wake(ctx, id, 0); err != nil {
		return false, err
	}
	return true, nil
}

// tokenAuth takes the admin API's tokens as E2B API keys.
// TODO(issue 13): the token's tenant, once tokens have one.
type tokenAuth struct{ api *admin.Server }

func (a tokenAuth) Authenticate(secret string) (e2b.Principal, bool) {
	name, ok := a.api.Authenticate(secret)
	return e2b.Principal{Actor: name}, ok
}

var (
	_ e2b.Sandboxes = (*lifecycle.Manager)(nil)
	_ e2b.Pauser    = stopPauser{}
)

// addrOf is a listener's address for the log, "" for none.
func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
