package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Snapshots (issue 18). A snapshot holds a sandbox's workspace, byte for byte (package
// snapshot makes the copy: a btrfs subvolume snapshot, reflinks or a parallel copy), and
// its config: image, ports, services, labels, limits and env, whose values are stored
// apart and never shown. It holds no memory. The tree lives under the data dir, at
// snapshots/<sandbox>/<snapshot>, beside the workspaces, so a reflink or subvolume
// snapshot can share its blocks; templates at templates/<snapshot>.
//
// Consistency: a running sandbox's processes are frozen (the cgroup freezer, through the
// engine's pause) for the time of the copy, and thawed after; a stopped sandbox has
// nothing that writes. Frozen processes issue no syscall, so no write lands mid-copy, and
// what they wrote before is in the page cache the copy reads: the copy is the tree as of
// one instant, as a crash at that instant would have left it on disk. The files API
// replaces files by rename, so a copy sees each such file whole, old or new. The copy
// excludes the state dir (.sandboxd: sandbox-init's state and logs), which is sandboxd's,
// not the user's; a restore keeps the current one.

// DefaultSnapshotsMax is the number of snapshots a sandbox may hold when Config.SnapshotsMax
// is zero; DefaultTaskCheckpoints the task checkpoints kept.
const (
	DefaultSnapshotsMax    = 20
	DefaultTaskCheckpoints = 20
)

// snapshotExclude are the workspace's entries a snapshot leaves out: the state dir (on a
// btrfs data dir a subvolume of its own, which a subvolume snapshot shows as an empty
// directory).
var snapshotExclude = []string{stateDir}

var snapshotIDPattern = regexp.MustCompile(`^snap-[a-z0-9]{26}$`)

// ValidSnapshotID reports whether s is a well-formed snapshot id; every id is checked
// before it reaches a path or a query.
func ValidSnapshotID(s string) bool { return snapshotIDPattern.MatchString(s) }

func newSnapshotID() string { return "snap-" + strings.ToLower(ulid.Make().String()) }

// maxSnapshotName bounds a snapshot's name.
const maxSnapshotName = 128

// checkSnapshotName refuses a name that is not short, printable UTF-8 without "/": names
// show in listings and logs, and a "/" would read as a path.
func checkSnapshotName(name string) error {
	switch {
	case len(name) > maxSnapshotName:
		return errorf(CodeInvalid, "name is %d bytes; a snapshot name has at most %d", len(name), maxSnapshotName)
	case !utf8.ValidString(name):
		return errorf(CodeInvalid, "name is not valid UTF-8")
	case strings.ContainsRune(name, '/'):
		return errorf(CodeInvalid, `name %q holds "/"; a snapshot name is a label, not a path`, name)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return errorf(CodeInvalid, "name %q holds a control character (NUL, a newline...); use printable text", name)
	}
	return nil
}

func (m *Manager) snapshotsMax() int {
	if m.cfg.SnapshotsMax > 0 {
		return m.cfg.SnapshotsMax
	}
	return DefaultSnapshotsMax
}

func (m *Manager) snapshotsDir(sandboxID string) string {
	mustValid(sandboxID)
	return filepath.Join(m.cfg.DataDir, "snapshots", sandboxID)
}

func (m *Manager) templatesDir() string { return filepath.Join(m.cfg.DataDir, "templates") }

// snapshotDir is where a snapshot's tree lies.
func (m *Manager) snapshotDir(s store.Snapshot) string {
	if !ValidSnapshotID(s.ID) {
		panic("snapshot id " + s.ID + " reached a path unchecked")
	}
	if s.Kind == store.SnapshotTemplate {
		return filepath.Join(m.templatesDir(), s.ID)
	}
	return filepath.Join(m.snapshotsDir(s.SandboxID), s.ID)
}

