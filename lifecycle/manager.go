// Package lifecycle is the sandbox state machine over Docker: create, start, stop, remove,
// exec, workspaces and container hardening, reconcile with the engine, activity and the
// idle and memory-pressure reapers. Agent tasks run in package lifecycle/task, over the
// few methods of agent_exec.go.
//
// SQLite (package store) holds what should exist; Docker is the truth of what runs. Every
// change goes to the store first and to the route table last, so the edge never routes to a
// container the store does not know. One operation runs at a time per sandbox; different
// sandboxes proceed in parallel.
package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/store"
)

// Config is the operator's configuration of sandboxes.
type Config struct {
	DataDir  string // workspaces in DataDir/workspaces, per-sandbox run dirs in DataDir/run
	Network  string // Docker bridge network for sandboxes; created with ICC off when absent
	Image    string // default image
	InitPath string // host path of sandbox-init, run as PID 1; "" uses Docker's own init

	Memory      int64 // default memory limit in bytes
	MaxMemory   int64 // largest memory limit a sandbox may ask for; 0 means this host's MemTotal
	NanoCPUs    int64 // default CPU limit
	MaxNanoCPUs int64
	Pids        int64
	NoFile      int64

	// Issue 15: egress. InternalNetwork, when set, is a Docker network with no route out
	// (internal, ICC off) that every sandbox joins: its address there is the one routes
	// use, and a sandbox in mode open joins Network too for its route out. "" keeps every
	// sandbox on Network, open, as before (tests that need no egress leave it so).
	InternalNetwork string
	Egress          string // mode of a sandbox created without one; "" means open

	IdleTimeout   time.Duration // default idle timeout
	StopTimeout   time.Duration // grace between SIGTERM and SIGKILL on stop
	PressureBelow uint64        // stop sandboxes while MemAvailable is below this; 0 disables

	// Issue 13: per-tenant limits; zero is no limit. The operator's sandboxes have none.
	TenantMaxSandboxes int // sandboxes a tenant may have, in any state
	TenantMaxRunning   int // sandboxes of a tenant that may run (or start) at once
	// PreviewAccess is the preview access of a sandbox that names none (issue 13):
	// store.AccessPublic or store.AccessPrivate.
	PreviewAccess string
	// Issue 12: disk quotas (disk.go) and a uid per sandbox (uid.go).
	DiskQuota     int64         // default disk quota of a sandbox in bytes; 0: none
	MaxDiskQuota  int64         // largest quota a create may ask for; 0: DiskQuota
	InodeQuota    int64         // files and directories per sandbox; 0: no limit
	DiskScanEvery time.Duration // how often the quota scan runs; 0: every minute (stretched to stay under 1% of a CPU)
	UIDFirst      int           // sandbox uids come from UIDFirst-UIDLast; 0: every sandbox runs as uid 1000, as before issue 12
	UIDLast       int

	// StopAfter is how long an idle sandbox stays paused before it is stopped (issue 14).
	// 0 turns the pause tier off: idle sandboxes stop at once, and one paused through the
	// API stays paused until woken or memory runs short.
	StopAfter time.Duration
	// Issue 18: snapshots. SnapshotsMax is the snapshots a sandbox may hold (0:
	// DefaultSnapshotsMax); TaskCheckpoints the task checkpoints kept per sandbox, the
	// newest (0: DefaultTaskCheckpoints; SANDBOXD_TASK_CHECKPOINTS); TaskCheckpointAge
	// the age past which one is pruned (0: DefaultTaskCheckpointAge).
	SnapshotsMax      int
	TaskCheckpoints   int
	TaskCheckpointAge time.Duration
}

// DefaultConfig returns the defaults of DESIGN.md for dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir: dataDir, Network: "sandboxd", Image: "sandboxd/base:latest",
		Memory: 4 << 30, NanoCPUs: 2e9, MaxNanoCPUs: 64e9,
		Pids: 1024, NoFile: 65536, IdleTimeout: 15 * time.Minute, StopTimeout: 10 * time.Second,
		PreviewAccess: store.AccessPublic,
		DiskQuota:     10 << 30, InodeQuota: 1_000_000, UIDFirst: 200000, UIDLast: 299999,
		StopAfter: 2 * time.Hour,
	}
}

