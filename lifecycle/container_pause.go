package lifecycle

import (
	"context"
	"strings"
	"time"
)

// freezeAttempts bounds the tries of a pause the freezer gave up on.
const freezeAttempts = 4

// pauseContainer freezes every process of cid (the cgroup freezer): memory and sockets are
// kept, no CPU is used. The cgroup v1 freezer gives up ("unable to freeze") when a process
// will not stop in time, as one in the middle of disk I/O on a loaded host may not; runc
// thaws it again, so the pause is tried again a few times before it fails.
func (m *Manager) pauseContainer(ctx context.Context, cid string) error {
	var err error
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
		err = m.docker.ContainerPause(cctx, cid)
		cancel()
		if err == nil {
			return nil
		}
		if attempt == freezeAttempts || !strings.Contains(err.Error(), "unable to freeze") {
			break
		}
		m.log.Debug("the freezer gave up; pausing again", "container", shortID(cid), "attempt", attempt, "err", err)
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond): // a retry's backoff
		case <-ctx.Done():
			return internal(ctx.Err(), "pause container %s", shortID(cid))
		}
	}
	return internal(err, "pause container %s", shortID(cid))
}
