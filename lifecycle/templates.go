package lifecycle

import (
	"context"
	"errors"
	"os"
	"regexp"

	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Templates (issue 18) are snapshots an admin publishes under a name, for every tenant to
// create sandboxes from ("template":"vite-react"). Publishing copies the snapshot's tree
// (copy-on-write where it can), so a template outlives the sandbox and snapshot it came
// from. Its config comes along, env values included: they reach every sandbox made from
// it, so publish a snapshot without secrets.

var templateNamePattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

// ValidTemplateName reports whether name is a well-formed template name.
func ValidTemplateName(name string) bool { return templateNamePattern.MatchString(name) }

// PublishTemplate makes a template named name of snapshot snapID (of any sandbox: only
// admins call it). A name that is taken is a conflict.
func (m *Manager) PublishTemplate(ctx context.Context, name, snapID string) (store.Snapshot, error) {
	if !ValidTemplateName(name) {
		return store.Snapshot{}, errorf(CodeInvalid, "name %q is not a template name: use 1-64 lowercase letters, digits and inner dashes", name)
	}
	if !ValidSnapshotID(snapID) {
		return store.Snapshot{}, errorf(CodeNotFound, "snapshot %q not found", snapID)
	}
	src, err := m.db.GetSnapshot(ctx, snapID)
	if errors.Is(err, store.ErrNotFound) || err == nil && src.Kind == store.SnapshotTemplate {
		return store.Snapshot{}, errorf(CodeNotFound, "snapshot %q not found", snapID)
	}
	if err != nil {
		return store.Snapshot{}, internal(err, "read snapshot %s", snapID)
	}
	if _, err := m.db.Template(ctx, name); err == nil {
		return store.Snapshot{}, templateTaken(name)
	}
	sec, err := m.db.SnapshotSecrets(ctx, snapID)
	if err != nil {
		return store.Snapshot{}, internal(err, "read snapshot %s", snapID)
	}
	t := store.Snapshot{
		ID: newSnapshotID(), Kind: store.SnapshotTemplate, Name: name, Source: src.ID,
		Config: src.Config, CreatedAt: m.now(),
	}
	if err := os.MkdirAll(m.templatesDir(), 0o700); err != nil {
		return store.Snapshot{}, internal(err, "create the templates dir")
	}
	dst := m.snapshotDir(t)
	// The source sandbox's lock keeps the snapshot from being deleted under the copy.
	err = m.locked(ctx, src.SandboxID, func(ctx context.Context) error {
		if _, err := os.Lstat(m.snapshotDir(src)); err != nil {
			return errorf(CodeNotFound, "snapshot %q not found", snapID)
		}
		res, err := snapshot.Copy(ctx, m.snapshotDir(src), dst, snapshot.Options{})
		t.Method = string(res.Method)
		return copyError(err, "copy snapshot %s", snapID)
	})
	if err != nil {
		return store.Snapshot{}, err
	}
	if err := m.db.CreateSnapshot(ctx, t, sec, 0); err != nil {
		m.removeTree(dst)
		if errors.Is(err, store.ErrConflict) {
			return store.Snapshot{}, templateTaken(name)
		}
		return store.Snapshot{}, internal(err, "record template %s", name)
	}
	m.log.Info("template published", "template", name, "snapshot", snapID, "method", t.Method)
	return t, nil
}

func templateTaken(name string) error {
	return errorf(CodeConflict, "template %s already exists: delete it first, or choose another name", name)
}

// Templates lists every template, by name.
func (m *Manager) Templates(ctx context.Context) ([]store.Snapshot, error) {
	list, err := m.db.ListTemplates(ctx)
	if err != nil {
		return nil, internal(err, "list templates")
	}
	return list, nil
}

// DeleteTemplate removes a template; sandboxes made from it keep their copies.
func (m *Manager) DeleteTemplate(ctx context.Context, name string) error {
	if !ValidTemplateName(name) {
		return errorf(CodeNotFound, "template %q not found", name)
	}
	t, err := m.db.Template(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(CodeNotFound, "template %q not found", name)
	}
	if err != nil {
		return internal(err, "read template %s", name)
	}
	// The template's key: a create copying it finishes first.
	ctx, unlock, err := m.lockDetached(ctx, "template:"+t.ID)
	if err != nil {
		return err
	}
	defer unlock()
	return m.dropSnapshot(ctx, t)
}
