package e2b

import (
	"time"

	"github.com/sandboxd/sandboxd/admin/e2b/envd"
	"github.com/sandboxd/sandboxd/store"
)

// clientID is what sandboxd answers as E2B's clientID (the node a sandbox runs on).
const clientID = "sandboxd"

// sandboxView is E2B's Sandbox: the answer of create and connect.
type sandboxView struct {
	TemplateID         string  `json:"templateID"`
	SandboxID          string  `json:"sandboxID"`
	Alias              string  `json:"alias,omitempty"`
	ClientID           string  `json:"clientID"`
	EnvdVersion        string  `json:"envdVersion"`
	EnvdAccessToken    string  `json:"envdAccessToken"`
	TrafficAccessToken *string `json:"trafficAccessToken"`
	Domain             *string `json:"domain"`
}

// detailView is E2B's SandboxDetail (GET /sandboxes/{id}) and, without domain,
// ListedSandbox (the lists).
type detailView struct {
	TemplateID  string            `json:"templateID"`
	Alias       string            `json:"alias,omitempty"`
	SandboxID   string            `json:"sandboxID"`
	ClientID    string            `json:"clientID"`
	StartedAt   time.Time         `json:"startedAt"`
	EndAt       time.Time         `json:"endAt"`
	CPUCount    int               `json:"cpuCount"`
	MemoryMB    int64             `json:"memoryMB"`
	DiskSizeMB  int64             `json:"diskSizeMB"`
	EnvdVersion string            `json:"envdVersion"`
	State       string            `json:"state"`
	Metadata    map[string]string `json:"metadata"`
	Domain      *string           `json:"domain,omitempty"`
}

// metricView is E2B's SandboxMetric.
type metricView struct {
	Timestamp     time.Time `json:"timestamp"`
	TimestampUnix int64     `json:"timestampUnix"`
	CPUCount      int       `json:"cpuCount"`
	CPUUsedPct    float64   `json:"cpuUsedPct"`
	MemUsed       uint64    `json:"memUsed"`
	MemTotal      uint64    `json:"memTotal"`
	MemCache      uint64    `json:"memCache"`
	DiskUsed      int64     `json:"diskUsed"`
	DiskTotal     int64     `json:"diskTotal"`
}

// E2B's states.
const (
	stateRunning = "running"
	statePaused  = "paused"
)

// stateOf is sb's state as E2B names it: anything but running (and creating, which the
// E2B API never shows before it ends) is paused, to be resumed with connect.
func stateOf(sb store.Sandbox) string {
	switch sb.Status {
	case store.StatusRunning, store.StatusCreating:
		return stateRunning
	}
	return statePaused
}

// templateOf is the templateID a sandbox was made from: the one asked for through this
// API, else its image.
func templateOf(sb store.Sandbox) (id, alias string) {
	if t := sb.Labels[labelTemplate]; t != "" {
		if t == "base" {
			return t, t
		}
		return t, ""
	}
	return sb.Image, ""
}

func (s *Server) sandboxView(sb store.Sandbox) sandboxView {
	t, alias := templateOf(sb)
	v := sandboxView{TemplateID: t, Alias: alias, SandboxID: sb.ID, ClientID: clientID,
		EnvdVersion: envd.Version, EnvdAccessToken: envd.AccessToken(s.key, sb.ID)}
	if s.Domain != "" {
		v.Domain = &s.Domain
	}
	return v
}

func (s *Server) detailView(sb store.Sandbox, withDomain bool) detailView {
	t, alias := templateOf(sb)
	v := detailView{TemplateID: t, Alias: alias, SandboxID: sb.ID, ClientID: clientID,
		StartedAt: sb.CreatedAt.UTC(), EndAt: s.endOf(sb).UTC(),
		CPUCount: max(1, int((sb.NanoCPUs+1e9-1)/1e9)), MemoryMB: sb.MemoryBytes >> 20,
		EnvdVersion: envd.Version, State: stateOf(sb), Metadata: labelsMetadata(sb.Labels)}
	if withDomain && s.Domain != "" {
		v.Domain = &s.Domain
	}
	return v
}
