package lifecycle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// A sandbox made from a btrfs snapshot (a fork, a template) starts with its source's files,
// which keep their owner: a subvolume snapshot copies nothing. Giving 50,000 of them to the
// new sandbox's uid takes about as long as its container's start, so the two run side by
// side (issue 18: one after the other, they were a fork's whole second). The hold file in
// the run dir keeps sandbox-init from starting anything until the workspace is ready
// (initproto.HoldFile). It holds the uid the files come from: a reown cut short (sandboxd
// ended between the two) leaves its top directory the new uid's but not the rest, so the
// next start or boot reowns from that uid whatever the top directory says, then lifts it.

// holdPath is the hold file of id on the host.
func (m *Manager) holdPath(id string) string {
	return filepath.Join(m.runDir(id), initproto.HoldFile)
}

// hold writes sb's hold file: from is the uid its workspace's files belong to until they
// are given to sb's.
func (m *Manager) hold(sb store.Sandbox, from int) error {
	return m.writeRunFile(sb, initproto.HoldFile, []byte(strconv.Itoa(from)+"\n"))
}

// heldFrom reads id's hold file: whether there is one, and the uid its files came from
// (-1 when that cannot be read).
func (m *Manager) heldFrom(id string) (from int, held bool) {
	b, err := os.ReadFile(m.holdPath(id))
	if err != nil {
		return -1, false
	}
	from, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1, true
	}
	return from, true
}

// releaseHold removes id's hold file: sandbox-init starts the services.
func (m *Manager) releaseHold(id string) error {
	if err := os.Remove(m.holdPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return internal(err, "lift the hold of %s", id)
	}
	return nil
}

// finishHolds makes ready the workspaces whose create or start ended with sandboxd, at boot:
// the container of one may be running, its sandbox-init waiting on the hold.
func (m *Manager) finishHolds(rows []store.Sandbox) {
	for _, sb := range rows {
		if _, held := m.heldFrom(sb.ID); !held {
			continue
		}
		if _, err := m.ensureWorkspace(sb); err != nil {
			m.log.Error("make ready the workspace a create left", "sandbox", sb.ID, "err", err)
			continue // its next start tries again
		}
		if err := m.releaseHold(sb.ID); err != nil {
			m.log.Error("lift a hold", "sandbox", sb.ID, "err", err)
		}
	}
}
