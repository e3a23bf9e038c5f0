package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// Every sandbox has a config file beside the database, <data>/sandboxes/<id>.json (0600,
// in a 0700 directory that no container mounts): all its row holds that is not runtime
// state, env values included, sealed with the store's key. It is written when the sandbox is created or changed, and
// at boot for any row that lacks one. The database is the truth; the file exists for the
// day the database is lost (issue 11: sandboxd started without its database removed
// every container and lost env, services, ports and labels): `sandboxd serve --adopt`
// rebuilds rows from these files and the containers (adopt.go).

// configVersion is the format of the file; a reader refuses a newer one.
const configVersion = 1

// sandboxConfig is the file's content.
type sandboxConfig struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Image   string `json:"image"`
	Ports   []int  `json:"ports"`
	// Secrets holds the env and the services' env values, sealed with the store's key
	// (issue 12): the file is owner-only, and still holds no value in clear.
	Secrets     []byte            `json:"secrets"`
	Labels      map[string]string `json:"labels"`
	Services    []store.Service   `json:"services"`
	MemoryBytes int64             `json:"memory_bytes"`
	NanoCPUs    int64             `json:"nano_cpus"`
	IdleTimeout time.Duration     `json:"idle_timeout_ns"`
	IdlePolicy  string            `json:"idle_policy"`
	HostHeader  string            `json:"host_header"`
	CreatedAt   time.Time         `json:"created_at"`
	// Issue 13: whose sandbox it is, and who may open its previews. An adopted sandbox
	// that lost them would change hands, or turn a private preview public. The preview
	// key is not kept: adoption makes a new one, so earlier tokens stop working.
	Tenant        string         `json:"tenant,omitempty"`
	PreviewAccess string         `json:"preview_access,omitempty"`
	PreviewPorts  map[int]string `json:"preview_ports,omitempty"`
	// Issue 12: the quota asked for, and the uid (which outlives the row anyway).
	DiskBytes int64 `json:"disk_bytes,omitempty"`
	UID       int   `json:"uid,omitempty"`
	// Issue 14: the wake policy and how long it stays paused.
	WakeOn    string        `json:"wake_on,omitempty"`
	StopAfter time.Duration `json:"stop_after_ns,omitempty"`
	// Issue 15: the egress policy; an adopted sandbox that lost it would get a route out.
	Egress      string   `json:"egress,omitempty"`
	EgressAllow []string `json:"egress_allow,omitempty"`
}

// configSecrets is what Secrets seals.
type configSecrets struct {
	Env        map[string]string            `json:"env"`
	ServiceEnv map[string]map[string]string `json:"service_env,omitempty"` // by service name
}

// configAD binds a config's sealed secrets to its sandbox: a file copied under another
// id does not open.
func configAD(id string) []byte { return []byte("sandbox.json\x00" + id) }

// maxConfigSize bounds a read: env values, services and labels are bounded at create.
const maxConfigSize = 16 << 20

func (m *Manager) configDir() string { return filepath.Join(m.cfg.DataDir, "sandboxes") }

func (m *Manager) configPath(id string) string {
	mustValid(id)
	return filepath.Join(m.configDir(), id+".json")
}

// writeConfig replaces sb's config file, atomically. It is the one place env values are
// written outside the database: sealed, as in the database (issue 12).
func (m *Manager) writeConfig(sb store.Sandbox, env map[string]string) error {
	secrets := configSecrets{Env: env, ServiceEnv: map[string]map[string]string{}}
	services := make([]store.Service, len(sb.Services))
	for i, sv := range sb.Services {
		if len(sv.Env) > 0 {
			secrets.ServiceEnv[sv.Name] = sv.Env
		}
		sv.Env = nil
		services[i] = sv
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return internal(err, "encode config of %s", sb.ID)
	}
	c := sandboxConfig{
		Version: configVersion, ID: sb.ID, Image: sb.Image, Ports: sb.Ports, Labels: sb.Labels,
		Secrets: m.db.Sealer().Seal(plain, configAD(sb.ID)), Services: services,
		MemoryBytes: sb.MemoryBytes, NanoCPUs: sb.NanoCPUs, IdleTimeout: sb.IdleTimeout,
		IdlePolicy: sb.IdlePolicy, HostHeader: sb.HostHeader, CreatedAt: sb.CreatedAt,
		Tenant: sb.Tenant, PreviewAccess: sb.Previews.Access, PreviewPorts: sb.Previews.Ports,
		DiskBytes: sb.DiskBytes, UID: sb.UID,
		WakeOn: sb.WakeOn, StopAfter: sb.StopAfter,
		Egress: sb.Egress, EgressAllow: sb.EgressAllow, // issue 15
	}
	body, err := json.Marshal(c)
	if err != nil {
		return internal(err, "encode config of %s", sb.ID)
	}
	dir := m.configDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return internal(err, "create config dir")
	}
	tmp, err := os.CreateTemp(dir, "."+sb.ID+"-*.json") // CreateTemp makes it 0600
	if err != nil {
		return internal(err, "write config of %s", sb.ID)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), m.configPath(sb.ID))
	}
	if err != nil {
		return internal(err, "write config of %s", sb.ID)
	}
	return nil
}

