package lifecycle

import (
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

var (
	idPattern      = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$`)
	envKeyPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	labelPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	serviceName    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	imagePattern   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$`)
	maxPorts       = 32
	maxEnv         = 256
	maxEnvValue    = 32 << 10
	maxServices    = 16
	maxIdleTimeout = 7 * 24 * time.Hour
)

// ValidID reports whether id is a well-formed sandbox id. Every id is checked with it before
// it reaches a path, a container name or a query.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// CreateRequest describes a new sandbox. Zero values take the operator's defaults.
type CreateRequest struct {
	ID          string
	Image       string
	Ports       []int
	Env         map[string]string
	Labels      map[string]string
	MemoryBytes int64
	NanoCPUs    int64
	IdleTimeout time.Duration
	IdlePolicy  string
	HostHeader  string
	Services    []store.Service

	// Issue 15: the egress policy. Egress "" takes the operator's default
	// (Config.Egress); Allow is the sandbox's own allowlist.
	Egress string
	Allow  []string
}

// normalize validates req against the operator's limits and fills defaults. It touches
// nothing, so a rejected request changes nothing.
func (m *Manager) normalize(req *CreateRequest) error {
	if req.ID != "" && !ValidID(req.ID) {
		return errorf(CodeInvalid, "id %q is invalid: use 1-40 lowercase letters, digits and inner dashes", req.ID)
	}
	if req.Image == "" {
		req.Image = m.cfg.Image
	}
	if !imagePattern.MatchString(req.Image) {
		return errorf(CodeInvalid, "image %q is not a valid image reference", req.Image)
	}
	if err := m.checkMemory(req); err != nil {
		return err
	}
	switch {
	case req.NanoCPUs == 0:
		req.NanoCPUs = m.cfg.NanoCPUs
	case req.NanoCPUs < 1e7 || req.NanoCPUs > m.cfg.MaxNanoCPUs:
		return errorf(CodeInvalid, "cpus must be between 0.01 and %g", float64(m.cfg.MaxNanoCPUs)/1e9)
	}
	if req.IdleTimeout < 0 || req.IdleTimeout > maxIdleTimeout {
		return errorf(CodeInvalid, "idle_timeout must be between 0 and %s", maxIdleTimeout)
	}
	switch req.IdlePolicy {
	case "":
		req.IdlePolicy = store.IdleSleep
	case store.IdleSleep, store.IdleAlwaysOn:
	default:
		return errorf(CodeInvalid, "idle_policy must be %q or %q", store.IdleSleep, store.IdleAlwaysOn)
	}
	switch req.HostHeader {
	case "", "preview":
		req.HostHeader = ""
	case "localhost":
	default:
		return errorf(CodeInvalid, `host_header must be "preview" or "localhost"`)
	}
	if len(req.Env) > maxEnv {
		return errorf(CodeInvalid, "at most %d env variables", maxEnv)
	}
	for k, v := range req.Env {
		if !envKeyPattern.MatchString(k) {
			return errorf(CodeInvalid, "env name %q is invalid", k)
		}
		if len(v) > maxEnvValue || strings.IndexByte(v, 0) >= 0 {
			return errorf(CodeInvalid, "env %s: value too long or contains NUL", k)
		}
	}
	for k, v := range req.Labels {
		if !labelPattern.MatchString(k) || len(v) > 256 || strings.ContainsAny(v, "\x00\n\r") {
			return errorf(CodeInvalid, "label %q is invalid", k)
		}
	}
	if err := validServices(req.Services); err != nil {
		return err
	}
	ports, err := normalizePorts(req.Ports, req.Services)
	if err != nil {
		return err
	}
	req.Ports = ports
	// Issue 15.
	if req.Egress, req.Allow, err = m.normalizeNetwork("network.", req.Egress, req.Allow); err != nil {
		return err
	}
	return nil
}

// minMemory is the smallest memory limit a sandbox may have: below it, sandbox-init and a
// shell barely start.
const minMemory = 64 << 20

