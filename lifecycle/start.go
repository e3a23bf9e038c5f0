package lifecycle

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// Start starts a sandbox's container, or unpauses a paused one, and returns its IP. A
// running sandbox answers from memory at once. A stop in progress is waited for, until ctx
// ends (then the error is unavailable and nothing was done); once the lock is held, the
// start runs to its end whatever ctx does. A container that vanished is recreated from the stored spec. A failed
// start leaves the sandbox in state error with the reason, until the next Start succeeds.
func (m *Manager) Start(ctx context.Context, id string) (netip.Addr, error) {
	if !ValidID(id) {
		return netip.Addr{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	if ip, ok := m.Running(id); ok {
		return ip, nil
	}
	// The wait for the lock ends with ctx; the start itself, once begun, does not.
	ctx, unlock, err := m.lockDetached(ctx, id)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()
	return m.startLocked(ctx, id)
}

// startLocked is Start once the caller holds id's lock.
func (m *Manager) startLocked(ctx context.Context, id string) (netip.Addr, error) {
	sb, ok := m.cached(id)
	if !ok {
		return netip.Addr{}, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if sb.Status == store.StatusRunning && parseIP(sb.IP).IsValid() {
		return parseIP(sb.IP), nil
	}
	if err := m.checkDisk(sb); err != nil {
		return netip.Addr{}, err // refused, not failed: the sandbox stays stopped, not broken
	}
	if sb.Status == store.StatusPaused {
		// A paused sandbox holds its tenant's running slot already (occupies): an unpause
		// needs no admission.
		ip, ok, err := m.unpauseLocked(ctx, sb)
		if err != nil || ok {
			return ip, err
		}
	}
	// Refused before anything is done, so the sandbox keeps its state: a tenant at its
	// running limit is not an error of the sandbox.
	release, err := m.admitRunning(id, sb.Tenant)
	if err != nil {
		return netip.Addr{}, err
	}
	defer release()
	m.hook("start.begin")
	began := time.Now()
	ip, cid, err := m.start(ctx, &sb)
	if err != nil {
		// Returned, not logged: the waker runs every start and logs its failure once.
		if _, serr := m.setRuntime(ctx, sb, store.Runtime{Status: store.StatusError, ContainerID: cid, Error: ErrorMessage(err)}); serr != nil {
			m.log.Error("record failed start", "sandbox", id, "err", serr)
		}
		return netip.Addr{}, err
	}
	if _, err := m.setRuntime(ctx, sb, store.Runtime{Status: store.StatusRunning, ContainerID: cid, IP: ip}); err != nil {
		return netip.Addr{}, err
	}
	m.touch(id)
	if m.Observe.Timed != nil {
		m.Observe.Timed("start", time.Since(began))
	}
	return parseIP(ip), nil
}

// start starts sb's container, making it first when there is none (or when the one there
// was made for another uid); sb is updated when the sandbox gets a uid of its own.
func (m *Manager) start(ctx context.Context, sbp *store.Sandbox) (ip, cid string, err error) {
	moved, err := m.ensureUID(ctx, sbp)
	if err != nil {
		return "", sbp.ContainerID, err
	}
	sb := *sbp
	if _, err := m.ensureWorkspace(sb); err != nil {
		return "", sb.ContainerID, err
	}
	if err := m.releaseHold(sb.ID); err != nil { // a create's, cut short (hold.go)
		return "", sb.ContainerID, err
	}
	if err := m.writeServices(sb); err != nil {
		return "", sb.ContainerID, err
	}
	cid = sb.ContainerID
	if cid != "" && moved {
		// Made for uid 1000, without the account files: make it again for the new uid.
		if err := m.removeContainer(ctx, cid); err != nil {
			return "", cid, err
		}
		cid = ""
	}
	if cid != "" {
		if err := m.ensureAccounts(ctx, sb); err != nil {
			return "", cid, err
		}
		ip, err = m.startExisting(ctx, cid, sb)
		switch {
		case err == nil:
			return ip, cid, nil
		case errors.Is(err, errOutdated):
			m.log.Info("recreating a container made without this egress proxy's settings", "sandbox", sb.ID)
		case errdefs.IsNotFound(err):
			m.log.Warn("container vanished; recreating it from the stored spec", "sandbox", sb.ID)
		default:
			return "", cid, err
		}
	}
	if cid, err = m.createContainer(ctx, sb, nil); err != nil {
		return "", "", err
	}
	ip, err = m.startContainer(ctx, cid)
	if err != nil {
		// Leave no half-made container: the next start creates a fresh one.
		if rerr := m.removeContainer(ctx, cid); rerr != nil {
			m.log.Warn("remove container that failed to start", "sandbox", sb.ID, "err", rerr)
		}
		return "", "", err
	}
	return ip, cid, nil
}

// errOutdated is a stopped container that was removed to be made again from the stored
// spec.
var errOutdated = errors.New("container outdated")

// startExisting starts a stopped container. Issue 15: one made for another egress proxy
// (before egress existed, or before the internal network was made again) lacks the proxy
// variables a mode change relies on, so it is removed (errOutdated) for start to make it
// again: its root filesystem is read-only and the workspace is a bind mount, so nothing
// is lost. Otherwise it first joins the networks its mode wants (the mode may have
// changed while it slept).
func (m *Manager) startExisting(ctx context.Context, cid string, sb store.Sandbox) (string, error) {
	if m.cfg.InternalNetwork != "" || m.EgressProxy.IsValid() {
		cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
		info, err := m.docker.ContainerInspect(cctx, cid)
		cancel()
		if err != nil {
			return "", internal(err, "inspect container %s", shortID(cid))
		}
		if m.EgressProxy.IsValid() && (info.Config == nil || info.Config.Labels[LabelEgressProxy] != m.proxyURL()) {
			if err := m.removeContainer(ctx, cid); err != nil {
				return "", err
			}
			return "", errOutdated
		}
		have := map[string]bool{}
		if info.NetworkSettings != nil {
			have = summaryNetworks(info.NetworkSettings.Networks)
		}
		if !m.aligned(sb, have) {
			if err := m.alignNetworks(ctx, cid, sb, have); err != nil {
				return "", err
			}
		}
	}
	return m.startContainer(ctx, cid)
}
