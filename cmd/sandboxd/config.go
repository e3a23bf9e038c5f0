package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/internal/bytesize"
	"github.com/sandboxd/sandboxd/internal/timespan"
	"github.com/sandboxd/sandboxd/store"
)

// config is sandboxd's configuration: environment variables, each also a flag of
// `sandboxd serve` (a flag wins). Read once at start; every bad value names its variable.
type config struct {
	DataDir       string
	APIBind       string
	HTTPBind      string
	HTTPSBind     string
	E2BBind       string // "" : no E2B listener
	PreviewDomain string
	Image         string
	IdleTimeout   time.Duration
	WakeTimeout   time.Duration
	Network       string
	Tokens        []apikey.Token // nil when SANDBOXD_API_AUTH_DISABLED
	InitPath      string
	MaxStarts     int
	WakeMinMemory int64
	PressureBelow int64
	NoFile        int64
	ProbeWindow   time.Duration
	ActivityEvery time.Duration
	LogLevel      string
	EnvFile       string    // SIGHUP re-reads SANDBOXD_API_TOKENS from it: reload.go
	TLS           tlsConfig // SANDBOXD_TLS and its variables: tls_config.go

	// Issue 13: tenants and the audit log.
	TenantMaxSandboxes int
	TenantMaxRunning   int
	AuditMaxRows       int
	// Issue 13: preview access.
	PreviewAccess string // public or private: the access of a sandbox that names none
	// issue 11: what a task may store; --adopt rebuilds rows after the database was lost.
	TaskEventsMax int64
	TaskLogMax    int64
	Adopt         bool
	// Issue 11: what a client can hold at the edge, and how many requests wait for a wake
	// (limits.go).
	OpenFiles           uint64 // the process's open-file limit (soft RLIMIT_NOFILE)
	EdgeMaxConns        int    // resolved: "auto" becomes edge.MaxConnsFor(OpenFiles)
	EdgeMaxConnsPerIP   int    // 0: no cap
	EdgeBodyMinRate     int64  // bytes per second
	EdgeBodyWindow      time.Duration
	EdgeHeaderTimeout   time.Duration
	WakeQueuePerSandbox int
	WakeQueueMax        int
	// Issue 12: disk quotas, uids, secrets at rest (isolation_config.go).
	Isolation isolationConfig
	// Issue 14: the Go garbage collector (gc.go). GCPercent -1 is off; MemoryLimit 0 is
	// none. Each is applied only when its variable was set or Go's own (GOGC, GOMEMLIMIT)
	// was not.
	GCPercent      int
	GCPercentSet   bool
	MemoryLimit    int64
	MemoryLimitSet bool

	// Issue 14: tiered sleep.
	StopAfter time.Duration // how long an idle sandbox stays paused before it is stopped; 0: no pause
	// Issue 15: egress (egress.go).
	Egress         string   // SANDBOXD_EGRESS: the mode of a sandbox created without one
	EgressAllow    []string // SANDBOXD_EGRESS_ALLOW, normalized: added to every sandbox's list
	EgressPort     int      // SANDBOXD_EGRESS_PROXY_PORT: the proxy's port on the internal gateway
	EgressResolver string   // SANDBOXD_EGRESS_RESOLVER: host:port of the proxy's DNS server; "" the system's
	// Issue 18: snapshots and task checkpoints kept per sandbox.
	SnapshotsMax      int
	TaskCheckpoints   int
	TaskCheckpointAge time.Duration

	// Warnings are logged once the JSON logger exists (serve); loadConfig runs before it.
	Warnings []warning
}

// warning is a log record of loadConfig's, for serve to log.
type warning struct {
	msg  string
	args []any
}

// setting is one variable: its name, flag, default and how to parse it.
type setting struct {
	env, flag, def, usage string
	parse                 func(v string) error
}

