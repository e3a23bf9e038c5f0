package lifecycle

import (
	"context"
	"errors"
	"sort"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// Reconcile converges Docker and SQLite: the store says which sandboxes exist, Docker says
// which run. For each row, the container's real state is recorded (a running or paused
// container is adopted whatever the row said; a missing one leaves the row stopped, to be recreated on
// the next start; rows stuck in creating or stopping after a crash get the container's
// state; a running sandbox whose container ended on its own gets its last_exit).
// Containers of ours without a row are removed, unless Boot adopts them (adopt.go).

// Boot loads every sandbox into memory, publishes its route and reconciles. Call it once
// before serving.
func (m *Manager) Boot(ctx context.Context) error {
	if err := m.ensureNetwork(ctx); err != nil {
		return err
	}
	if err := m.initDisk(); err != nil {
		return err
	}
	rows, err := m.db.ListSandboxes(ctx, store.ListOptions{})
	if err != nil {
		return internal(err, "load sandboxes")
	}
	adopted, err := m.adoptOrphans(ctx, rows, m.AdoptOrphans)
	if err != nil {
		return err
	}
	if adopted > 0 {
		if rows, err = m.db.ListSandboxes(ctx, store.ListOptions{}); err != nil {
			return internal(err, "load sandboxes")
		}
	}
	for _, sb := range rows {
		m.remember(sb)
	}
	m.ensureConfigs(ctx, rows)
	m.finishHolds(rows)        // issue 18
	m.bootSnapshots(ctx, rows) // issue 18
	return m.reconcileAll(ctx, true)
}

// reconcileAll reconciles every sandbox. With wait false (the periodic sweep) sandboxes busy
// with an operation are skipped: the operation records the truth itself.
func (m *Manager) reconcileAll(ctx context.Context, wait bool) error {
	// Containers first, rows second: a container seen here was created after its row was
	// committed, so it can never be mistaken for an orphan.
	byID, err := m.listContainers(ctx, "")
	if err != nil {
		return err
	}
	rows, err := m.db.ListSandboxes(ctx, store.ListOptions{})
	if err != nil {
		return internal(err, "load sandboxes")
	}
	seen := map[string]bool{}
	var errs []error
	for _, sb := range rows {
		seen[sb.ID] = true
		errs = append(errs, m.reconcileLocked(ctx, sb.ID, wait, func() error {
			return m.reconcileOne(ctx, sb.ID, byID[sb.ID])
		}))
	}
	for id := range byID {
		if seen[id] {
			continue
		}
		errs = append(errs, m.reconcileLocked(ctx, id, wait, func() error {
			return m.reconcileOne(ctx, id, byID[id])
		}))
	}
	return errors.Join(errs...)
}

func (m *Manager) reconcileLocked(ctx context.Context, id string, wait bool, fn func() error) error {
	if wait {
		unlock, err := m.lock(ctx, id)
		if err != nil {
			return err
		}
		defer unlock()
		return fn()
	}
	unlock, ok := m.locks.tryLock(id)
	if !ok {
		return nil
	}
	defer unlock()
	return fn()
}

// reconcileID reconciles one sandbox now, waiting for an operation in progress.
func (m *Manager) reconcileID(ctx context.Context, id string) error {
	return m.reconcileLocked(ctx, id, true, func() error {
		return m.reconcileOne(ctx, id, nil)
	})
}

// reconcileOne converges one sandbox. The caller holds its lock; the row is read again
// under it, so an operation that finished meanwhile is seen. hint is a container listing
// taken earlier (nil: list now); it may be stale, so any change it suggests is checked
// against a fresh listing before it is applied.
func (m *Manager) reconcileOne(ctx context.Context, id string, hint []container.Summary) error {
	sb, err := m.db.GetSandbox(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal(err, "read sandbox %s", id)
	}
	exists := err == nil
	fresh := hint == nil
	containers := hint
	if fresh {
		if containers, err = m.currentContainers(ctx, id); err != nil {
			return err
		}
	}
	if exists && !fresh {
		if _, want := m.desired(sb, containers); want == nil && m.runningAligned(sb, containers) {
			m.remember(sb)
			return nil // the possibly stale listing agrees with the row: nothing to do
		}
	}
	if !fresh {
		if containers, err = m.currentContainers(ctx, id); err != nil {
			return err
		}
	}
	if !exists {
		for _, c := range containers {
			m.log.Info("removing orphan container", "sandbox", id, "container", shortID(c.ID))
			if err := m.removeContainer(ctx, c.ID); err != nil {
				return err
			}
		}
		return nil
	}
	// Issue 15: a running container on the wrong networks (a crash in the middle of a mode
	// change, a container made before the internal network) is moved, and listed again
	// for its address there.
	if !m.runningAligned(sb, containers) {
		keep, _ := pickContainer(sb.ContainerID, containers)
		if err := m.alignNetworks(ctx, keep.ID, sb, listedNetworks(keep)); err != nil {
			return err
		}
		byID, err := m.listContainers(ctx, id)
		if err != nil {
			return err
		}
		containers = byID[id]
	}
	extra, want := m.desired(sb, containers)
	for _, c := range extra {
		m.log.Info("removing duplicate container", "sandbox", id, "container", shortID(c.ID))
		if err := m.removeContainer(ctx, c.ID); err != nil {
			return err
		}
	}
	if want == nil {
		m.remember(sb) // memory may lag the row after a crash; the route follows the row
		return nil
	}
	if alive(want.Status) && want.IP == "" {
		if want.IP, err = m.containerIP(ctx, want.ContainerID); err != nil {
			return err
		}
	}
	if want.Status == store.StatusPaused && want.PausedAt.IsZero() {
		want.PausedAt = m.now() // paused behind our back: its stop_after counts from now
	}
	if alive(sb.Status) && !alive(want.Status) {
		// Only reconcile stops a running (or paused) sandbox without a stopping first:
		// nobody asked. A pause or unpause behind our back is no exit.
		m.recordExit(ctx, &sb, want.ContainerID)
	}
	m.log.Info("reconciled", "sandbox", id, "from", sb.Status, "to", want.Status, "container", shortID(want.ContainerID))
	sb, err = m.setRuntime(ctx, sb, *want)
	if err == nil && want.Status == store.StatusRunning {
		m.touch(id) // adopted: give it a full idle period
	}
	return err
}

// currentContainers lists id's containers with the state each has now. The engine announces
// a pause before its listing shows it (the listing is a copy it updates after the event), so
// a reconcile kicked by the event would read "running" and change nothing; an inspect reads
// the container itself (issue 14: a pause behind our back went unseen until the next sweep).
func (m *Manager) currentContainers(ctx context.Context, id string) ([]container.Summary, error) {
	byID, err := m.listContainers(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []container.Summary
	for _, c := range byID[id] {
		cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
		info, err := m.docker.ContainerInspect(cctx, c.ID)
		cancel()
		switch {
		case errdefs.IsNotFound(err):
			continue // gone since the listing
		case err != nil:
			return nil, internal(err, "inspect container %s", shortID(c.ID))
		case info.State != nil:
			c.State = info.State.Status
		}
		out = append(out, c)
	}
	return out, nil
}

// desired is the runtime the row should have given the containers Docker reports, or nil
// when the row already says so; extra are containers beyond the one kept.
func (m *Manager) desired(sb store.Sandbox, containers []container.Summary) (extra []container.Summary, want *store.Runtime) {
	keep, extra := pickContainer(sb.ContainerID, containers)
	rt := store.Runtime{Status: store.StatusStopped, Error: sb.Error}
	switch {
	case keep == nil:
		if sb.Status == store.StatusError {
			rt.Status = store.StatusError
		}
	case keep.State == "running",
		keep.State == "paused" && sb.Status == store.StatusRunning && m.thaws.recent(keep.ID, m.now()):
		// The second: the engine's late record of a freeze sandboxd has already thawed
		// (container_exec_create.go); its "unpause" event follows.
		rt = store.Runtime{Status: store.StatusRunning, ContainerID: keep.ID, IP: summaryIP(keep, m.primaryNetwork())}
	case keep.State == "paused":
		// Paused by us, or by someone else behind our back: either way frozen, and a
		// wake unpauses it (issue 14). A start would fail on a paused container.
		rt = store.Runtime{Status: store.StatusPaused, ContainerID: keep.ID, IP: summaryIP(keep, m.primaryNetwork())}
		if sb.Status == store.StatusPaused {
			rt.PausedAt = sb.PausedAt
		}
	default:
		rt.ContainerID = keep.ID
		if sb.Status == store.StatusError {
			rt.Status = store.StatusError
		}
	}
	if sb.Status == rt.Status && sb.ContainerID == rt.ContainerID && (sb.IP == rt.IP || rt.IP == "" && alive(rt.Status)) {
		return extra, nil
	}
	return extra, &rt
}

// pickContainer keeps the container the row names, else the newest; the rest are extra.
func pickContainer(cid string, list []container.Summary) (keep *container.Summary, extra []container.Summary) {
	if len(list) == 0 {
		return nil, nil
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created > list[j].Created })
	k := 0
	for i := range list {
		if list[i].ID == cid {
			k = i
		}
	}
	for i := range list {
		if i != k {
			extra = append(extra, list[i])
		}
	}
	return &list[k], extra
}

func summaryIP(c *container.Summary, net string) string {
	if c.NetworkSettings == nil {
		return ""
	}
	if ep, ok := c.NetworkSettings.Networks[net]; ok && ep != nil {
		return ep.IPAddress
	}
	return ""
}

// runningAligned reports whether the container the row keeps, when it runs, is on the
// networks its mode wants. A container that does not run is aligned when it starts.
func (m *Manager) runningAligned(sb store.Sandbox, containers []container.Summary) bool {
	if m.cfg.InternalNetwork == "" {
		return true
	}
	keep, _ := pickContainer(sb.ContainerID, containers)
	return keep == nil || keep.State != "running" || m.aligned(sb, listedNetworks(keep))
}
