package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	units "github.com/docker/go-units"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// Labels on every container sandboxd owns. Routing never reads them; reconcile uses them to
// find its containers, and uninstall to remove them.
const (
	LabelManaged  = "sandboxd.managed"
	LabelID       = "sandboxd.id"
	LabelInstance = "sandboxd.instance"
)

// Home is the sandbox user's home inside every sandbox: the workspace, bind-mounted.
const Home = initproto.Home

// sandboxUser is the uid:gid every sandbox process runs as.
const sandboxUser = "1000:1000"

func (m *Manager) containerName(id string) string {
	return "sandboxd-" + m.instance[:6] + "-" + id
}

// createContainer creates (does not start) the hardened container for sb. imageCmd is the
// image's own command (imageCommand); nil looks it up.
func (m *Manager) createContainer(ctx context.Context, sb store.Sandbox, imageCmd []string) (string, error) {
	if err := m.ensureNetwork(ctx); err != nil {
		return "", err
	}
	env, err := m.db.SandboxEnv(ctx, sb.ID)
	if err != nil {
		return "", internal(err, "read env of %s", sb.ID)
	}
	if imageCmd == nil && m.cfg.InitPath != "" {
		if imageCmd, err = m.imageCommand(ctx, sb.Image); err != nil {
			return "", err
		}
	}
	cfg, host := m.containerSpec(sb, env, imageCmd)
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{m.cfg.Network: {}}}
	name := m.containerName(sb.ID)
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	resp, err := m.docker.ContainerCreate(cctx, cfg, host, netcfg, nil, name)
	if errdefs.IsConflict(err) {
		// A container of ours with this name survived a crash between create and record.
		// The row is the truth, so replace it.
		m.log.Warn("replacing leftover container", "sandbox", sb.ID, "name", name)
		if rerr := m.docker.ContainerRemove(cctx, name, container.RemoveOptions{Force: true}); rerr != nil {
			return "", internal(rerr, "remove leftover container %s", name)
		}
		resp, err = m.docker.ContainerCreate(cctx, cfg, host, netcfg, nil, name)
	}
	if err != nil {
		return "", internal(err, "create container for %s", sb.ID)
	}
	return resp.ID, nil
}

// containerSpec is the hardened container of DESIGN.md: uid 1000, no capabilities,
// no-new-privileges, read-only rootfs, tmpfs /tmp, limits, the workspace at the home, and
// sandbox-init as PID 1 running the image's own command as a service.
func (m *Manager) containerSpec(sb store.Sandbox, env map[string]string, imageCmd []string) (*container.Config, *container.HostConfig) {
	envList := make([]string, 0, len(env)+1)
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	if _, ok := env["HOME"]; !ok {
		envList = append(envList, "HOME="+Home)
	}
	sort.Strings(envList)
	cfg := &container.Config{
		Image:      sb.Image,
		Hostname:   sb.ID,
		User:       sandboxUser,
		Env:        envList,
		WorkingDir: Home,
		Labels:     map[string]string{LabelManaged: "true", LabelID: sb.ID, LabelInstance: m.instance},
	}
	nofile := m.cfg.NoFile
	pids := m.cfg.Pids
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(m.cfg.Network),
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		IpcMode:        container.IPCModePrivate,
		Tmpfs:          map[string]string{"/tmp": "rw,nosuid,nodev,size=512m,mode=1777", "/var/tmp": "rw,nosuid,nodev,size=128m,mode=1777"},
		Resources: container.Resources{
			Memory:     sb.MemoryBytes,
			MemorySwap: sb.MemoryBytes, // no swap beyond the limit
			NanoCPUs:   sb.NanoCPUs,
			PidsLimit:  &pids,
			Ulimits:    []*units.Ulimit{{Name: "nofile", Soft: nofile, Hard: nofile}},
		},
		// ::1 on loopback only (eth0 stays IPv4): a dev server bound to [::1] works, and the
		// sandbox gains no IPv6 route out.
		Sysctls:   map[string]string{"net.ipv6.conf.lo.disable_ipv6": "0"},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "2"}},
		Mounts: []mount.Mount{{
			Type: mount.TypeBind, Source: m.workspaceDir(sb.ID), Target: Home,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		}},
	}
	if m.cfg.InitPath == "" {
		yes := true
		host.Init = &yes
		return cfg, host
	}
	cfg.Entrypoint = initproto.Entrypoint()
	cfg.Cmd = imageCmd
	host.Mounts = append(host.Mounts,
		mount.Mount{Type: mount.TypeBind, Source: m.cfg.InitPath, Target: initproto.InitPath, ReadOnly: true},
		mount.Mount{Type: mount.TypeBind, Source: m.runDir(sb.ID), Target: initproto.RunDir, ReadOnly: true},
	)
	return cfg, host
}

