package lifecycle

import (
	"context"
	"errors"

	"github.com/sandboxd/sandboxd/store"
)

// Get returns a sandbox as stored, with its activity from memory. It makes no Docker call.
func (m *Manager) Get(ctx context.Context, id string) (store.Sandbox, error) {
	if !ValidID(id) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	sb, err := m.db.GetSandbox(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return sb, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if err != nil {
		return sb, internal(err, "read sandbox %s", id)
	}
	m.overlay(&sb)
	return sb, nil
}

// List returns sandboxes, filtered and paged as o says.
func (m *Manager) List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error) {
	list, err := m.db.ListSandboxes(ctx, o)
	if err != nil {
		return nil, internal(err, "list sandboxes")
	}
	for i := range list {
		m.overlay(&list[i])
	}
	return list, nil
}

func (m *Manager) overlay(sb *store.Sandbox) {
	sb.Previews.Access = m.previewAccess(*sb) // a sandbox that names none shows the default it follows
	if t := m.lastActive(sb.ID); t.After(sb.LastActiveAt) {
		sb.LastActiveAt = t
	}
	sb.Disk = m.diskView(*sb)
}

// Ping checks the database and the engine, for readiness. A database file removed or
// replaced under the running daemon fails it (issue 11): queries go on answering from the
// file still open, and every write from then on is lost.
func (m *Manager) Ping(ctx context.Context) error {
	if err := m.db.Ping(ctx); err != nil {
		return internal(err, "database")
	}
	if err := m.db.CheckFile(); err != nil {
		return internal(err, "database")
	}
	if _, err := m.docker.Ping(ctx); err != nil {
		return internal(err, "docker engine")
	}
	return nil
}
