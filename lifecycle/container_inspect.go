package lifecycle

import (
	"context"
	"time"
)

// containerIP reads the sandbox's address on its primary network: the internal one when
// there is one (issue 15), else the sandboxd network.
func (m *Manager) containerIP(ctx context.Context, cid string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if err != nil {
		return "", internal(err, "inspect container")
	}
	if info.NetworkSettings != nil {
		if ep, ok := info.NetworkSettings.Networks[m.primaryNetwork()]; ok && ep.IPAddress != "" {
			return ep.IPAddress, nil
		}
	}
	return "", errorf(CodeInternal, "container %s has no address on network %s", shortID(cid), m.primaryNetwork())
}

// containerState is what sandboxd reads of a container's state.
type containerState struct {
	Running    bool
	Paused     bool // frozen; a paused container is Running too (issue 14)
	ExitCode   int
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
}

// inspectState reads a container's state.
func (m *Manager) inspectState(ctx context.Context, cid string) (containerState, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if err != nil {
		return containerState{}, internal(err, "inspect container")
	}
	if info.ContainerJSONBase == nil || info.State == nil {
		return containerState{}, errorf(CodeInternal, "container %s has no state", shortID(cid))
	}
	st := containerState{Running: info.State.Running, Paused: info.State.Paused, ExitCode: info.State.ExitCode, OOMKilled: info.State.OOMKilled}
	st.StartedAt, _ = time.Parse(time.RFC3339Nano, info.State.StartedAt)
	st.FinishedAt, _ = time.Parse(time.RFC3339Nano, info.State.FinishedAt)
	if st.FinishedAt.Year() < 2000 { // "0001-01-01T00:00:00Z": never finished
		st.FinishedAt = time.Time{}
	}
	return st, nil
}
