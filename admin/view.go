package admin

import (
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
	Services       []store.Service   `json:"services"`
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
	Network        networkView       `json:"network"` // issue 15
	ID             string            `json:"id"`
}

func (s *Server) view(sb store.Sandbox) sandboxView {
	v := sandboxView{
		ID: sb.ID, Status: sb.Status, Image: sb.Image, Ports: sb.Ports, EnvKeys: sb.EnvKeys,
		Labels: sb.Labels, Services: sb.Services, Memory: sb.MemoryBytes, CPUs: float64(sb.NanoCPUs) / 1e9,
		IdlePolicy: sb.IdlePolicy, HostHeader: "preview", IP: sb.IP, Error: sb.Error,
		CreatedAt: sb.CreatedAt, UpdatedAt: sb.UpdatedAt, LastActiveAt: sb.LastActiveAt,
		PreviewURLs: map[string]string{},
		Network:     s.networkView(sb),
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
	if v.Ports == nil {
		v.Ports = []int{}
	}
	if v.EnvKeys == nil {
		v.EnvKeys = []string{}
	}
	if v.Services == nil {
		v.Services = []store.Service{}
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