func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	var tokens, authDisabled string
	settings := []setting{
		{"SANDBOXD_DATA_DIR", "data-dir", "/var/lib/sandboxd", "workspaces, SQLite, certificates", func(v string) error {
			abs, err := filepath.Abs(v)
			c.DataDir = abs
			return err
		}},
		{"SANDBOXD_API_BIND", "api-bind", "127.0.0.1:9090", "admin API listener host:port", bindParser(&c.APIBind)},
		{"SANDBOXD_HTTP_BIND", "http-bind", ":80", "edge HTTP listener host:port", bindParser(&c.HTTPBind)},
		{"SANDBOXD_HTTPS_BIND", "https-bind", ":443", "edge HTTPS listener host:port (when TLS is on)", bindParser(&c.HTTPSBind)},
		{"SANDBOXD_E2B_BIND", "e2b-bind", "", "E2B API and envd listener host:port (off when empty)", func(v string) error {
			if v == "" {
				return nil
			}
			return bindParser(&c.E2BBind)(v)
		}},
		{"PREVIEW_DOMAIN", "preview-domain", "localhost", "preview hosts are s-<id>-<port>.preview.<domain>", func(v string) error {
			v = strings.ToLower(strings.TrimSuffix(v, "."))
			if !validDomain(v) {
				return fmt.Errorf("want a DNS name like example.com")
			}
			c.PreviewDomain = v
			return nil
		}},
		{"SANDBOXD_IMAGE", "image", "sandboxd/base:latest", "default sandbox image", strParser(&c.Image)},
		{"SANDBOXD_IDLE_TIMEOUT", "idle-timeout", "15m", "pause a sandbox after this long without activity (SANDBOXD_STOP_AFTER later stops it)", durParser(&c.IdleTimeout, time.Second)},
		{"SANDBOXD_WAKE_TIMEOUT", "wake-timeout", "60s", "longest a request is held while its sandbox starts", durParser(&c.WakeTimeout, time.Second)},
		{"SANDBOXD_NETWORK", "network", "sandboxd", "Docker bridge network for sandboxes", func(v string) error {
			if v == "" || strings.ContainsAny(v, "/ \t") {
				return fmt.Errorf("want a Docker network name")
			}
			c.Network = v
			return nil
		}},
		{"SANDBOXD_API_TOKENS", "api-tokens", "", "name:secret (admin) and name:secret:tenant=<tenant>, comma-separated: bearer tokens for the admin API", strParser(&tokens)},
		{"SANDBOXD_API_AUTH_DISABLED", "api-auth-disabled", "", "true to serve the API without tokens beyond loopback", strParser(&authDisabled)},
		{"SANDBOXD_INIT_PATH", "init-path", "", "host path of sandbox-init (default: next to sandboxd)", strParser(&c.InitPath)},
		{"SANDBOXD_MAX_STARTS", "max-starts", "4", "sandbox starts in flight at once", intParser(&c.MaxStarts)},
		{"SANDBOXD_WAKE_MIN_MEMORY", "wake-min-memory", "512MiB", "refuse to start a sandbox while MemAvailable is below this", sizeParser(&c.WakeMinMemory)},
		{"SANDBOXD_PRESSURE_MEMORY", "pressure-memory", "1GiB", "stop the least active sandboxes while MemAvailable is below this (0 disables)", sizeParser(&c.PressureBelow)},
		{"SANDBOXD_PROBE_WINDOW", "probe-window", "10s", "how long a request to a running sandbox waits for its port to open", durParser(&c.ProbeWindow, 100*time.Millisecond)},
		{"SANDBOXD_ACTIVITY_INTERVAL", "activity-interval", "10s", "how often activity is sampled and idle sandboxes are paused or stopped", durParser(&c.ActivityEvery, 50*time.Millisecond)},
		{"SANDBOXD_NOFILE", "nofile", "65536", "open-file limit of each sandbox (capped at this host's hard limit)", func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 64 {
				return fmt.Errorf("want a whole number ≥ 64")
			}
			c.NoFile = n
			return nil
		}},
		{"SANDBOXD_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error")
		}},
		{"SANDBOXD_ENV_FILE", "env-file", "", "KEY=VALUE file (systemd's EnvironmentFile) that SIGHUP re-reads SANDBOXD_API_TOKENS from", func(v string) error {
			if v == "" {
				return nil
			}
			if _, err := readEnvFile(v); err != nil {
				return fmt.Errorf("want a readable file of KEY=VALUE lines: %v", err)
			}
			c.EnvFile = v
			return nil
		}},

		// Issue 13: preview access.
		{"SANDBOXD_PREVIEW_ACCESS", "preview-access", "public", "who may open a preview that names no access: public (anyone with the URL) or private (only with a preview token)", func(v string) error {
			if v != store.AccessPublic && v != store.AccessPrivate {
				return fmt.Errorf("want public or private")
			}
			c.PreviewAccess = v
			return nil
		}},
	}
	// issue 11: host state per sandbox is bounded.
	settings = append(settings,
		setting{"SANDBOXD_TASK_EVENTS_MAX", "task-events-max", "10000", "events stored per task; the rest are dropped after one \"truncated\" event", func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 10 || n > 1e7 {
				return fmt.Errorf("want a whole number from 10 to 10000000")
			}
			c.TaskEventsMax = n
			return nil
		}},
		setting{"SANDBOXD_TASK_LOG_MAX", "task-log-max", "16MiB", "bytes of events stored per task, the same way", func(v string) error {
			n, err := bytesize.Parse(v)
			if err != nil || n < 4<<10 || n > 1<<40 {
				return fmt.Errorf("want a size from 4KiB to 1TiB, like 16MiB")
			}
			c.TaskLogMax = n
			return nil
		}},
	)
	// Issue 14: tiered sleep.
	settings = append(settings,
		setting{"SANDBOXD_STOP_AFTER", "stop-after", "2h", "stop a sandbox paused (idle) this long; 0 stops idle sandboxes at once, without pausing them",
			durParser(&c.StopAfter, 0)},
	)
	settings = append(settings, tlsSettings(&c.TLS)...)
	settings = append(settings,
		// Issue 13: per-tenant limits and the audit log's size.
		setting{"SANDBOXD_TENANT_MAX_SANDBOXES", "tenant-max-sandboxes", "0", "sandboxes one tenant may have, in any state (0: no limit)", countParser(&c.TenantMaxSandboxes)},
		setting{"SANDBOXD_TENANT_MAX_RUNNING", "tenant-max-running", "0", "sandboxes of one tenant that may run at once (0: no limit)", countParser(&c.TenantMaxRunning)},
		setting{"SANDBOXD_AUDIT_MAX_ROWS", "audit-max-rows", "200000", "audit log lines kept; the oldest are dropped first", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1000 {
				return fmt.Errorf("want a whole number ≥ 1000")
			}
			c.AuditMaxRows = n
			return nil
		}},
	)
	settings = append(settings, limitSettings(c)...)
	settings = append(settings, isolationSettings(&c.Isolation)...) // issue 12
	settings = append(settings, egressSettings(c)...)               // issue 15
	settings = append(settings,
		// Issue 18: snapshots and the checkpoint before every task.
		setting{"SANDBOXD_SNAPSHOTS_MAX", "snapshots-max", "20", "snapshots one sandbox may hold (task checkpoints aside)", intParser(&c.SnapshotsMax)},
		setting{"SANDBOXD_TASK_CHECKPOINTS", "task-checkpoints", "20", "task checkpoints kept per sandbox, the newest; older ones are pruned", intParser(&c.TaskCheckpoints)},
		setting{"SANDBOXD_TASK_CHECKPOINT_AGE", "task-checkpoint-age", "168h", "age past which a task checkpoint is pruned", durParser(&c.TaskCheckpointAge, time.Minute)},
	)

	settings = append(settings,
		// Issue 14: the garbage collector (gc.go).
		setting{"SANDBOXD_GOGC", "gogc", "100", "Go GC target: heap growth in percent between collections, or off (wins over GOGC)", func(v string) error {
			if v == "off" {
				c.GCPercent = -1
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 10 || n > 10000 {
				return fmt.Errorf("want a percentage from 10 to 10000, or off")
			}
			c.GCPercent = n
			return nil
		}},
		setting{"SANDBOXD_GOMEMLIMIT", "gomemlimit", "off", "soft memory limit of the Go heap, like 2GiB, or off (wins over GOMEMLIMIT)", func(v string) error {
			if v == "off" {
				c.MemoryLimit = 0
				return nil
			}
			n, err := bytesize.Parse(v)
			if err != nil || n < 64<<20 {
				return fmt.Errorf("want a size of at least 64MiB, like 2GiB, or off")
			}
			c.MemoryLimit = n
			return nil
		}},
	)

	fs := flag.NewFlagSet("sandboxd serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := map[string]*string{}
	for _, s := range settings {
		flags[s.env] = fs.String(s.flag, "", s.usage+" (env "+s.env+", default "+strconv.Quote(s.def)+")")
	}
	adopt := fs.Bool("adopt", false, "rebuild the sandboxes that have a container or a saved config but no row in the database, instead of removing their containers: the recovery after the database was lost (README, \"Backup and restore\")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.Adopt = *adopt
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	explicit := map[string]bool{} // set by the operator, not defaulted
	for _, s := range settings {
		v, from := s.def, s.env
		if e := getenv(s.env); e != "" {
			v = e
			explicit[s.env] = true
		}
		if given[s.flag] {
			v, from = *flags[s.env], "--"+s.flag
			explicit[s.env] = true
		}
		if err := s.parse(v); err != nil {
			return nil, fmt.Errorf("%s=%q: %v", from, v, err)
		}
	}

	// Issue 14: sandboxd's defaults win over none, not over Go's own variables.
	c.GCPercentSet = explicit["SANDBOXD_GOGC"] || getenv("GOGC") == ""
	c.MemoryLimitSet = explicit["SANDBOXD_GOMEMLIMIT"] || getenv("GOMEMLIMIT") == ""

	var err error
	if c.Tokens, err = apiAuth(tokens, authDisabled, c.APIBind); err != nil {
		return nil, err
	}
	authOff := authDisabled == "true" || authDisabled == "1" || authDisabled == "yes" // as apiAuth reads it
	if c.E2BBind != "" && len(c.Tokens) == 0 && !authOff && !loopbackBind(c.E2BBind) {
		return nil, fmt.Errorf("SANDBOXD_E2B_BIND=%q is beyond loopback and SANDBOXD_API_TOKENS is empty: set tokens (the E2B API takes them as API keys), or SANDBOXD_API_AUTH_DISABLED=true to serve it to anyone", c.E2BBind)
	}
	if err := c.TLS.validate(c.PreviewDomain); err != nil {
		return nil, err
	}
	if err := c.validateIsolation("/etc/passwd", "/etc/subuid"); err != nil {
		return nil, err
	}
	c.OpenFiles = 1024 // what Linux gives a process unless told otherwise
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		c.capNoFile(lim.Max, explicit["SANDBOXD_NOFILE"])
		c.OpenFiles = lim.Cur
	}
	if err := c.resolveEdgeMaxConns(); err != nil {
		return nil, err
	}
	if c.InitPath == "" {
		if exe, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(exe), "sandbox-init"); fileExists(p) {
				c.InitPath = p
			}
		}
	} else if !fileExists(c.InitPath) {
		return nil, fmt.Errorf("SANDBOXD_INIT_PATH=%q: no such file", c.InitPath)
	}
	return c, nil
}