// Route is what the edge needs to reach a sandbox. Bytes is the sandbox's activity counter:
// the edge adds every byte it proxies in either direction.
type Route struct {
	ID         string
	Status     string
	IP         netip.Addr // valid while Status is running
	Ports      []int
	HostHeader string
	Bytes      *atomic.Int64
	Message    string // why, when Status is error

	// Issue 13: who may open its previews, Access resolved against the operator's
	// default, and the key its preview tokens are verified with (nil: none yet).
	Previews   store.Previews
	PreviewKey []byte

	WakeOn string // store.WakeOnNavigation or store.WakeOnAny (issue 14)
	// Issue 15: the egress policy, for the egress proxy, which knows the sandbox by IP.
	Egress string   // none, proxy or open
	Allow  []string // the sandbox's own allowlist; the proxy adds the operator's
}

// RouteSink receives route changes. Calls for one sandbox arrive in order.
type RouteSink interface {
	SetRoute(Route)
	DeleteRoute(id string)
}

// Observer is told what the Manager does, for metrics. Every field is optional and must be
// cheap and safe for concurrent use.
type Observer struct {
	Stopped func(reason string)              // a sandbox stopped: api, idle, stop_after or pressure
	Paused  func(reason string)              // a sandbox paused: api or idle
	Timed   func(op string, d time.Duration) // create (to running), start or unpause took d
}

// Manager runs sandboxes on one Docker engine. It is safe for concurrent use.
type Manager struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Routes is told about every route change; nil means no edge.
	Routes RouteSink
	// MemAvailable reads the host's available memory (cmd/sandboxd passes
	// wake.ReadMemAvailable); nil disables the memory-pressure reaper.
	MemAvailable func() (uint64, error)
	// Observe receives events for metrics; its nil fields are skipped.
	Observe Observer
	// Hook, when set, is called at named points of create and stop. Tests use it to crash
	// sandboxd at a chosen instant.
	Hook func(point string)
	// AdoptOrphans makes Boot rebuild the row of every container of this instance, and of
	// every saved sandbox config, that has none, instead of removing the container as an
	// orphan: `sandboxd serve --adopt`, after the database was lost (adopt.go; issue 11).
	// Without it Boot adopts only a container that has a saved config.
	AdoptOrphans bool
	// EgressProxy is where sandboxes reach the egress proxy (issue 15): the internal
	// network's gateway and the proxy's port. When valid, every container is made with
	// HTTP_PROXY, HTTPS_PROXY and NO_PROXY (and their lowercase forms) pointing at it,
	// whatever its mode, so a mode change later needs no restart. Set before serving.
	EgressProxy netip.AddrPort

	db       *store.DB
	docker   *client.Client
	cfg      Config
	log      *slog.Logger
	instance string // label value scoping containers to this data dir

	maxMemoryIsHost bool // cfg.MaxMemory is the host's MemTotal, not the operator's

	locks        keyedMutex
	tenantStarts tenantStarts // running slots reserved by starts in flight (tenant.go)

	mu        sync.RWMutex
	sandboxes map[string]*live

	networkOK atomic.Bool
	nets      atomic.Pointer[Networks] // set with networkOK

	disk     diskFS       // set by Boot
	lastScan atomic.Int64 // duration of the last quota scan
	accounts accountCache // images' /etc/passwd and /etc/group

	// Detached-exec watchers: owned here, joined by Run's end.
	base       context.Context
	cancelBase context.CancelFunc

	detachedExecs detachedSet

	// issue 11: deaths reported by the engine's events, until reconcile settles them
	// (death.go).
	deaths deaths

	snapCosts snapshotCosts // issue 18: what snapshots hold on disk (snapshot_disk.go)

	thaws thaws // sandboxd's recent thaws, for the engine's late "paused" (container_exec_create.go)
}