// imageCommand is the image's own Entrypoint+Cmd, which sandbox-init runs as service "main".
func (m *Manager) imageCommand(ctx context.Context, image string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	img, err := m.docker.ImageInspect(cctx, image)
	if errdefs.IsNotFound(err) {
		return nil, errorf(CodeInvalid, "image %q is not present on this host (build it, e.g. make image)", image)
	}
	if err != nil {
		return nil, internal(err, "inspect image %s", image)
	}
	cmd := []string{} // non-nil: looked up, even when the image has no command
	if img.Config != nil {
		cmd = append(append(cmd, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	return cmd, nil
}

// runDir is the host-owned directory mounted read-only at initproto.RunDir: sandboxd
// writes the services there, where the sandbox cannot change them or plant a symlink.
func (m *Manager) runDir(id string) string {
	mustValid(id)
	return filepath.Join(m.cfg.DataDir, "run", id)
}

// writeServices writes the services file atomically for sandbox-init to apply.
func (m *Manager) writeServices(sb store.Sandbox) error {
	dir := m.runDir(sb.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return internal(err, "create run dir")
	}
	services := make([]initproto.Service, len(sb.Services))
	for i, s := range sb.Services {
		services[i] = initproto.Service{Name: s.Name, Cmd: s.Cmd, Cwd: s.Cwd, Env: s.Env, Port: s.Port}
	}
	body, err := initproto.EncodeServices(services)
	if err != nil {
		return internal(err, "encode services")
	}
	tmp, err := os.CreateTemp(dir, ".services-*.json")
	if err != nil {
		return internal(err, "write services")
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return internal(err, "write services")
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return internal(err, "write services")
	}
	if err := tmp.Close(); err != nil {
		return internal(err, "write services")
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, initproto.ServicesFile)); err != nil {
		return internal(err, "write services")
	}
	return nil
}

// containerIP reads the sandbox's address on the sandboxd network.
func (m *Manager) containerIP(ctx context.Context, cid string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if err != nil {
		return "", internal(err, "inspect container")
	}
	if info.NetworkSettings != nil {
		if ep, ok := info.NetworkSettings.Networks[m.cfg.Network]; ok && ep.IPAddress != "" {
			return ep.IPAddress, nil
		}
	}
	return "", errorf(CodeInternal, "container %s has no address on network %s", shortID(cid), m.cfg.Network)
}

// ensureNetwork creates the sandboxes' bridge network, with inter-container traffic off, when
// it is absent. Sandboxes reach the internet through it but not each other.
func (m *Manager) ensureNetwork(ctx context.Context) error {
	if m.networkOK.Load() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	n, err := m.docker.NetworkInspect(cctx, m.cfg.Network, network.InspectOptions{})
	if err == nil {
		if n.Options["com.docker.network.bridge.enable_icc"] != "false" {
			m.log.Warn("network lets sandboxes reach each other: recreate it with ICC off",
				"network", m.cfg.Network)
		}
		m.networkOK.Store(true)
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return internal(err, "inspect network %s", m.cfg.Network)
	}
	_, err = m.docker.NetworkCreate(cctx, m.cfg.Network, network.CreateOptions{
		Driver:  "bridge",
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"},
		Labels:  map[string]string{LabelManaged: "true"},
	})
	if err != nil && !errdefs.IsConflict(err) {
		return internal(err, "create network %s", m.cfg.Network)
	}
	m.networkOK.Store(true)
	return nil
}

func shortID(cid string) string {
	if len(cid) > 12 {
		return cid[:12]
	}
	return cid
}

func mustValid(id string) {
	if !ValidID(id) {
		// Every entry point validates ids; reaching here is a bug that must not touch a path.
		panic(fmt.Sprintf("lifecycle: invalid sandbox id %q reached a path", id))
	}
}
