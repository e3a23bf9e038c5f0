package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// Recovery from a lost database (issue 11). Leftovers tells cmd/sandboxd what a data dir
// holds, so it can refuse to start on a database that is missing while sandboxes exist;
// adoptOrphans (Boot with AdoptOrphans set) rebuilds their rows from the saved configs
// (sandbox_config.go) and the containers.

// Leftovers is what exists of sandboxes outside the database.
type Leftovers struct {
	Workspaces []string // sandbox ids with a workspace
	Configs    []string // sandbox ids with a saved config
	Containers []string // sandbox ids with a container of this instance
}

// Empty reports whether nothing of any sandbox exists.
func (l Leftovers) Empty() bool {
	return len(l.Workspaces) == 0 && len(l.Configs) == 0 && len(l.Containers) == 0
}

// FindLeftovers lists the workspaces, saved configs and containers of the sandboxd whose
// data dir is dataDir. It needs no database.
func FindLeftovers(ctx context.Context, docker *client.Client, dataDir string) (Leftovers, error) {
	var l Leftovers
	var err error
	if l.Workspaces, err = idsIn(filepath.Join(dataDir, "workspaces"), ""); err != nil {
		return l, err
	}
	if l.Configs, err = idsIn(filepath.Join(dataDir, "sandboxes"), ".json"); err != nil {
		return l, err
	}
	byID, err := containersOf(ctx, docker, InstanceOf(dataDir), "", slog.New(slog.DiscardHandler))
	if err != nil {
		return l, err
	}
	for id := range byID {
		l.Containers = append(l.Containers, id)
	}
	sort.Strings(l.Containers)
	return l, nil
}

// idsIn lists the names in dir that are sandbox ids once suffix is cut.
func idsIn(dir, suffix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), suffix); ok && ValidID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// adoptOrphans gives a row to sandboxes that have none, rebuilt from the saved config (or,
// lacking one, from what the container says). Every boot adopts those with both a
// container and a saved config: only a lost row makes that pair (create writes the row
// first, delete removes it last), as after a backup is restored, and removing such a
// container would lose a sandbox made since the backup. With all (AdoptOrphans, after the
// database was lost) it also adopts a container without a config and a config without a
// container. A sandbox it cannot rebuild fails the boot: its container must not be removed
// as an orphan by the reconcile that follows.
func (m *Manager) adoptOrphans(ctx context.Context, rows []store.Sandbox, all bool) (adopted int, err error) {
	known := map[string]bool{}
	for _, sb := range rows {
		known[sb.ID] = true
	}
	byID, err := m.listContainers(ctx, "")
	if err != nil {
		return 0, err
	}
	configs, err := m.configIDs()
	if err != nil {
		return 0, internal(err, "list sandbox configs")
	}
	hasConfig := map[string]bool{}
	ids := map[string]bool{}
	for id := range byID {
		ids[id] = true
	}
	for _, id := range configs {
		ids[id], hasConfig[id] = true, true
	}
	var errs []error
	for _, id := range sortedKeys(ids) {
		if known[id] || !all && (!hasConfig[id] || len(byID[id]) == 0) {
			continue
		}
		if err := m.adoptOne(ctx, id, byID[id]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		adopted++
	}
	if len(errs) > 0 {
		return 0, errorf(CodeInternal, "could not adopt every sandbox, so none of their containers was touched: %v", errors.Join(errs...))
	}
	return adopted, nil
}

func (m *Manager) adoptOne(ctx context.Context, id string, containers []container.Summary) error {
	from := "saved config"
	sb, env, err := m.readConfig(id)
	if errors.Is(err, fs.ErrNotExist) {
		from = "container (no saved config: labels and ports without a service are lost)"
		sb, env, err = m.configFromContainer(ctx, id, containers)
	}
	if err != nil {
		return err
	}
	if keep, _ := pickContainer("", containers); keep != nil {
		sb.ContainerID = keep.ID
	}
	now := m.now()
	sb.UpdatedAt, sb.LastActiveAt = now, now
	if sb.CreatedAt.IsZero() {
		sb.CreatedAt = now
	}
	if err := m.db.CreateSandbox(ctx, &sb, env); err != nil {
		return err
	}
	if from != "saved config" {
		if err := m.writeConfig(sb, env); err != nil {
			m.log.Warn("save the adopted sandbox's config", "sandbox", id, "err", err)
		}
	}
	m.log.Warn("adopted sandbox", "sandbox", id, "container", shortID(sb.ContainerID), "from", from)
	return nil
}

// configFromContainer rebuilds what it can of a sandbox from its newest container: image,
// env, limits, and the services sandboxd last wrote for sandbox-init (their ports become
// the sandbox's). Labels and idle settings are not on the container.
func (m *Manager) configFromContainer(ctx context.Context, id string, containers []container.Summary) (store.Sandbox, map[string]string, error) {
	keep, _ := pickContainer("", containers)
	if keep == nil {
		return store.Sandbox{}, nil, errors.New("neither a saved config nor a container")
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, keep.ID)
	if err != nil {
		return store.Sandbox{}, nil, fmt.Errorf("inspect container: %w", err)
	}
	if info.ContainerJSONBase == nil || info.Config == nil || info.HostConfig == nil {
		return store.Sandbox{}, nil, errors.New("the container has no config")
	}
	sb := store.Sandbox{
		ID: id, Status: store.StatusStopped, Image: info.Config.Image, Labels: map[string]string{},
		MemoryBytes: info.HostConfig.Memory, NanoCPUs: info.HostConfig.NanoCPUs, IdlePolicy: store.IdleSleep,
	}
	sb.CreatedAt, _ = time.Parse(time.RFC3339Nano, info.Created)
	env := map[string]string{}
	fromImage := m.imageEnv(ctx, info.Config.Image)
	for _, kv := range info.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if fromImage[kv] || k == "HOME" && v == Home || injectedProxyVar(info.Config.Labels, k, v) { // the image's and containerSpec's, not the user's
			continue
		}
		env[k] = v
		sb.EnvKeys = append(sb.EnvKeys, k)
	}
	sort.Strings(sb.EnvKeys)
	if body, err := readCapped(filepath.Join(m.runDir(id), initproto.ServicesFile), initproto.MaxServicesSize); err == nil {
		list, err := initproto.DecodeServices(body)
		if err != nil {
			return store.Sandbox{}, nil, err
		}
		for _, s := range list {
			sb.Services = append(sb.Services, store.Service{Name: s.Name, Cmd: s.Cmd, Cwd: s.Cwd, Env: s.Env, Port: s.Port})
		}
	}
	if sb.Ports, err = normalizePorts(nil, sb.Services); err != nil {
		return store.Sandbox{}, nil, err
	}
	sb.Egress = m.egressOfContainer(listedNetworks(keep)) // issue 15
	return sb, env, nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