// validateIsolation checks issue 12's variables against the host's account files.
func (c *config) validateIsolation(passwdPath, subuidPath string) error {
	var passwd, subuid io.Reader
	if f := openIfPresent(passwdPath); f != nil {
		defer f.Close()
		passwd = f
	}
	if f := openIfPresent(subuidPath); f != nil {
		defer f.Close()
		subuid = f
	}
	warnings, err := c.Isolation.validate(passwd, subuid)
	c.Warnings = append(c.Warnings, warnings...)
	return err
}

// capNoFile lowers NoFile to hard, the host's hard limit of open files: a container cannot
// raise nofile past the engine's own (runc fails with "error setting rlimit"), and sandboxd
// runs beside dockerd, so its limit is the best guess. Only a value the operator set is
// worth a warning; the default is documented as capped (issue 10: every start with the
// defaults printed one, in plain text among the JSON logs).
func (c *config) capNoFile(hard uint64, explicit bool) {
	if hard >= uint64(c.NoFile) {
		return
	}
	if explicit {
		c.Warnings = append(c.Warnings, warning{"SANDBOXD_NOFILE is above this host's hard limit of open files; sandboxes get the limit",
			[]any{"nofile", c.NoFile, "limit", hard}})
	}
	c.NoFile = int64(hard)
}