// live is the in-memory state of one sandbox: a cache of its row plus activity.
type live struct {
	bytes      atomic.Int64 // proxied bytes, added by the edge
	inflight   atomic.Int32 // execs and tasks running
	lastActive atomic.Int64 // unix nanoseconds
	keepalive  atomic.Int64 // unix nanoseconds: awake until then; only moves forward

	// guarded by Manager.mu
	sb        store.Sandbox
	seenBytes int64 // bytes at the last activity sample
	flushed   int64 // lastActive at the last flush to the store
	disk      diskState
}

// extendKeepalive moves l's keepalive to until unless it is already later, as the store's
// SetKeepalive does: callers may hold Manager.mu only for reading, so it compares and swaps.
func (l *live) extendKeepalive(until time.Time) {
	k := until.UnixNano()
	for {
		old := l.keepalive.Load()
		if k <= old || l.keepalive.CompareAndSwap(old, k) {
			return
		}
	}
}

// New returns a Manager. Call Boot before serving.
func New(db *store.DB, docker *client.Client, cfg Config, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	base, cancel := context.WithCancel(context.Background())
	var fromHost bool
	cfg.MaxMemory, fromHost = maxMemory(cfg.MaxMemory)
	return &Manager{
		db: db, docker: docker, cfg: cfg, log: log, maxMemoryIsHost: fromHost,
		instance:  InstanceOf(cfg.DataDir),
		sandboxes: map[string]*live{},
		base:      base, cancelBase: cancel,
		detachedExecs: detachedSet{byID: map[string]*detachedEntry{}},
	}
}

// InstanceOf is the sandboxd.instance label of the sandboxd whose data dir is dataDir: two
// data dirs on one engine never touch each other's containers.
func InstanceOf(dataDir string) string {
	abs, _ := filepath.Abs(dataDir)
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:12]
}

// Instance is the value of the sandboxd.instance label on this manager's containers.
func (m *Manager) Instance() string { return m.instance }

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) hook(point string) {
	if m.Hook != nil {
		m.Hook(point)
	}
}

// Running reports a running sandbox's container IP from memory.
func (m *Manager) Running(id string) (netip.Addr, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.sandboxes[id]
	if !ok || l.sb.Status != store.StatusRunning {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(l.sb.IP)
	return ip, err == nil
}

// cached returns the in-memory copy of a sandbox's row.
func (m *Manager) cached(id string) (store.Sandbox, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.sandboxes[id]
	if !ok {
		return store.Sandbox{}, false
	}
	return l.sb, true
}

// runningSandbox returns the cached row of a sandbox that runs: not found for an unknown
// id, a conflict for one that is not running (callers wake it first, so an exec never makes
// up an exit code).
func (m *Manager) runningSandbox(id string) (store.Sandbox, error) {
	sb, ok := m.cached(id)
	if !ok || !ValidID(id) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	if sb.Status != store.StatusRunning {
		// ErrNotRunning: a caller that woke it moments ago lost it since (the die event of a
		// kill 1 came first, or a stop), and wakes it once more (wake.Do).
		e := errorf(CodeConflict, "sandbox %s is %s, not running", id, sb.Status)
		e.Err = ErrNotRunning
		return store.Sandbox{}, e
	}
	return sb, nil
}

// remember caches sb and publishes its route.
func (m *Manager) remember(sb store.Sandbox) {
	// Memory holds the access in force; the row keeps "" so that a sandbox that never
	// chose follows the operator's default across restarts.
	sb.Previews.Access = m.previewAccess(sb)
	m.mu.Lock()
	l, ok := m.sandboxes[sb.ID]
	if !ok {
		l = &live{}
		active := sb.LastActiveAt
		if active.IsZero() {
			active = m.now()
		}
		l.lastActive.Store(active.UnixNano())
		l.flushed = active.UnixNano()
		m.sandboxes[sb.ID] = l
	}
	l.sb = sb
	// A row read before a concurrent keepalive must not take it back.
	if !sb.KeepaliveUntil.IsZero() {
		l.extendKeepalive(sb.KeepaliveUntil)
	}
	m.mu.Unlock()
	if m.Routes != nil {
		m.Routes.SetRoute(Route{
			ID: sb.ID, Status: sb.Status, IP: parseIP(sb.IP), Ports: sb.Ports,
			HostHeader: sb.HostHeader, Bytes: &l.bytes, Message: sb.Error,
			Previews: sb.Previews, PreviewKey: sb.PreviewKey,
			WakeOn: sb.WakeOn,
			Egress: egressOf(sb), Allow: sb.EgressAllow,
		})
	}
}

func (m *Manager) forget(id string) {
	m.mu.Lock()
	delete(m.sandboxes, id)
	m.mu.Unlock()
	if m.Routes != nil {
		m.Routes.DeleteRoute(id)
	}
}

// setRuntime stores rt for a sandbox and then updates memory and the route.
func (m *Manager) setRuntime(ctx context.Context, sb store.Sandbox, rt store.Runtime) (store.Sandbox, error) {
	if err := m.db.SetRuntime(ctx, sb.ID, rt, m.now()); err != nil {
		return sb, internal(err, "record state of %s", sb.ID)
	}
	sb.Status, sb.ContainerID, sb.IP, sb.Error = rt.Status, rt.ContainerID, rt.IP, rt.Error
	sb.PausedAt = time.Time{}
	if rt.Status == store.StatusPaused {
		sb.PausedAt = rt.PausedAt
	}
	sb.UpdatedAt = m.now()
	m.remember(sb)
	return sb, nil
}

func parseIP(s string) netip.Addr {
	ip, _ := netip.ParseAddr(s)
	return ip
}

// keyedMutex serializes operations per sandbox id. Entries are dropped when unused, so the
// map does not grow with every id ever seen.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{} // holds one token: the lock
	refs int
}

