package lifecycle

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// The run dir, <data>/run/<id>, holds what sandboxd writes for a sandbox and mounts into it
// read-only: the services for sandbox-init (services.json, with the services' env values)
// and the account files mounted at /etc/passwd and /etc/group. It lies outside the
// workspace, so the sandbox can neither change these files nor plant a symlink among them,
// and no quota of the sandbox's can make writing them fail. The directory is 0700 and each
// file 0600, owned by the sandbox's uid, the one account inside that must read them; the
// data dir above is root's alone (issue 12: services.json was 0644 and held DB_PASSWORD).

// runDir is the sandbox's run dir, mounted read-only at initproto.RunDir.
func (m *Manager) runDir(id string) string {
	mustValid(id)
	return filepath.Join(m.cfg.DataDir, "run", id)
}

// ensureRunDir makes the run dir, owned by the sandbox's uid.
func (m *Manager) ensureRunDir(sb store.Sandbox) (string, error) {
	parent := filepath.Join(m.cfg.DataDir, "run")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", internal(err, "create run dir")
	}
	if err := os.Chmod(parent, 0o700); err != nil { // 0755 before issue 12
		return "", internal(err, "run dir mode")
	}
	dir := m.runDir(sb.ID)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", internal(err, "create run dir")
	}
	uid := uidOf(sb)
	if err := os.Chown(dir, uid, uid); err != nil {
		return "", internal(err, "chown run dir")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", internal(err, "run dir mode")
	}
	return dir, nil
}

// writeServices writes the services file atomically for sandbox-init to apply.
func (m *Manager) writeServices(sb store.Sandbox) error {
	services := make([]initproto.Service, len(sb.Services))
	for i, s := range sb.Services {
		services[i] = initproto.Service{Name: s.Name, Cmd: s.Cmd, Cwd: s.Cwd, Env: s.Env, Port: s.Port}
	}
	body, err := initproto.EncodeServices(services)
	if err != nil {
		return internal(err, "encode services")
	}
	return m.writeRunFile(sb, initproto.ServicesFile, body)
}

// writeAccounts writes the sandbox's /etc/passwd and /etc/group from the image's.
func (m *Manager) writeAccounts(sb store.Sandbox, img accountFiles) error {
	passwd, group := sandboxAccounts(img, uidOf(sb))
	if err := m.writeRunFile(sb, passwdFile, passwd); err != nil {
		return err
	}
	return m.writeRunFile(sb, groupFile, group)
}

// ensureAccounts writes the account files when they are missing (a run dir removed by
// hand): the container's mounts need them to start. The image's entries are used when
// they are known already.
func (m *Manager) ensureAccounts(ctx context.Context, sb store.Sandbox) error {
	if sb.UID == 0 {
		return nil // still on uid 1000, with the image's accounts
	}
	_, perr := os.Stat(filepath.Join(m.runDir(sb.ID), passwdFile))
	_, gerr := os.Stat(filepath.Join(m.runDir(sb.ID), groupFile))
	if perr == nil && gerr == nil {
		return nil
	}
	img, err := m.inspectImage(ctx, sb.Image)
	if err != nil {
		return m.writeAccounts(sb, minimalAccounts)
	}
	return m.writeAccounts(sb, m.imageAccounts(ctx, img))
}

// writeRunFile replaces name in the run dir atomically: mode 0600, owned by the sandbox.
func (m *Manager) writeRunFile(sb store.Sandbox, name string, body []byte) error {
	dir, err := m.ensureRunDir(sb)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return internal(err, "write %s", name)
	}
	defer os.Remove(tmp.Name())
	uid := uidOf(sb)
	_, err = tmp.Write(body)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Chown(uid, uid)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		return internal(err, "write %s", name)
	}
	return nil
}