// apiAuth validates SANDBOXD_API_TOKENS and SANDBOXD_API_AUTH_DISABLED for an API on
// apiBind, at start and on SIGHUP. Tokens are nil when auth is disabled.
func apiAuth(tokens, authDisabled, apiBind string) ([]apikey.Token, error) {
	parsed, err := apikey.Parse(tokens)
	if err != nil {
		return nil, fmt.Errorf("SANDBOXD_API_TOKENS: %v", err)
	}
	disabled := false
	switch authDisabled {
	case "":
	case "true", "1", "yes":
		disabled = true
	case "false", "0", "no":
	default:
		return nil, fmt.Errorf("SANDBOXD_API_AUTH_DISABLED=%q: want true or false", authDisabled)
	}
	if len(parsed) == 0 && !disabled && !loopbackBind(apiBind) {
		return nil, fmt.Errorf("SANDBOXD_API_BIND=%q is beyond loopback and SANDBOXD_API_TOKENS is empty: set tokens, or SANDBOXD_API_AUTH_DISABLED=true to serve the API to anyone", apiBind)
	}
	if disabled {
		return nil, nil
	}
	return parsed, nil
}

func strParser(dst *string) func(string) error {
	return func(v string) error { *dst = v; return nil }
}

func bindParser(dst *string) func(string) error {
	return func(v string) error {
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			return fmt.Errorf("want host:port, like 127.0.0.1:9090 or :80")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %q is not 0-65535", port)
		}
		if host != "" && host != "localhost" {
			if _, err := netip.ParseAddr(host); err != nil {
				return fmt.Errorf("host %q is not an IP address", host)
			}
		}
		*dst = v
		return nil
	}
}

func loopbackBind(bind string) bool {
	host, _, _ := net.SplitHostPort(bind)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func durParser(dst *time.Duration, min time.Duration) func(string) error {
	return func(v string) error {
		d, err := timespan.Parse(v)
		if err != nil {
			return fmt.Errorf("want a duration like 15m, 90s or 1d")
		}
		if d < min {
			return fmt.Errorf("must be at least %s", timespan.Format(min))
		}
		*dst = d
		return nil
	}
}

func countParser(dst *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number ≥ 0 (0: no limit)")
		}
		*dst = n
		return nil
	}
}

func intParser(dst *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a whole number ≥ 1")
		}
		*dst = n
		return nil
	}
}

func sizeParser(dst *int64) func(string) error {
	return func(v string) error {
		n, err := bytesize.Parse(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a size like 512MiB or 2G")
		}
		*dst = n
		return nil
	}
}

func validDomain(d string) bool {
	if d == "" || len(d) > 200 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
