package lifecycle

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
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
	// LabelEgressProxy is the egress proxy URL a container's proxy variables name (issue
	// 15); a container whose label differs from the running sandboxd's is made again.
	LabelEgressProxy = "sandboxd.egress-proxy"
)

// Home is the sandbox user's home inside every sandbox: the workspace, bind-mounted.
const Home = initproto.Home

// dockerTimeout bounds every Engine API call but stop, which has its own grace. The calls
// live one verb per file: container_*.go, image_inspect.go, network_ensure.go, exec_create.go.
const dockerTimeout = 30 * time.Second

// containerName is the Docker name of sandbox id's container, unique per data dir.
func (m *Manager) containerName(id string) string {
	return "sandboxd-" + m.instance[:6] + "-" + id
}

// containerSpec is the hardened container of DESIGN.md: the sandbox's own uid (named
// "sandbox" by read-only /etc/passwd and /etc/group from the run dir), no capabilities,
// no-new-privileges, read-only rootfs, tmpfs /tmp, limits, the workspace at the home, and
// sandbox-init as PID 1 running the image's own command as a service. On a btrfs data dir
// its seccomp profile also refuses making subvolumes, which would escape the quota.
func (m *Manager) containerSpec(sb store.Sandbox, env map[string]string, imageCmd []string) (*container.Config, *container.HostConfig) {
	envList := make([]string, 0, len(env)+1)
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	if _, ok := env["HOME"]; !ok {
		envList = append(envList, "HOME="+Home)
	}
	envList = append(envList, m.proxyEnv(env)...) // issue 15
	sort.Strings(envList)
	labels := map[string]string{LabelManaged: "true", LabelID: sb.ID, LabelInstance: m.instance}
	if m.EgressProxy.IsValid() {
		labels[LabelEgressProxy] = m.proxyURL()
	}
	cfg := &container.Config{
		Image:      sb.Image,
		Hostname:   sb.ID,
		User:       userSpec(sb),
		Env:        envList,
		WorkingDir: Home,
		Labels:     labels,
	}
	nofile := m.cfg.NoFile
	pids := m.cfg.Pids
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(m.primaryNetwork()),
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
	if sb.UID != 0 { // a sandbox still on uid 1000 keeps the image's accounts, as before
		host.Mounts = append(host.Mounts,
			mount.Mount{Type: mount.TypeBind, Source: filepath.Join(m.runDir(sb.ID), passwdFile), Target: "/etc/passwd", ReadOnly: true},
			mount.Mount{Type: mount.TypeBind, Source: filepath.Join(m.runDir(sb.ID), groupFile), Target: "/etc/group", ReadOnly: true})
	}
	if m.disk.seccomp != "" {
		host.SecurityOpt = append(host.SecurityOpt, "seccomp="+m.disk.seccomp)
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
