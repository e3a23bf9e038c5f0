package admin

import (
	"context"
	"io"
	"net/netip"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/files"
	"github.com/sandboxd/sandboxd/store"
)

// The fakes are structs of function fields, one per method. A test sets the fields its
// routes reach; calling one left nil panics, and the trace names the method.

type fakeSandboxes struct {
	CreateFn    func(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error)
	GetFn       func(ctx context.Context, id string) (store.Sandbox, error)
	ListFn      func(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error)
	StopFn      func(ctx context.Context, id string) error
	DeleteFn    func(ctx context.Context, id string) error
	PurgeFn     func(ctx context.Context, id string) error
	KeepaliveFn func(ctx context.Context, id string, until time.Time) (store.Sandbox, error)
	ImagesFn    func(ctx context.Context) ([]lifecycle.ImageInfo, error)
	PauseFn     func(ctx context.Context, id string) error
}

func (f *fakeSandboxes) Create(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
	return f.CreateFn(ctx, req)
}
func (f *fakeSandboxes) Get(ctx context.Context, id string) (store.Sandbox, error) {
	return f.GetFn(ctx, id)
}
func (f *fakeSandboxes) List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error) {
	return f.ListFn(ctx, o)
}
func (f *fakeSandboxes) Stop(ctx context.Context, id string) error   { return f.StopFn(ctx, id) }
func (f *fakeSandboxes) Delete(ctx context.Context, id string) error { return f.DeleteFn(ctx, id) }
func (f *fakeSandboxes) Purge(ctx context.Context, id string) error  { return f.PurgeFn(ctx, id) }
func (f *fakeSandboxes) Keepalive(ctx context.Context, id string, until time.Time) (store.Sandbox, error) {
	return f.KeepaliveFn(ctx, id, until)
}
func (f *fakeSandboxes) Images(ctx context.Context) ([]lifecycle.ImageInfo, error) {
	return f.ImagesFn(ctx)
}
func (f *fakeSandboxes) Pause(ctx context.Context, id string) error { return f.PauseFn(ctx, id) }

type fakeExecs struct {
	ExecFn       func(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error)
	ExecStreamFn func(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error)
}

func (f *fakeExecs) Exec(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error) {
	return f.ExecFn(ctx, id, req)
}
func (f *fakeExecs) ExecStream(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
	return f.ExecStreamFn(ctx, id, req, stdout, stderr)
}

type fakeWorkspaces struct {
	WorkspaceFn func(ctx context.Context, id string) (*files.Workspace, error)
}

func (f *fakeWorkspaces) Workspace(ctx context.Context, id string) (*files.Workspace, error) {
	return f.WorkspaceFn(ctx, id)
}

type fakeServices struct {
	SetServicesFn func(ctx context.Context, id string, services []store.Service) (store.Sandbox, error)
	ServicesFn    func(ctx context.Context, id string) ([]lifecycle.ServiceState, error)
}

func (f *fakeServices) SetServices(ctx context.Context, id string, services []store.Service) (store.Sandbox, error) {
	return f.SetServicesFn(ctx, id, services)
}
func (f *fakeServices) Services(ctx context.Context, id string) ([]lifecycle.ServiceState, error) {
	return f.ServicesFn(ctx, id)
}

type fakeWaker struct {
	WakeFn func(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

func (f *fakeWaker) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	return f.WakeFn(ctx, id, port)
}

// Checks that the fakes still match the interfaces.
var (
	_ Sandboxes  = (*fakeSandboxes)(nil)
	_ Execs      = (*fakeExecs)(nil)
	_ Workspaces = (*fakeWorkspaces)(nil)
	_ Services   = (*fakeServices)(nil)
	_ Waker      = (*fakeWaker)(nil)
)

// running is a GetFn for which every sandbox exists and runs.
func running(ctx context.Context, id string) (store.Sandbox, error) {
	return store.Sandbox{ID: id, Status: store.StatusRunning}, nil
}

// awake is a WakeFn for a sandbox that is already up.
func awake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	return netip.AddrPort{}, nil
}