// Snapshot takes a snapshot of a sandbox, in any state, and returns it.
func (m *Manager) Snapshot(ctx context.Context, id, name string) (store.Snapshot, error) {
	if err := checkSnapshotName(name); err != nil {
		return store.Snapshot{}, err
	}
	var s store.Snapshot
	err := m.locked(ctx, id, func(ctx context.Context) error {
		sb, ok := m.cached(id)
		if !ok {
			return errorf(CodeNotFound, "sandbox %s not found", id)
		}
		var err error
		s, err = m.takeSnapshot(ctx, sb, store.SnapshotUser, name, "")
		return err
	})
	return s, err
}

// takeSnapshot copies sb's workspace to a new snapshot of kind and records it. The caller
// holds sb's lock.
func (m *Manager) takeSnapshot(ctx context.Context, sb store.Sandbox, kind, name, taskID string) (store.Snapshot, error) {
	max := 0
	if kind == store.SnapshotUser {
		max = m.snapshotsMax()
		if err := m.checkSnapshotRoom(ctx, sb.ID, max); err != nil {
			return store.Snapshot{}, err
		}
	}
	if err := m.roomForCopy(ctx, sb, kind); err != nil {
		return store.Snapshot{}, err
	}
	env, err := m.db.SandboxEnv(ctx, sb.ID)
	if err != nil {
		return store.Snapshot{}, internal(err, "read env of %s", sb.ID)
	}
	cfg, sec := snapshotConfig(sb, env)
	s := store.Snapshot{
		ID: newSnapshotID(), Kind: kind, SandboxID: sb.ID, Tenant: sb.Tenant, Name: name, TaskID: taskID,
		Config: cfg, CreatedAt: m.now(),
	}
	dir := m.snapshotsDir(sb.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return store.Snapshot{}, internal(err, "create the snapshots dir of %s", sb.ID)
	}
	dst := m.snapshotDir(s)
	res, err := m.copyWorkspace(ctx, sb, dst, nil)
	if err != nil {
		return store.Snapshot{}, err
	}
	s.Method = string(res.Method)
	err = m.db.CreateSnapshot(ctx, s, sec, max)
	if err != nil {
		m.removeTree(dst)
		if errors.Is(err, store.ErrFull) {
			return store.Snapshot{}, snapshotsFull(sb.ID, max)
		}
		return store.Snapshot{}, internal(err, "record snapshot of %s", sb.ID)
	}
	m.log.Info("snapshot taken", "sandbox", sb.ID, "snapshot", s.ID, "kind", kind, "method", res.Method)
	return s, nil
}

// checkSnapshotRoom refuses, before any copy, a snapshot past the sandbox's limit; the
// store checks again when it records one.
func (m *Manager) checkSnapshotRoom(ctx context.Context, id string, max int) error {
	list, err := m.db.ListSnapshots(ctx, id)
	if err != nil {
		return internal(err, "list snapshots of %s", id)
	}
	n := 0
	for _, s := range list {
		if s.Kind == store.SnapshotUser {
			n++
		}
	}
	if n >= max {
		return snapshotsFull(id, max)
	}
	return nil
}

func snapshotsFull(id string, max int) error {
	return errorf(CodeLimit, "sandbox %s holds %d snapshots, the most it may: delete one first", id, max)
}

// copyWorkspace copies sb's workspace to dst, with its processes frozen meanwhile when it
// runs. A copy that saw a file change under it (the files API replacing one) is tried once
// more.
func (m *Manager) copyWorkspace(ctx context.Context, sb store.Sandbox, dst string, owner *snapshot.Owner) (snapshot.Result, error) {
	var res snapshot.Result
	opt := snapshot.Options{Exclude: snapshotExclude, Owner: owner}
	err := m.frozen(ctx, sb, func() error {
		var err error
		for try := 0; try < 2; try++ {
			res, err = snapshot.Copy(ctx, m.workspaceDir(sb.ID), dst, opt)
			if err == nil || !errors.Is(err, snapshot.ErrChanged) {
				break
			}
		}
		return err
	})
	if err != nil {
		return res, copyError(err, "copy the workspace of %s", sb.ID)
	}
	return res, nil
}

