package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Sandbox is a sandbox as the API shows it.
type Sandbox struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"` // creating, running, paused, stopping, stopped, error
	Image          string            `json:"image"`
	Ports          []int             `json:"ports"`
	PreviewURLs    map[string]string `json:"preview_urls"` // by port, "3000"
	EnvKeys        []string          `json:"env_keys"`
	Labels         map[string]string `json:"labels"`
	Services       []Service         `json:"services"`
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
	// WakeMS is how long Start waited for the sandbox to come up.
	WakeMS int64 `json:"wake_duration_ms,omitempty"`

	// Tenant is the tenant the sandbox belongs to; "" for the operator's.
	Tenant string `json:"tenant"`
	// Previews is who may open the sandbox's previews.
	Previews Previews `json:"previews"`
	// LastExit is how the container last ended without being asked; nil when it never has.
	LastExit *LastExit `json:"last_exit,omitempty"`
	// Disk is the sandbox's disk usage and quotas.
	Disk Disk `json:"disk"`
	// UID is the sandbox's own uid; 0 when it has none yet.
	UID int `json:"uid,omitempty"`
	// WakeOn is what wakes a sleeping sandbox: navigation or any.
	WakeOn string `json:"wake_on"`
	// StopAfter is how long it stays paused before it is stopped; "" is the operator's default.
	StopAfter string `json:"stop_after,omitempty"`
	// PausedAt is when it was paused; nil unless it is paused.
	PausedAt *time.Time `json:"paused_at,omitempty"`
	// Network is the sandbox's egress policy and its recent denials.
	Network Network `json:"network"`
}

// Previews is a sandbox's preview access: the access in force and the ports with their own
// (by port, "3000").
type Previews struct {
	Access string            `json:"access"`
	Ports  map[string]string `json:"ports"`
}

// LastExit is how a sandbox's container ended on its own.
type LastExit struct {
	Code   int       `json:"code"`
	Reason string    `json:"reason"` // oom or exited
	At     time.Time `json:"at"`
}

// Disk is a sandbox's disk usage and quotas, in bytes and inodes; a quota of 0 is none.
type Disk struct {
	Used       int64  `json:"used"`
	Quota      int64  `json:"quota"`
	Inodes     int64  `json:"inodes"`
	InodeQuota int64  `json:"inode_quota"`
	Enforced   string `json:"enforced"`            // btrfs, scan or none
	Snapshots  int64  `json:"snapshots,omitempty"` // the part of Used its snapshots hold
}

// Network is a sandbox's egress policy as the API shows it.
type Network struct {
	Egress        string   `json:"egress"` // none, proxy or open
	Allow         []string `json:"allow"`
	OperatorAllow []string `json:"operator_allow,omitempty"`
	DeniedRecent  []Denial `json:"denied_recent"`
}

// Denial is a request the egress proxy refused.
type Denial struct {
	At     time.Time `json:"at"`
	Host   string    `json:"host"`
	Reason string    `json:"reason"`
}

// PreviewURL is the preview URL of port, or "" when the sandbox does not declare it.
func (s Sandbox) PreviewURL(port int) string { return s.PreviewURLs[strconv.Itoa(port)] }

// Service is a process sandbox-init keeps running in the sandbox.
type Service struct {
	Name string            `json:"name"`
	Cmd  []string          `json:"cmd"`
	Cwd  string            `json:"cwd,omitempty"`
	Env  map[string]string `json:"env,omitempty"` // write-only: a sandbox's answer leaves it out
	Port int               `json:"port,omitempty"`
	// EnvKeys are the names of Env in a sandbox's answer, sorted; leave them empty in a create.
	EnvKeys []string `json:"env_keys,omitempty"`
}

