package admin

import (
	"slices"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// sandboxView is a sandbox as the API shows it. "id" is the last field and the only "id"
// key of our own, so `sed -E 's/.*"id":"([^"]+)".*/\1/'` extracts it.
type sandboxView struct {
	Status         string            `json:"status"`
	Image          string            `json:"image"`
	Ports          []int             `json:"ports"`
	PreviewURLs    map[string]string `json:"preview_urls"`
	EnvKeys        []string          `json:"env_keys"`
	Labels         map[string]string `json:"labels"`
	Services       []declaredView    `json:"services"`
	Memory         int64             `json:"memory"`
	CPUs           float64           `json:"cpus"`
	IdleTimeout    string            `json:"idle_timeout,omitempty"`
	IdlePolicy     string            `json:"idle_policy"`
	HostHeader     string            `json:"host_header"`
	IP             string            `json:"ip,omitempty"`
	Error          string            `json:"error,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	LastActiveAt   time.Time         `json:"last_active_at"`
	KeepaliveUntil *time.Time        `json:"keepalive_until,omitempty"`

	// Issue 13: the tenant it belongs to; "" for the operator's.
	Tenant string `json:"tenant"`

	Previews previewsView `json:"previews"` // issue 13

	// issue 11: how the container last ended without being asked; absent when it never has.
	LastExit *lastExitView `json:"last_exit,omitempty"`
	// Issue 12.
	Disk diskView `json:"disk"`
	UID  int      `json:"uid,omitempty"`

	// Issue 14: tiered sleep and the wake policy.
	WakeOn    string      `json:"wake_on"`
	StopAfter string      `json:"stop_after,omitempty"` // absent: the operator's default
	PausedAt  *time.Time  `json:"paused_at,omitempty"`
	Network   networkView `json:"network"` // issue 15

	ID string `json:"id"`
}

// lastExitView is store.Exit as the API shows it: {"code":137,"reason":"oom","at":...}.
type lastExitView struct {
	Code   int       `json:"code"`
	Reason string    `json:"reason"` // oom or exited
	At     time.Time `json:"at"`
}

// declaredView is a declared service as the API shows it: its env is write-only, so only
// the names show (issue 12: GET /v1/sandboxes/{id} answered a service's DB_PASSWORD).
type declaredView struct {
	Name    string   `json:"name"`
	Cmd     []string `json:"cmd"`
	Cwd     string   `json:"cwd,omitempty"`
	EnvKeys []string `json:"env_keys"`
	Port    int      `json:"port,omitempty"`
}

// diskView is a sandbox's disk usage and quotas; "enforced" says whether the kernel holds
// the byte quota ("btrfs") or a periodic scan checks it ("scan"), or there is none.
type diskView struct {
	Used       int64  `json:"used"`
	Quota      int64  `json:"quota"`
	Inodes     int64  `json:"inodes"`
	InodeQuota int64  `json:"inode_quota"`
	Enforced   string `json:"enforced"`
}

// envKeys lists the names of env, sorted, never its values.
func envKeys(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *Server) view(sb store.Sandbox) sandboxView {
	v := sandboxView{
		ID: sb.ID, Status: sb.Status, Image: sb.Image, Ports: sb.Ports, EnvKeys: sb.EnvKeys,
		Labels: sb.Labels, Services: []declaredView{}, Memory: sb.MemoryBytes, CPUs: float64(sb.NanoCPUs) / 1e9,
		IdlePolicy: sb.IdlePolicy, HostHeader: "preview", IP: sb.IP, Error: sb.Error,
		CreatedAt: sb.CreatedAt, UpdatedAt: sb.UpdatedAt, LastActiveAt: sb.LastActiveAt,
		PreviewURLs: map[string]string{}, Previews: viewPreviews(sb.Previews),
		Tenant: sb.Tenant,
		UID:    sb.UID,
		Disk: diskView{Used: sb.Disk.Used, Quota: sb.Disk.Quota, Inodes: sb.Disk.Inodes,
			InodeQuota: sb.Disk.InodeQuota, Enforced: sb.Disk.Enforced},
		Network: s.networkView(sb), // issue 15
	}
	for _, sv := range sb.Services {
		v.Services = append(v.Services, declaredView{Name: sv.Name, Cmd: sv.Cmd, Cwd: sv.Cwd, EnvKeys: envKeys(sv.Env), Port: sv.Port})
	}
	if sb.HostHeader != "" {
		v.HostHeader = sb.HostHeader
	}
	if sb.IdleTimeout > 0 {
		v.IdleTimeout = sb.IdleTimeout.String()
	}
	if !sb.KeepaliveUntil.IsZero() {
		k := sb.KeepaliveUntil
		v.KeepaliveUntil = &k
	}
	if sb.LastExit.Reason != "" {
		v.LastExit = &lastExitView{Code: sb.LastExit.Code, Reason: sb.LastExit.Reason, At: sb.LastExit.At}
	}
	v.WakeOn = sb.WakeOn
	if v.WakeOn == "" {
		v.WakeOn = store.WakeOnNavigation
	}
	if sb.StopAfter > 0 {
		v.StopAfter = sb.StopAfter.String()
	}
	if !sb.PausedAt.IsZero() {
		p := sb.PausedAt
		v.PausedAt = &p
	}
	if v.Ports == nil {
		v.Ports = []int{}
	}
	if v.EnvKeys == nil {
		v.EnvKeys = []string{}
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if s.PreviewURL != nil {
		for _, p := range sb.Ports {
			v.PreviewURLs[strconv.Itoa(p)] = s.PreviewURL(sb.ID, p)
		}
	}
	return v
}
