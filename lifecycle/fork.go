package lifecycle

import (
	"context"
	"errors"
	"maps"
	"os"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Sandboxes made from a snapshot, a template or another sandbox (issue 18). Each gets a
// copy of the tree (package snapshot: copy-on-write where the filesystem can), made first
// in a temporary name beside the workspaces while only the source is locked, then moved
// into place by the create, which holds only the new id's lock: no operation ever holds
// two sandboxes' locks. The copy is the new sandbox's own: a change on either side never
// shows on the other.

// createFrom is Create with req.From or req.Template.
func (m *Manager) createFrom(ctx context.Context, req CreateRequest) (store.Sandbox, error) {
	s, err := m.createSource(ctx, req)
	if err != nil {
		return store.Sandbox{}, err
	}
	sec, err := m.db.SnapshotSecrets(ctx, s.ID)
	if err != nil {
		return store.Sandbox{}, internal(err, "read snapshot %s", s.ID)
	}
	applySnapshot(&req, s.Config, sec)
	if err := m.normalize(&req); err != nil {
		return store.Sandbox{}, err
	}
	if req.ID == "" {
		req.ID = newID(req.Tenant, req.BareID)
	}
	if err := m.idFree(req.ID); err != nil {
		return store.Sandbox{}, err
	}
	uid, err := m.reserveUID(ctx, req.ID)
	if err != nil {
		return store.Sandbox{}, err
	}
	// The source's lock keeps its snapshot from being deleted under the copy; a template's
	// key keeps its own.
	key := s.SandboxID
	if s.Kind == store.SnapshotTemplate {
		key = "template:" + s.ID
	}
	stage, err := m.stageCopy(ctx, key, req.ID, func(ctx context.Context, dst string) error {
		src := m.snapshotDir(s)
		if _, err := os.Lstat(src); err != nil {
			return errorf(CodeNotFound, "snapshot %s is gone", s.ID)
		}
		// Written as the new sandbox's uid's: its create finds nothing to reown (but
		// after a btrfs snapshot, which keeps the owners).
		_, err := snapshot.Copy(ctx, src, dst, snapshot.Options{Owner: copyOwner(src, uid)})
		return copyError(err, "copy snapshot %s", s.ID)
	})
	if err != nil {
		m.unreserveUID(ctx, req.ID)
		return store.Sandbox{}, err
	}
	defer m.removeTree(stage) // moved into place unless the create failed
	sb, err := m.create(ctx, req, stage)
	if err != nil {
		m.unreserveUID(ctx, req.ID)
	}
	return sb, err
}

// createSource finds the snapshot a create names. Another tenant's snapshot is not found,
// in the same words as one that does not exist; templates are everyone's.
func (m *Manager) createSource(ctx context.Context, req CreateRequest) (store.Snapshot, error) {
	if req.From != "" && req.Template != "" {
		return store.Snapshot{}, errorf(CodeInvalid, "give from or template, not both")
	}
	if req.Template != "" {
		if !ValidTemplateName(req.Template) {
			return store.Snapshot{}, errorf(CodeInvalid, "template %q is not a template name: 1-64 lowercase letters, digits and inner dashes", req.Template)
		}
		s, err := m.db.Template(ctx, req.Template)
		if errors.Is(err, store.ErrNotFound) {
			return s, errorf(CodeNotFound, "template %q not found", req.Template)
		}
		if err != nil {
			return s, internal(err, "read template %s", req.Template)
		}
		return s, nil
	}
	notFound := errorf(CodeNotFound, "snapshot %q not found", req.From)
	if !ValidSnapshotID(req.From) {
		return store.Snapshot{}, notFound
	}
	s, err := m.db.GetSnapshot(ctx, req.From)
	if errors.Is(err, store.ErrNotFound) {
		return s, notFound
	}
	if err != nil {
		return s, internal(err, "read snapshot %s", req.From)
	}
	// An admin (no tenant) may start from any snapshot; a tenant from its own.
	if s.Kind != store.SnapshotTemplate && req.Tenant != "" && s.Tenant != req.Tenant {
		return store.Snapshot{}, notFound
	}
	return s, nil
}

// applySnapshot fills what req leaves out from a snapshot's config; env and labels are
// merged, req's values winning.
func applySnapshot(req *CreateRequest, c store.SnapshotConfig, sec store.SnapshotSecrets) {
	if req.Image == "" {
		req.Image = c.Image
	}
	if req.Ports == nil {
		req.Ports = append([]int(nil), c.Ports...)
	}
	if req.Services == nil {
		for _, s := range c.Services {
			if env := sec.ServiceEnv[s.Name]; len(env) > 0 {
				s.Env = maps.Clone(env)
			}
			req.Services = append(req.Services, s)
		}
	}
	req.Env = merged(sec.Env, req.Env)
	req.Labels = merged(c.Labels, req.Labels)
	if req.MemoryBytes == 0 {
		req.MemoryBytes = c.MemoryBytes
	}
	if req.NanoCPUs == 0 {
		req.NanoCPUs = c.NanoCPUs
	}
	if req.IdleTimeout == 0 {
		req.IdleTimeout = time.Duration(c.IdleTimeoutMS) * time.Millisecond
	}
	if req.IdlePolicy == "" {
		req.IdlePolicy = c.IdlePolicy
	}
	if req.HostHeader == "" {
		req.HostHeader = c.HostHeader
	}
	if req.DiskBytes == 0 {
		req.DiskBytes = c.DiskBytes
	}
	if req.WakeOn == "" {
		req.WakeOn = c.WakeOn
	}
	if req.StopAfter == 0 {
		req.StopAfter = time.Duration(c.StopAfterMS) * time.Millisecond
	}
	// The egress policy comes along whole: a copy of a sandbox kept off the network
	// stays off it.
	if req.Egress == "" && req.Allow == nil {
		req.Egress, req.Allow = c.Egress, append([]string(nil), c.EgressAllow...)
	}
	if req.Previews.Access == "" {
		req.Previews.Access = c.PreviewAccess // a private sandbox's copies stay private
	}
}

func merged(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return over
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

// idFree refuses an id that is taken, or whose workspace a deleted sandbox left (a copy
// never lands on top of someone's files).
func (m *Manager) idFree(id string) error {
	if _, ok := m.cached(id); ok {
		return errorf(CodeConflict, "sandbox %s already exists", id)
	}
	if m.WorkspaceExists(id) {
		return keptWorkspace(id)
	}
	return nil
}

func keptWorkspace(id string) error {
	return errorf(CodeConflict, "id %s has the workspace of a deleted sandbox: purge it first, or choose another id", id)
}

// stageCopy runs copy into a fresh temporary name beside the workspaces, holding key's
// lock, and returns that name.
func (m *Manager) stageCopy(ctx context.Context, key, id string, copy func(ctx context.Context, dst string) error) (string, error) {
	if err := os.MkdirAll(m.workspacesDir(), 0o700); err != nil {
		return "", internal(err, "create workspaces dir")
	}
	stage, err := snapshot.TempPath(m.workspaceDir(id))
	if err != nil {
		return "", internal(err, "name a copy")
	}
	ctx, unlock, err := m.lockDetached(ctx, key)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := copy(ctx, stage); err != nil {
		return "", err
	}
	return stage, nil
}

// Fork copies a running or stopped sandbox into a new one, in one call: its workspace (a
// copy taken while its processes are frozen) and its config, env included. The fork
// belongs to the source's tenant and starts at once with its services. forkID "" makes an
// id.
func (m *Manager) Fork(ctx context.Context, id, forkID string) (store.Sandbox, error) {
	src, ok := m.cached(id)
	if !ok || !ValidID(id) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	req := CreateRequest{ID: forkID, Tenant: src.Tenant}
	if forkID != "" {
		if !ValidID(forkID) {
			return store.Sandbox{}, errorf(CodeInvalid, "id %q is invalid: use 1-40 lowercase letters, digits and inner dashes", forkID)
		}
		if err := checkTenantID(&req); err != nil {
			return store.Sandbox{}, err
		}
	} else {
		req.ID = newID(src.Tenant, false)
	}
	if err := m.idFree(req.ID); err != nil {
		return store.Sandbox{}, err
	}
	uid, err := m.reserveUID(ctx, req.ID)
	if err != nil {
		return store.Sandbox{}, err
	}
	var cfg store.SnapshotConfig
	var sec store.SnapshotSecrets
	var method snapshot.Method
	began := time.Now()
	stage, err := m.stageCopy(ctx, id, req.ID, func(ctx context.Context, dst string) error {
		sb, ok := m.cached(id)
		if !ok {
			return errorf(CodeNotFound, "sandbox %s not found", id)
		}
		env, err := m.db.SandboxEnv(ctx, id)
		if err != nil {
			return internal(err, "read env of %s", id)
		}
		cfg, sec = snapshotConfig(sb, env)
		res, err := m.copyWorkspace(ctx, sb, dst, copyOwner(m.workspaceDir(sb.ID), uid))
		method = res.Method
		return err
	})
	if err != nil {
		m.unreserveUID(ctx, req.ID)
		return store.Sandbox{}, err
	}
	copied := time.Since(began)
	defer m.removeTree(stage)
	applySnapshot(&req, cfg, sec)
	if err := m.normalize(&req); err != nil {
		m.unreserveUID(ctx, req.ID)
		return store.Sandbox{}, err
	}
	sb, err := m.create(ctx, req, stage)
	if err != nil {
		m.unreserveUID(ctx, req.ID)
		return sb, err
	}
	// The copy was written as the fork's uid's, so the create's part is starting the
	// container (and, after a btrfs snapshot, which keeps the owners, giving the copy to
	// the fork's uid).
	m.log.Info("sandbox forked", "sandbox", sb.ID, "from", id, "method", method,
		"copy_ms", copied.Milliseconds(), "create_ms", (time.Since(began) - copied).Milliseconds())
	return sb, nil
}