// CreateRequest is the body of a create; every field is optional.
type CreateRequest struct {
	ID          string            `json:"id,omitempty"`
	Image       string            `json:"image,omitempty"`
	Ports       []int             `json:"ports,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Memory      string            `json:"memory,omitempty"`       // "4G", "512M"
	CPUs        float64           `json:"cpus,omitempty"`         // 1.5
	IdleTimeout string            `json:"idle_timeout,omitempty"` // "15m"
	IdlePolicy  string            `json:"idle_policy,omitempty"`  // sleep, always_on
	HostHeader  string            `json:"host_header,omitempty"`  // preview, localhost
	Services    []Service         `json:"services,omitempty"`
}

// ListOptions filter a listing; the zero value lists the first 100 sandboxes.
type ListOptions struct {
	Status string            // one state
	Labels map[string]string // every label must match
	Limit  int               // 1-1000; 0 means the API's default, 100
	Cursor string            // NextCursor of the previous page
}

// SandboxList is one page of sandboxes.
type SandboxList struct {
	Sandboxes  []Sandbox `json:"sandboxes"`
	NextCursor string    `json:"next_cursor"` // "" on the last page
}

// Create creates a sandbox and answers it (running, or creating while it starts).
func (c *Client) Create(ctx context.Context, req CreateRequest) (Sandbox, error) {
	var sb Sandbox
	err := c.do(ctx, http.MethodPost, "/v1/sandboxes", nil, req, &sb)
	return sb, err
}

// List answers one page of sandboxes.
func (c *Client) List(ctx context.Context, o ListOptions) (SandboxList, error) {
	q := url.Values{}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	for k, v := range o.Labels {
		q.Add("label", k+"="+v)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	var l SandboxList
	err := c.do(ctx, http.MethodGet, "/v1/sandboxes", q, nil, &l)
	return l, err
}

// ListAll follows the cursor through every page (at most max sandboxes; 0 means no cap).
func (c *Client) ListAll(ctx context.Context, o ListOptions, max int) ([]Sandbox, error) {
	var all []Sandbox
	for {
		l, err := c.List(ctx, o)
		if err != nil {
			return all, err
		}
		all = append(all, l.Sandboxes...)
		if l.NextCursor == "" || max > 0 && len(all) >= max {
			if max > 0 && len(all) > max {
				all = all[:max]
			}
			return all, nil
		}
		o.Cursor = l.NextCursor
	}
}

// Get answers one sandbox.
func (c *Client) Get(ctx context.Context, id string) (Sandbox, error) {
	var sb Sandbox
	err := c.do(ctx, http.MethodGet, sandboxPath(id), nil, nil, &sb)
	return sb, err
}

// Start starts a stopped sandbox and waits until it runs.
func (c *Client) Start(ctx context.Context, id string) (Sandbox, error) {
	var sb Sandbox
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "start"), nil, nil, &sb)
	return sb, err
}

// Pause freezes a running sandbox: its processes and memory stay, its CPU is freed, and its
// next use (or Start) resumes it where it was.
func (c *Client) Pause(ctx context.Context, id string) (Sandbox, error) {
	var sb Sandbox
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "pause"), nil, nil, &sb)
	return sb, err
}

// Stop stops a sandbox; its workspace stays and its next use starts it again.
func (c *Client) Stop(ctx context.Context, id string) (Sandbox, error) {
	var sb Sandbox
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "stop"), nil, nil, &sb)
	return sb, err
}

// Delete removes the sandbox's container and record; its workspace stays.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, sandboxPath(id), nil, nil, nil)
}

// Purge removes the sandbox and its workspace.
func (c *Client) Purge(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, sandboxPath(id, "purge"), nil, nil, nil)
}

// Keepalive keeps the sandbox awake: woken if stopped, marked active now, and with d > 0
// kept up for d (the API caps it at 24h). The answer holds the keepalive in force.
func (c *Client) Keepalive(ctx context.Context, id string, d time.Duration) (Sandbox, error) {
	var body any
	if d > 0 {
		body = map[string]string{"duration": d.String()}
	}
	var sb Sandbox
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "keepalive"), nil, body, &sb)
	return sb, err
}

// ServiceState is a service with its state in the sandbox.
type ServiceState struct {
	Name      string            `json:"name"`
	Source    string            `json:"source"` // declared, or image for "main"
	Note      string            `json:"note,omitempty"`
	Cmd       []string          `json:"cmd,omitempty"`
	Cwd       string            `json:"cwd,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Port      int               `json:"port,omitempty"`
	State     string            `json:"state"`
	PID       int               `json:"pid,omitempty"`
	Restarts  int               `json:"restarts"`
	StartedAt string            `json:"started_at,omitempty"`
	LastExit  *struct {
		Code   int    `json:"code"`
		Signal string `json:"signal,omitempty"`
		At     string `json:"at"`
	} `json:"last_exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// Services answers the sandbox's services with their states.
func (c *Client) Services(ctx context.Context, id string) ([]ServiceState, error) {
	var out struct {
		Services []ServiceState `json:"services"`
	}
	err := c.do(ctx, http.MethodGet, sandboxPath(id, "services"), nil, nil, &out)
	return out.Services, err
}

// Image is an image sandboxes use, with the agents it carries.
type Image struct {
	Image       string   `json:"image"`
	Present     bool     `json:"present"`
	Default     bool     `json:"default"`
	Agents      []string `json:"agents"`
	Missing     []string `json:"missing"`
	AgentsKnown bool     `json:"agents_known"`
}

// Images answers the default image and every image a sandbox uses.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out struct {
		Images []Image `json:"images"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/images", nil, nil, &out)
	return out.Images, err
}

// PreviewToken is a URL that opens a private port's preview for a while.
type PreviewToken struct {
	Token     string    `json:"token"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PreviewToken mints a token for port valid for ttl (0: the server's default). A server
// without preview tokens answers an error that errors.Is ErrNoRoute.
func (c *Client) PreviewToken(ctx context.Context, id string, port int, ttl time.Duration) (PreviewToken, error) {
	body := map[string]any{"port": port}
	if ttl > 0 {
		body["ttl"] = ttl.String()
	}
	var pt PreviewToken
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "preview-tokens"), nil, body, &pt)
	return pt, err
}

// ServerVersion is the version of the sandboxd answering, from its OpenAPI document.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	var doc struct {
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/openapi.json", nil, nil, &doc)
	return doc.Info.Version, err
}