// readConfig reads id's config file: the row it describes (status stopped, no container)
// and its env. fs.ErrNotExist when there is none.
func (m *Manager) readConfig(id string) (store.Sandbox, map[string]string, error) {
	f, err := os.Open(m.configPath(id))
	if err != nil {
		return store.Sandbox{}, nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return store.Sandbox{}, nil, err
	}
	if len(body) > maxConfigSize {
		return store.Sandbox{}, nil, fmt.Errorf("config of %s is larger than %d bytes", id, maxConfigSize)
	}
	var c sandboxConfig
	if err := json.Unmarshal(body, &c); err != nil {
		return store.Sandbox{}, nil, fmt.Errorf("config of %s: %w", id, err)
	}
	switch {
	case c.Version > configVersion:
		return store.Sandbox{}, nil, fmt.Errorf("config of %s has version %d, newer than this sandboxd's %d", id, c.Version, configVersion)
	case c.ID != id:
		return store.Sandbox{}, nil, fmt.Errorf("config of %s names sandbox %q", id, c.ID)
	}
	plain, err := m.db.Sealer().Open(c.Secrets, configAD(id))
	if err != nil {
		return store.Sandbox{}, nil, fmt.Errorf("config of %s: its secrets do not open with this key: %w", id, err)
	}
	var secrets configSecrets
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return store.Sandbox{}, nil, fmt.Errorf("config of %s: %w", id, err)
	}
	for i := range c.Services {
		c.Services[i].Env = secrets.ServiceEnv[c.Services[i].Name]
	}
	sb := store.Sandbox{
		ID: id, Status: store.StatusStopped, Image: c.Image, Ports: c.Ports, Labels: c.Labels, Services: c.Services,
		MemoryBytes: c.MemoryBytes, NanoCPUs: c.NanoCPUs, IdleTimeout: c.IdleTimeout, IdlePolicy: c.IdlePolicy,
		HostHeader: c.HostHeader, CreatedAt: c.CreatedAt,
		Tenant: c.Tenant, Previews: store.Previews{Access: c.PreviewAccess, Ports: c.PreviewPorts},
		DiskBytes: c.DiskBytes, UID: c.UID,
		WakeOn: c.WakeOn, StopAfter: c.StopAfter,
		Egress: c.Egress, EgressAllow: c.EgressAllow, // issue 15
	}
	if sb.Labels == nil {
		sb.Labels = map[string]string{}
	}
	for k := range secrets.Env {
		sb.EnvKeys = append(sb.EnvKeys, k)
	}
	sort.Strings(sb.EnvKeys)
	return sb, secrets.Env, nil
}

// removeConfig deletes id's config file; a missing one is fine.
func (m *Manager) removeConfig(id string) {
	if err := os.Remove(m.configPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("remove sandbox config", "sandbox", id, "err", err)
	}
}

// configIDs lists the sandboxes that have a config file.
func (m *Manager) configIDs() ([]string, error) {
	entries, err := os.ReadDir(m.configDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && ValidID(id) && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// writeConfigFromStore writes sb's config with its env as stored.
func (m *Manager) writeConfigFromStore(ctx context.Context, sb store.Sandbox) error {
	env, err := m.db.SandboxEnv(ctx, sb.ID)
	if err != nil {
		return internal(err, "read env of %s", sb.ID)
	}
	return m.writeConfig(sb, env)
}

// ensureConfigs writes the config of every sandbox in rows that has none: sandboxes made
// before config files existed get theirs at the first boot.
func (m *Manager) ensureConfigs(ctx context.Context, rows []store.Sandbox) {
	for _, sb := range rows {
		if _, err := os.Stat(m.configPath(sb.ID)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := m.writeConfigFromStore(ctx, sb); err != nil {
			m.log.Warn("write missing sandbox config", "sandbox", sb.ID, "err", err)
		}
	}
}
