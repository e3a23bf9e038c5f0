package lifecycle

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Every sandbox runs as a uid of its own from Config.UIDFirst-UIDLast, a range no host
// account uses (issue 12: every workspace belonged to host uid 1000, the first human
// account on a typical host). The uid is allocated at create and stored apart from the
// sandbox's row, so it survives delete and re-create with the workspace it owns; purge
// frees it. Inside the sandbox the user is still "sandbox" (accounts.go).

// legacyUID is the uid every sandbox ran as before issue 12, and still does while its row
// has no uid of its own (until its next start) or when Config has no uid range.
const legacyUID = 1000

// uidOf is the uid sb's processes run as and its files belong to.
func uidOf(sb store.Sandbox) int {
	if sb.UID == 0 {
		return legacyUID
	}
	return sb.UID
}

// userSpec is the uid:gid of a Docker container or exec. Every sandbox's gid is its uid.
func userSpec(sb store.Sandbox) string {
	u := strconv.Itoa(uidOf(sb))
	return u + ":" + u
}

// ownUIDs reports whether sandboxes get uids of their own.
func (m *Manager) ownUIDs() bool { return m.cfg.UIDFirst > 0 }

func (m *Manager) uidInRange(uid int) bool {
	return uid >= m.cfg.UIDFirst && uid <= m.cfg.UIDLast
}

// assignUID gives a new sandbox its uid: the one its id already holds (deleted, not
// purged), or the lowest free one.
func (m *Manager) assignUID(ctx context.Context, id string) (int, error) {
	if !m.ownUIDs() {
		return 0, nil
	}
	uid, err := m.db.AssignUID(ctx, id, m.cfg.UIDFirst, m.cfg.UIDLast)
	if errors.Is(err, store.ErrNoUID) {
		return 0, errorf(CodeUnavailable, "every uid of SANDBOXD_UID_RANGE %d-%d is taken: purge deleted sandboxes, or widen the range",
			m.cfg.UIDFirst, m.cfg.UIDLast)
	}
	if err != nil {
		return 0, internal(err, "assign a uid to %s", id)
	}
	if !m.uidInRange(uid) {
		return m.moveUID(ctx, id, uid)
	}
	return uid, nil
}

// moveUID replaces a uid outside the configured range with one inside it.
func (m *Manager) moveUID(ctx context.Context, id string, old int) (int, error) {
	uid, err := m.db.ReassignUID(ctx, id, m.cfg.UIDFirst, m.cfg.UIDLast)
	if err != nil {
		return 0, internal(err, "assign a uid to %s", id)
	}
	m.log.Info("sandbox uid outside SANDBOXD_UID_RANGE replaced", "sandbox", id, "from", old, "to", uid)
	return uid, nil
}

// ensureUID moves a sandbox that runs as uid 1000 (made before issue 12), or as a uid the
// range no longer holds, to a uid of its own and re-owns its workspace; the caller holds
// its lock and the sandbox does not run. changed reports a new uid: the container, made
// for the old one, must be made again.
func (m *Manager) ensureUID(ctx context.Context, sb *store.Sandbox) (changed bool, err error) {
	if !m.ownUIDs() || sb.UID != 0 && m.uidInRange(sb.UID) {
		return false, nil
	}
	old := uidOf(*sb)
	uid, err := m.assignUID(ctx, sb.ID)
	if err != nil {
		return false, err
	}
	n, err := reown(m.workspaceDir(sb.ID), old, uid)
	if err != nil {
		return false, internal(err, "give the workspace of %s to uid %d", sb.ID, uid)
	}
	m.log.Info("sandbox moved to a uid of its own", "sandbox", sb.ID, "from_uid", old, "to_uid", uid, "files_reowned", n)
	sb.UID = uid
	m.remember(*sb)
	return true, nil
}

// reownWorkspace gives a workspace whose directory another uid owns to uid, or whose hold
// says its files came from another uid (hold.go).
func (m *Manager) reownWorkspace(id, dir string, uid int) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil // no directory at all, which fails later, plainly
	}
	from := int(st.Uid)
	if held, ok := m.heldFrom(id); ok && held >= 0 {
		from = held
	}
	if from == uid {
		return nil // its own already
	}
	began := time.Now()
	n, err := reown(dir, from, uid)
	if err != nil {
		return err
	}
	m.log.Info("workspace given to its sandbox's uid", "sandbox", id, "from_uid", from, "to_uid", uid, "files_reowned", n,
		"took_ms", time.Since(began).Milliseconds())
	return nil
}

// reown gives everything under dir that from owns (user or group) to to. The sandbox is
// not running; the walk follows no symlink (a link itself is reowned), runs on several
// workers and keeps set-id bits (issue 18: a fork of 50,000 files spent most of its time
// here, one chown after another).
func reown(dir string, from, to int) (n int, err error) {
	changed, err := snapshot.Reown(dir, from, to, snapshot.Options{})
	return int(changed), err
}

// reserveUID assigns id its uid ahead of the create that will record it (the create's
// assignUID then finds the same one), so that a copy made for it can be that uid's as it
// is written (issue 18: a second walk to reown 50,000 files took seconds). It refuses an
// id that is taken or has a kept workspace, as the create would. The uid returned is the
// one the sandbox's files will belong to (uidOf).
func (m *Manager) reserveUID(ctx context.Context, id string) (int, error) {
	ctx, unlock, err := m.lockDetached(ctx, id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if err := m.idFree(id); err != nil {
		return 0, err
	}
	uid, err := m.assignUID(ctx, id)
	if err != nil {
		return 0, err
	}
	return uidOf(store.Sandbox{UID: uid}), nil
}

// unreserveUID frees the uid reserveUID gave id when no sandbox came of it: none is
// recorded and no workspace is on disk (a create's own undo frees it otherwise).
func (m *Manager) unreserveUID(ctx context.Context, id string) {
	if !m.ownUIDs() {
		return
	}
	ctx, unlock, err := m.lockDetached(context.WithoutCancel(ctx), id)
	if err != nil {
		return
	}
	defer unlock()
	if _, ok := m.cached(id); ok || m.WorkspaceExists(id) {
		return
	}
	if err := m.db.ReleaseUID(ctx, id); err != nil {
		m.log.Error("free the uid of a create that failed", "sandbox", id, "err", err)
	}
}

// copyOwner is the owner mapping that makes a copy of the tree src that uid's as the copy
// is written: what src's top directory's owner owns becomes uid's, which is what
// reownWorkspace would otherwise do afterwards, in a second walk. Nil when there is nothing
// to map (or src cannot be read: the copy then fails on its own).
func copyOwner(src string, uid int) *snapshot.Owner {
	from, foreign := foreignOwner(src, uid)
	if !foreign {
		return nil
	}
	return &snapshot.Owner{From: from, To: uid}
}

// foreignOwner reports the owner of the directory dir when it is not uid: a copy, or the
// tree it is made from, that is still another sandbox's.
func foreignOwner(dir string, uid int) (int, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil || int(st.Uid) == uid {
		return 0, false
	}
	return int(st.Uid), true
}
