package lifecycle

import (
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/timespan"
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

	// Issue 13: the tenant whose token creates it; "" for the operator. A tenant's id
	// starts with "<tenant>--" (tenant.go).
	Tenant string
	// BareID, with no ID, makes the id a bare lowercase ULID even for a tenant: E2B's SDKs
	// split hosts on "-" (issue 16). Only sandboxd's own adapters set it. A tenant can
	// never ask for a bare id, so one made here is never claimable by another tenant.
	BareID bool
	// Issue 13: who may open its previews; an access left out is the operator's default.
	Previews store.Previews
	// Issue 12: the disk quota in bytes; 0 takes Config.DiskQuota.
	DiskBytes int64

	// Issue 14: tiered sleep and the wake policy.
	WakeOn    string        // store.WakeOnNavigation (the default) or store.WakeOnAny
	StopAfter time.Duration // paused this long, it is stopped; 0: the operator's default
	// Issue 15: the egress policy. Egress "" takes the operator's default
	// (Config.Egress); Allow is the sandbox's own allowlist.
	Egress string
	Allow  []string
	// Issue 18: start from a snapshot (its id) or a template (its name): the workspace is a
	// copy of it and the config its, which the fields above override when set (env and
	// labels key by key). A tenant may name its own sandboxes' snapshots and any template.
	From     string
	Template string
}

// normalize validates req against the operator's limits and fills defaults. It touches
// nothing, so a rejected request changes nothing.
func (m *Manager) normalize(req *CreateRequest) error {
	if req.ID != "" && !ValidID(req.ID) {
		return errorf(CodeInvalid, "id %q is invalid: use 1-40 lowercase letters, digits and inner dashes", req.ID)
	}
	if err := checkTenantID(req); err != nil {
		return err
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
	if err := m.checkDiskRequest(req); err != nil {
		return err
	}
	switch {
	case req.NanoCPUs == 0:
		req.NanoCPUs = m.cfg.NanoCPUs
	case req.NanoCPUs < 1e7 || req.NanoCPUs > m.cfg.MaxNanoCPUs:
		return errorf(CodeInvalid, "cpus must be between 0.01 and %g", float64(m.cfg.MaxNanoCPUs)/1e9)
	}
	if req.IdleTimeout < 0 || req.IdleTimeout > maxIdleTimeout {
		return errorf(CodeInvalid, "idle_timeout must be between 0 and %s", timespan.Format(maxIdleTimeout))
	}
	switch req.IdlePolicy {
	case "":
		req.IdlePolicy = store.IdleSleep
	case store.IdleSleep, store.IdleAlwaysOn:
	default:
		return errorf(CodeInvalid, "idle_policy must be %q or %q", store.IdleSleep, store.IdleAlwaysOn)
	}
	switch req.WakeOn {
	case "":
		req.WakeOn = store.WakeOnNavigation
	case store.WakeOnNavigation, store.WakeOnAny:
	default:
		return errorf(CodeInvalid, "wake_on must be %q or %q; got %q", store.WakeOnNavigation, store.WakeOnAny, req.WakeOn)
	}
	if req.StopAfter < 0 || req.StopAfter > maxIdleTimeout {
		return errorf(CodeInvalid, "stop_after must be between 0 (the default) and %s; got %s", timespan.Format(maxIdleTimeout), timespan.Format(req.StopAfter))
	}
	switch req.HostHeader {
	case "", "preview":
		req.HostHeader = ""
	case "localhost":
	default:
		return errorf(CodeInvalid, `host_header must be "preview" or "localhost"`)
	}
	if err := checkEnv("env", req.Env); err != nil {
		return err
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
	return validPreviews(&req.Previews, req.Ports, m.cfg.PreviewAccess)
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

// validEnv checks the env of an exec, terminal or task as create's.
func validEnv(env map[string]string) error { return checkEnv("env", env) }

// Rules for what reaches a process (issue 11: a service env value with a NUL byte was
// accepted, and the service then never started). A NUL ends a C string, so no argv item,
// env name or value, path or name may hold one. Newlines are fine where a program expects
// text (argv items, env values: a PEM key spans lines) and refused where they would split a
// record or a line of a log: env names, service names, labels and working directories.

// checkEnv checks an env named field (env, services[web].env): at most maxEnv variables,
// names of letters, digits and _ not starting with a digit, values without NUL and at most
// maxEnvValue bytes.
func checkEnv(field string, env map[string]string) error {
	if len(env) > maxEnv {
		return errorf(CodeInvalid, "%s has %d variables; at most %d are allowed", field, len(env), maxEnv)
	}
	for k, v := range env {
		switch {
		case !envKeyPattern.MatchString(k):
			return errorf(CodeInvalid, "%s name %q is invalid: use 1-128 letters, digits and _, not starting with a digit", field, k)
		case strings.IndexByte(v, 0) >= 0:
			return errorf(CodeInvalid, "%s.%s holds a NUL byte, which no environment can carry", field, k)
		case len(v) > maxEnvValue:
			return errorf(CodeInvalid, "%s.%s is %d bytes; at most %d are allowed", field, k, len(v), maxEnvValue)
		}
	}
	return nil
}

// checkArgv checks an argv named field: not empty, a program first, no NUL in any item.
func checkArgv(field string, argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return errorf(CodeInvalid, "%s must be a non-empty argv, like [\"sh\",\"-c\",\"echo hi\"]", field)
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return errorf(CodeInvalid, "%s[%d] holds a NUL byte, which no argv can carry", field, i)
		}
	}
	return nil
}

// checkCwd checks a working directory named field: no NUL, no line break.
func checkCwd(field, cwd string) error {
	if strings.ContainsAny(cwd, "\x00\n\r") {
		return errorf(CodeInvalid, "%s %q holds a NUL byte or a line break; a working directory may hold neither", field, cwd)
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
	for i, s := range services {
		if !serviceName.MatchString(s.Name) || s.Name == "main" {
			return errorf(CodeInvalid, "services[%d].name %q is invalid: use 1-32 of a-z 0-9 _ -, starting with a letter or digit, not \"main\"", i, s.Name)
		}
		if names[s.Name] {
			return errorf(CodeInvalid, "service %q is declared twice", s.Name)
		}
		names[s.Name] = true
		field := "services[" + s.Name + "]"
		if err := checkArgv(field+".cmd", s.Cmd); err != nil {
			return err
		}
		if err := checkCwd(field+".cwd", s.Cwd); err != nil {
			return err
		}
		if s.Cwd != "" && (path.IsAbs(s.Cwd) || strings.HasPrefix(path.Clean(s.Cwd), "..")) {
			return errorf(CodeInvalid, "%s.cwd must be relative to the home, like \"workspace/app\"; got %q", field, s.Cwd)
		}
		if err := checkEnv(field+".env", s.Env); err != nil {
			return err
		}
		if s.Port < 0 || s.Port > 65535 {
			return errorf(CodeInvalid, "%s.port %d is out of range 1-65535", field, s.Port)
		}
	}
	return nil
}