// checkMemory fills in the default memory limit, or checks the one asked for against the
// minimum and the ceiling, naming both in its error.
func (m *Manager) checkMemory(req *CreateRequest) error {
	switch {
	case req.MemoryBytes == 0:
		req.MemoryBytes = m.cfg.Memory
	case req.MemoryBytes < minMemory:
		return errorf(CodeInvalid, "memory %s is less than the minimum of %s", formatBytes(req.MemoryBytes), formatBytes(minMemory))
	case req.MemoryBytes > m.cfg.MaxMemory && m.maxMemoryIsHost:
		return errorf(CodeInvalid, "memory %s is more than this host's %s", formatBytes(req.MemoryBytes), formatBytes(m.cfg.MaxMemory))
	case req.MemoryBytes > m.cfg.MaxMemory:
		return errorf(CodeInvalid, "memory %s is more than the limit of %s", formatBytes(req.MemoryBytes), formatBytes(m.cfg.MaxMemory))
	}
	return nil
}

// validEnv checks the env of an exec, terminal or task: names as for create, values
// without NUL.
func validEnv(env map[string]string) error {
	for k, v := range env {
		if !envKeyPattern.MatchString(k) || strings.IndexByte(v, 0) >= 0 {
			return errorf(CodeInvalid, "env %q is invalid", k)
		}
	}
	return nil
}

// normalizePorts checks the declared ports and adds each service's port, so a service's
// preview URL always exists.
func normalizePorts(declared []int, services []store.Service) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	add := func(p int) error {
		if p < 1 || p > 65535 {
			return errorf(CodeInvalid, "port %d is out of range 1-65535", p)
		}
		if p == initproto.RelayPort {
			return errorf(CodeInvalid, "port %d is reserved for sandboxd", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
		return nil
	}
	for _, p := range declared {
		if seen[p] {
			return nil, errorf(CodeInvalid, "port %d is declared twice", p)
		}
		if err := add(p); err != nil {
			return nil, err
		}
	}
	for _, s := range services {
		if s.Port != 0 {
			if err := add(s.Port); err != nil {
				return nil, err
			}
		}
	}
	if len(out) > maxPorts {
		return nil, errorf(CodeInvalid, "at most %d ports", maxPorts)
	}
	sort.Ints(out)
	return out, nil
}

func validServices(services []store.Service) error {
	if len(services) > maxServices {
		return errorf(CodeInvalid, "at most %d services", maxServices)
	}
	names := map[string]bool{}
	for _, s := range services {
		if !serviceName.MatchString(s.Name) || s.Name == "main" {
			return errorf(CodeInvalid, "service name %q is invalid (1-32 of a-z 0-9 _ -, not \"main\")", s.Name)
		}
		if names[s.Name] {
			return errorf(CodeInvalid, "service %q is declared twice", s.Name)
		}
		names[s.Name] = true
		if len(s.Cmd) == 0 || s.Cmd[0] == "" {
			return errorf(CodeInvalid, "service %q needs a cmd", s.Name)
		}
		for _, a := range s.Cmd {
			if strings.IndexByte(a, 0) >= 0 {
				return errorf(CodeInvalid, "service %q: cmd contains NUL", s.Name)
			}
		}
		if s.Cwd != "" && (path.IsAbs(s.Cwd) || strings.HasPrefix(path.Clean(s.Cwd), "..") || strings.IndexByte(s.Cwd, 0) >= 0) {
			return errorf(CodeInvalid, "service %q: cwd must be relative to the home", s.Name)
		}
		for k := range s.Env {
			if !envKeyPattern.MatchString(k) {
				return errorf(CodeInvalid, "service %q: env name %q is invalid", s.Name, k)
			}
		}
		if s.Port < 0 || s.Port > 65535 {
			return errorf(CodeInvalid, "service %q: port %d is out of range", s.Name, s.Port)
		}
	}
	return nil
}
