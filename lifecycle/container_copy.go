package lifecycle

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
)

// labelProbe marks the throwaway container that reads an image's account files: reconcile
// leaves it alone, and uninstall removes a leftover with the instance's other containers.
const labelProbe = "sandboxd.probe"

// imageAccounts returns the image's /etc/passwd and /etc/group, read once per image id; on
// failure the minimal accounts stand in (and the next container tries again).
func (m *Manager) imageAccounts(ctx context.Context, img imageFacts) accountFiles {
	if a, ok := m.accounts.get(img.id); ok {
		return a
	}
	a, err := m.readImageAccounts(ctx, img.ref)
	if err != nil {
		m.log.Warn("read the image's /etc/passwd; the sandbox gets root, nobody and sandbox only", "image", img.ref, "err", err)
		return minimalAccounts
	}
	m.accounts.put(img.id, a)
	return a
}

// readImageAccounts copies /etc/passwd and /etc/group out of a container of image that is
// created and removed, never started. Not out of the sandbox's own container: the engine
// reads through a container's mounts, and there they are sandboxd's files.
func (m *Manager) readImageAccounts(ctx context.Context, image string) (accountFiles, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	resp, err := m.docker.ContainerCreate(cctx,
		&container.Config{Image: image, Entrypoint: []string{"/nonexistent"}, Labels: map[string]string{LabelManaged: "true", LabelInstance: m.instance, labelProbe: "true"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return accountFiles{}, fmt.Errorf("create: %w", err)
	}
	defer func() {
		if err := m.removeContainer(context.WithoutCancel(ctx), resp.ID); err != nil {
			m.log.Warn("remove the container that read an image's accounts", "container", shortID(resp.ID), "err", err)
		}
	}()
	var a accountFiles
	if a.passwd, err = m.copyFile(cctx, resp.ID, "/etc/passwd"); err != nil {
		return a, err
	}
	if a.group, err = m.copyFile(cctx, resp.ID, "/etc/group"); err != nil {
		return a, err
	}
	return a, nil
}

// copyFile reads one regular file out of a container, at most maxAccountFile bytes; a
// file that is missing (or is not a regular file) reads as empty.
func (m *Manager) copyFile(ctx context.Context, cid, path string) ([]byte, error) {
	rc, _, err := m.docker.CopyFromContainer(ctx, cid, path)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", path, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", path, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size > maxAccountFile {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(tr, maxAccountFile))
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", path, err)
	}
	return b, nil
}