// copyError says what a tree the sandbox controls did wrong in plain words, and wraps the
// rest as internal.
func copyError(err error, format string, args ...any) error {
	var le *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		return err
	case errors.Is(err, snapshot.ErrTooDeep):
		e := internal(err, format, args...)
		e.Code, e.Message = CodeUnsupported, fmt.Sprintf("%s: its directories are nested deeper than %d levels", e.Message, snapshot.DefaultMaxDepth)
		return e
	}
	return internal(err, format, args...)
}

// snapshotConfig is what a snapshot keeps of sb's config, and its env values apart.
func snapshotConfig(sb store.Sandbox, env map[string]string) (store.SnapshotConfig, store.SnapshotSecrets) {
	sec := store.SnapshotSecrets{Env: env, ServiceEnv: map[string]map[string]string{}}
	services := make([]store.Service, len(sb.Services))
	for i, s := range sb.Services {
		if len(s.Env) > 0 {
			sec.ServiceEnv[s.Name] = s.Env
		}
		s.Env = nil
		services[i] = s
	}
	keys := append([]string(nil), sb.EnvKeys...)
	sort.Strings(keys)
	return store.SnapshotConfig{
		Image: sb.Image, Ports: sb.Ports, EnvKeys: keys, Labels: sb.Labels, Services: services,
		MemoryBytes: sb.MemoryBytes, NanoCPUs: sb.NanoCPUs, IdleTimeoutMS: sb.IdleTimeout.Milliseconds(),
		IdlePolicy: sb.IdlePolicy, HostHeader: sb.HostHeader, PreviewAccess: sb.Previews.Access,
		DiskBytes: sb.DiskBytes,
		WakeOn:    sb.WakeOn, StopAfterMS: sb.StopAfter.Milliseconds(),
		Egress: sb.Egress, EgressAllow: sb.EgressAllow,
	}, sec
}

// Snapshots lists a sandbox's snapshots and task checkpoints, newest first.
func (m *Manager) Snapshots(ctx context.Context, id string) ([]store.Snapshot, error) {
	if _, ok := m.cached(id); !ok || !ValidID(id) {
		return nil, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	list, err := m.db.ListSnapshots(ctx, id)
	if err != nil {
		return nil, internal(err, "list snapshots of %s", id)
	}
	return list, nil
}

// sandboxSnapshot returns a snapshot of sandbox id; any other (unknown, another
// sandbox's, a template) is not found.
func (m *Manager) sandboxSnapshot(ctx context.Context, id, snapID string) (store.Snapshot, error) {
	notFound := errorf(CodeNotFound, "snapshot %q not found in sandbox %s", snapID, id)
	if !ValidSnapshotID(snapID) {
		return store.Snapshot{}, notFound
	}
	s, err := m.db.GetSnapshot(ctx, snapID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (s.SandboxID != id || s.Kind == store.SnapshotTemplate) {
		return store.Snapshot{}, notFound
	}
	if err != nil {
		return store.Snapshot{}, internal(err, "read snapshot %s", snapID)
	}
	return s, nil
}

// DeleteSnapshot removes one of a sandbox's snapshots (or checkpoints).
func (m *Manager) DeleteSnapshot(ctx context.Context, id, snapID string) error {
	return m.locked(ctx, id, func(ctx context.Context) error {
		if _, ok := m.cached(id); !ok {
			return errorf(CodeNotFound, "sandbox %s not found", id)
		}
		s, err := m.sandboxSnapshot(ctx, id, snapID)
		if err != nil {
			return err
		}
		return m.dropSnapshot(ctx, s)
	})
}

// dropSnapshot removes a snapshot's row, then its tree: a crash in between leaves a tree
// without a row, which the next boot removes, never a row without its tree.
func (m *Manager) dropSnapshot(ctx context.Context, s store.Snapshot) error {
	if err := m.db.DeleteSnapshot(ctx, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal(err, "delete snapshot %s", s.ID)
	}
	m.removeTree(m.snapshotDir(s))
	return nil
}

// removeTree removes a snapshot's tree, logging what it cannot.
func (m *Manager) removeTree(dir string) {
	m.forgetCost(dir)
	if err := snapshot.Remove(dir); err != nil {
		m.log.Warn("remove a snapshot's tree; the next boot tries again", "dir", dir, "err", err)
	}
}
