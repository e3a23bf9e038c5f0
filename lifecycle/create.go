package lifecycle

import (
	"context"
	"errors"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/internal/previewtoken"
	"github.com/sandboxd/sandboxd/store"
)

// Create validates req, records the sandbox, seeds its workspace and starts its container.
// Bad input changes nothing. A failure after the row exists removes what was made, so a
// failed create leaves no row, container or new workspace behind; a crash in between is
// resolved by reconcile at the next boot.
//
// With From or Template (issue 18) the sandbox starts from a snapshot: its workspace is a
// copy of the snapshot's, and its config the snapshot's, which the request's own fields
// override (fork.go).
func (m *Manager) Create(ctx context.Context, req CreateRequest) (store.Sandbox, error) {
	if req.From != "" || req.Template != "" {
		return m.createFrom(ctx, req)
	}
	if err := m.normalize(&req); err != nil {
		return store.Sandbox{}, err
	}
	if req.ID == "" {
		req.ID = newID(req.Tenant, req.BareID)
	}
	return m.create(ctx, req, "")
}

// create makes the sandbox req describes, normalized and with its id. With stage, the
// workspace is that tree, moved into place (a snapshot's copy, issue 18); the id must then
// have no workspace yet.
func (m *Manager) create(ctx context.Context, req CreateRequest, stage string) (store.Sandbox, error) {
	// A create starts the sandbox: it takes one of its tenant's running slots.
	release, err := m.admitRunning(req.ID, req.Tenant)
	if err != nil {
		return store.Sandbox{}, err
	}
	defer release()
	img, err := m.inspectImage(ctx, req.Image)
	if err != nil {
		return store.Sandbox{}, err
	}
	// The caller leaving must not leave a half-made sandbox: once the lock is held, finish
	// or undo regardless.
	key, err := previewtoken.NewKey()
	if err != nil {
		return store.Sandbox{}, internal(err, "make a preview key")
	}
	began := time.Now()
	ctx, unlock, err := m.lockDetached(ctx, req.ID)
	if err != nil {
		return store.Sandbox{}, err
	}
	defer unlock()

	// Before a uid is assigned: an existing sandbox still on uid 1000 must not get one
	// from a create that fails.
	if _, ok := m.cached(req.ID); ok {
		return store.Sandbox{}, errorf(CodeConflict, "sandbox %s already exists", req.ID)
	}
	if stage != "" && m.WorkspaceExists(req.ID) {
		return store.Sandbox{}, keptWorkspace(req.ID)
	}
	uid, err := m.assignUID(ctx, req.ID)
	if err != nil {
		return store.Sandbox{}, err
	}
	now := m.now()
	sb := store.Sandbox{
		ID: req.ID, Status: store.StatusCreating, Image: req.Image, Ports: req.Ports,
		Labels: req.Labels, Services: req.Services, MemoryBytes: req.MemoryBytes, NanoCPUs: req.NanoCPUs,
		IdleTimeout: req.IdleTimeout, IdlePolicy: req.IdlePolicy, HostHeader: req.HostHeader,
		CreatedAt: now, UpdatedAt: now, LastActiveAt: now,
		Tenant:   req.Tenant,
		Previews: req.Previews, PreviewKey: key,
		DiskBytes: req.DiskBytes, UID: uid,
		WakeOn: req.WakeOn, StopAfter: req.StopAfter,
		Egress: req.Egress, EgressAllow: req.Allow, // issue 15
	}
	if sb.Labels == nil {
		sb.Labels = map[string]string{}
	}
	for k := range req.Env {
		sb.EnvKeys = append(sb.EnvKeys, k)
	}
	sort.Strings(sb.EnvKeys)
	err = m.db.CreateSandboxLimited(ctx, &sb, req.Env, store.TenantLimits{MaxSandboxes: m.cfg.TenantMaxSandboxes})
	if errors.Is(err, store.ErrConflict) {
		return store.Sandbox{}, errorf(CodeConflict, "sandbox %s already exists", req.ID)
	}
	if lerr := tenantLimitError(err); lerr != nil {
		return store.Sandbox{}, lerr
	}
	if err != nil {
		return store.Sandbox{}, internal(err, "record sandbox")
	}
	m.remember(sb)
	m.hook("create.recorded")

	createdWorkspace := false
	cid := ""
	ready := func() error { return nil } // the workspace made ready beside the start
	fail := func(err error) (store.Sandbox, error) {
		ready()
		m.undoCreate(ctx, sb.ID, cid, createdWorkspace)
		return store.Sandbox{}, err
	}
	if stage != "" {
		// The copy becomes the workspace; ensureWorkspace then gives it to this sandbox's
		// uid (it belonged to the source's) and applies this sandbox's quota.
		if err := os.Rename(stage, m.workspaceDir(sb.ID)); err != nil {
			return fail(internal(err, "move the copied workspace of %s into place", sb.ID))
		}
		createdWorkspace = true
	}
	// The config before the workspace is made ready: its fsync commits what the filesystem
	// holds dirty, and on btrfs after a copy's reown (in ensureWorkspace) that was 50,000
	// changed inodes, half a second of a fork's create (issue 18). Here it commits the
	// copy's few blocks and its move into place; the reown's are written back later. The
	// hold is written before the reown begins, and btrfs commits in order: a crash leaves
	// the hold wherever it leaves a reown cut short, and the next boot or start finishes
	// it (hold.go).
	if err := m.writeConfig(sb, req.Env); err != nil {
		return fail(err)
	}
	if from, foreign := foreignOwner(m.workspaceDir(sb.ID), uidOf(sb)); stage != "" && foreign {
		// A btrfs snapshot's copy, still its source's: it is given to this sandbox's uid
		// while the container starts, held (hold.go).
		if err := m.hold(sb, from); err != nil {
			return fail(err)
		}
		done := make(chan error, 1)
		go func(sb store.Sandbox) {
			m.hook("create.prepare")
			_, err := m.ensureWorkspace(sb)
			done <- err
		}(sb)
		ready = sync.OnceValue(func() error { return <-done })
	} else {
		created, err := m.ensureWorkspace(sb)
		createdWorkspace = createdWorkspace || created
		if err != nil {
			return fail(err)
		}
	}
	if err := m.writeServices(sb); err != nil {
		return fail(err)
	}
	if cid, err = m.createContainer(ctx, sb, &img); err != nil {
		return fail(err)
	}
	m.hook("create.container")
	ip, err := m.startContainer(ctx, cid)
	if err != nil {
		return fail(err)
	}
	if err := ready(); err != nil {
		return fail(err)
	}
	if err := m.releaseHold(sb.ID); err != nil {
		return fail(err)
	}
	sb, err = m.setRuntime(ctx, sb, store.Runtime{Status: store.StatusRunning, ContainerID: cid, IP: ip})
	if err != nil {
		return fail(err)
	}
	m.touch(sb.ID)
	if m.Observe.Timed != nil {
		m.Observe.Timed("create", time.Since(began))
	}
	m.overlay(&sb)
	return sb, nil
}

func (m *Manager) undoCreate(ctx context.Context, id, cid string, createdWorkspace bool) {
	if cid != "" {
		if err := m.removeContainer(ctx, cid); err != nil {
			m.log.Error("undo create: remove container", "sandbox", id, "err", err)
		}
	}
	m.removeConfig(id)
	if err := m.db.DeleteSandbox(ctx, id); err != nil {
		m.log.Error("undo create: delete row", "sandbox", id, "err", err)
	}
	if createdWorkspace {
		if _, err := m.removeWorkspace(id); err != nil {
			m.log.Error("undo create: remove workspace", "sandbox", id, "err", err)
		}
		// A new id's uid goes back to the range; one that kept a workspace keeps its uid.
		if err := m.db.ReleaseUID(ctx, id); err != nil {
			m.log.Error("undo create: free uid", "sandbox", id, "err", err)
		}
	}
	m.removeRunDir(id)
	m.forget(id)
}