func (k *keyedMutex) entry(id string) *keyedEntry {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e, ok := k.m[id]
	if !ok {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		k.m[id] = e
	}
	e.refs++
	return e
}

func (k *keyedMutex) release(id string, e *keyedEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(k.m, id)
	}
}

// lock takes id's lock, waiting at most until ctx ends.
func (k *keyedMutex) lock(ctx context.Context, id string) (unlock func(), err error) {
	e := k.entry(id)
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; k.release(id, e) }, nil
	case <-ctx.Done():
		k.release(id, e)
		return nil, ctx.Err()
	}
}

// tryLock takes id's lock only when it is free.
func (k *keyedMutex) tryLock(id string) (unlock func(), ok bool) {
	e := k.entry(id)
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; k.release(id, e) }, true
	default:
		k.release(id, e)
		return nil, false
	}
}

// locked runs fn holding id's lock. The wait for the lock ends with ctx (a caller that gave
// up, or a wake that timed out, must not stay queued behind a slow stop); fn runs on a
// context the caller leaving cannot cancel: an operation that began finishes, so the
// sandbox is never left half-changed.
func (m *Manager) locked(ctx context.Context, id string, fn func(ctx context.Context) error) error {
	if !ValidID(id) {
		return errorf(CodeNotFound, "sandbox %q not found", id)
	}
	ctx, unlock, err := m.lockDetached(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	return fn(ctx)
}

// lockDetached takes id's lock, waiting at most until ctx ends, and returns the context
// the operation runs on: ctx's values without its cancellation (issue 10: detaching before
// the wait made the wait itself uncancellable).
func (m *Manager) lockDetached(ctx context.Context, id string) (context.Context, func(), error) {
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return context.WithoutCancel(ctx), unlock, nil
}

func (m *Manager) lock(ctx context.Context, id string) (func(), error) {
	unlock, err := m.locks.lock(ctx, id)
	if err != nil {
		return nil, errorf(CodeUnavailable, "sandbox %s is busy with another operation", id)
	}
	return unlock, nil
}

// CountByState counts sandboxes by state, from memory.
func (m *Manager) CountByState() map[string]int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]int{}
	for _, l := range m.sandboxes {
		out[l.sb.Status]++
	}
	return out
}
