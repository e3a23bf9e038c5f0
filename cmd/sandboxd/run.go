package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/admin"
	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/admin/e2b"
	"github.com/sandboxd/sandboxd/admin/mcp"
	"github.com/sandboxd/sandboxd/edge"
	"github.com/sandboxd/sandboxd/edge/egress"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/task"
	"github.com/sandboxd/sandboxd/store"
	"github.com/sandboxd/sandboxd/wake"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is sandboxd: main minus the process. End-to-end tests call it with :0 binds and a
// temporary data dir.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return runWith(ctx, args, getenv, stderr, testHooks{})
}

// testHooks are what only this package's tests can set: the production binary has no flag
// or variable that reaches them (issue 10). The crash tests run the test binary itself as
// sandboxd (harness_test.go) to kill it at a hook.
type testHooks struct {
	// lifecycle is lifecycle.Manager.Hook: called at named points of create, start and
	// stop. Nil in production.
	lifecycle func(point string)
}

// runWith is run with test hooks.
func runWith(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, hooks testHooks) error {
	// serve is one of the CLI's commands; every other is a client of a sandboxd's API
	// (cli.go).
	env := processEnv(getenv, stderr)
	env.serve = func(ctx context.Context, args []string) error { return serve(ctx, args, getenv, stderr, hooks) }
	env.backup = func(ctx context.Context, args []string) error { return backup(ctx, args, getenv, stderr) }
	return runCLI(ctx, args, env)
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, hooks testHooks) error {
	// Before the config, which sizes the edge from the limit.
	if err := raiseOpenFileLimit(); err != nil {
		return err
	}
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := newLogger(stderr, level)
	for _, w := range cfg.Warnings {
		log.Warn(w.msg, w.args...)
	}
	applyGC(cfg) // issue 14: SANDBOXD_GOGC, SANDBOXD_GOMEMLIMIT

	notify := newNotifier(getenv, log) // nil unless systemd's NOTIFY_SOCKET is set
	if cfg.InitPath == "" {
		log.Warn("sandbox-init not found next to sandboxd and SANDBOXD_INIT_PATH unset: sandboxes use Docker's init and run no services")
	}

	if err := ownDataDir(cfg.DataDir); err != nil {
		return err
	}
	sealer, err := secretsSealer(cfg)
	if err != nil {
		return err
	}
	met := newMetrics()
	docker, err := dockerClient(met)
	if err != nil {
		return err
	}
	defer docker.Close()
	db, err := openDatabase(ctx, cfg.DataDir, docker, cfg.Adopt, sealer, log)
	if err != nil {
		return err
	}
	defer db.Close()
	db.AuditMaxRows = cfg.AuditMaxRows

	lcfg := lifecycle.DefaultConfig(cfg.DataDir)
	lcfg.Network, lcfg.Image, lcfg.InitPath = cfg.Network, cfg.Image, cfg.InitPath
	lcfg.IdleTimeout, lcfg.PressureBelow, lcfg.NoFile = cfg.IdleTimeout, uint64(cfg.PressureBelow), cfg.NoFile
	lcfg.TenantMaxSandboxes, lcfg.TenantMaxRunning = cfg.TenantMaxSandboxes, cfg.TenantMaxRunning
	lcfg.PreviewAccess = cfg.PreviewAccess
	iso := cfg.Isolation // issue 12
	lcfg.DiskQuota, lcfg.MaxDiskQuota, lcfg.InodeQuota, lcfg.DiskScanEvery = iso.DiskQuota, iso.DiskQuotaMax, iso.InodeQuota, iso.DiskScanEvery
	lcfg.UIDFirst, lcfg.UIDLast = iso.UIDFirst, iso.UIDLast
	lcfg.StopAfter = cfg.StopAfter                                          // issue 14
	lcfg.InternalNetwork, lcfg.Egress = cfg.Network+"-internal", cfg.Egress // issue 15
	// Issue 18: snapshots and task checkpoints kept.
	lcfg.SnapshotsMax, lcfg.TaskCheckpoints, lcfg.TaskCheckpointAge = cfg.SnapshotsMax, cfg.TaskCheckpoints, cfg.TaskCheckpointAge
	mgr := lifecycle.New(db, docker, lcfg, log)
	mgr.Hook = hooks.lifecycle
	mgr.AdoptOrphans = cfg.Adopt
	table := edge.NewTable()
	egressProxy := newEgress(cfg, log)
	mgr.Routes = routes{t: table, egress: egressProxy}
	tasks := task.New(mgr, db, cfg.DataDir, log)
	tasks.MaxEvents, tasks.MaxEventBytes = cfg.TaskEventsMax, cfg.TaskLogMax
	defer tasks.Close() // a return before Run still joins the tasks Resume started

	waker := wake.New(mgr)
	waker.Timeout, waker.MaxStarts, waker.ProbeWindow = cfg.WakeTimeout, cfg.MaxStarts, cfg.ProbeWindow
	waker.MinMemAvailable = uint64(cfg.WakeMinMemory)
	waker.MaxWaitingPerSandbox, waker.MaxWaiting = cfg.WakeQueuePerSandbox, cfg.WakeQueueMax
	mgr.MemAvailable = wake.ReadMemAvailable
	waker.Log = log
	// Probes take the edge's way in, so a server bound to the sandbox's loopback is ready
	// when the relay reaches it.
	waker.Dial = (&edge.Dialer{RelayPort: initproto.RelayPort}).DialContext
	defer waker.Close()
	edgeSrv := edge.NewServer(cfg.PreviewDomain, table, waker, log)
	edgeSrv.RelayPort = initproto.RelayPort
	edgeSrv.MaxConns, edgeSrv.MaxConnsPerIP = cfg.EdgeMaxConns, cfg.EdgeMaxConnsPerIP
	if cfg.EdgeMaxConnsPerIP == 0 {
		edgeSrv.MaxConnsPerIP = -1 // the variable's 0 is "no cap"; the knob's is the default
	}
	edgeSrv.BodyMinRate, edgeSrv.BodyWindow = int(cfg.EdgeBodyMinRate), cfg.EdgeBodyWindow
	edgeSrv.ReadHeaderTimeout = cfg.EdgeHeaderTimeout
	log.Info("limits", "open_files", cfg.OpenFiles, "edge_max_conns", cfg.EdgeMaxConns, "edge_max_conns_per_ip", cfg.EdgeMaxConnsPerIP, "api_max_conns", apiMaxConns(cfg.OpenFiles),
		"wake_queue_per_sandbox", cfg.WakeQueuePerSandbox, "wake_queue_max", cfg.WakeQueueMax)
	edgeSrv.Services, edgeSrv.WakeTimeout = portServices{mgr}, cfg.WakeTimeout // issue 14: the starting page
	// Hooks are set before Boot and Resume: task runners it resumes report to them.
	met.wire(mgr, tasks, waker, edgeSrv)
	met.wireEgress(egressProxy)

	// Listen before the boot reconcile: a bind error surfaces at once, and requests that
	// arrive while reconciling wait in the backlog instead of being refused.
	apiLn, err := net.Listen("tcp", cfg.APIBind)
	if err != nil {
		return fmt.Errorf("SANDBOXD_API_BIND: %w", err)
	}
	defer apiLn.Close()
	apiLn = netutil.LimitListener(apiLn, apiMaxConns(cfg.OpenFiles)) // issue 11: within the descriptors kept for it
	httpLn, err := net.Listen("tcp", cfg.HTTPBind)
	if err != nil {
		return fmt.Errorf("SANDBOXD_HTTP_BIND: %w", err)
	}
	defer httpLn.Close()
	https, err := listenHTTPS(cfg, edgeSrv, log) // nil when SANDBOXD_TLS=off
	if err != nil {
		return err
	}
	defer https.Close()
	var e2bLn net.Listener // nil when SANDBOXD_E2B_BIND is empty
	if cfg.E2BBind != "" {
		if e2bLn, err = net.Listen("tcp", cfg.E2BBind); err != nil {
			return fmt.Errorf("SANDBOXD_E2B_BIND: %w", err)
		}
		defer e2bLn.Close()
	}

	bootCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	// Issue 15: the egress proxy listens on the sandboxes' gateway, which the sandbox
	// networks give; then sandboxd's other listeners refuse sandboxes without open egress.
	egressLn, err := listenEgress(bootCtx, cfg, mgr, egressProxy)
	if err != nil {
		cancel()
		return err
	}
	defer egressLn.Close()
	apiLn, httpLn = egressProxy.Guard(apiLn), egressProxy.Guard(httpLn)
	if e2bLn != nil {
		e2bLn = egressProxy.Guard(e2bLn)
	}
	https.guard(egressProxy.Guard)
	err = mgr.Boot(bootCtx)
	if err == nil {
		err = tasks.Resume(bootCtx) // after the reconcile: a task's sandbox must be known
	}
	cancel()
	if err != nil {
		return fmt.Errorf("boot reconcile: %w", err)
	}

	keys := apikey.New(db) // the E2B listener (issue 16) authenticates with the same keys
	keys.SetEnv(cfg.Tokens)
	api := admin.New(admin.Deps{Sandboxes: mgr, Execs: mgr, Detached: mgr, Terminals: mgr, Workspaces: mgr,
		Services: mgr, Tasks: tasks, Health: mgr, Waker: waker, Audit: db, Keys: keys, Tokens: db, AuditLog: db,
		Previews: mgr, Networks: mgr, Egress: egressProxy, Snapshots: mgr}, log)
	api.LoopbackOnly = len(cfg.Tokens) == 0 && loopbackBind(cfg.APIBind)
	api.Metrics = met.handler()
	api.PreviewURL = https.previewURL(cfg.PreviewDomain, previewURL("http", cfg.PreviewDomain, httpLn.Addr()))
	// The MCP server's tools call the API's own handler, auth included, as their caller
	// (issue 17): it is made after the server it calls, hence the indirection.
	api.Version = buildVersion()
	var apiHandler http.Handler
	api.MCP = mcp.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHandler.ServeHTTP(w, r) }), buildVersion(), log)
	apiHandler = api.Handler()
	apiSrv := &http.Server{
		Handler:           apiHandler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	apiSrv.RegisterOnShutdown(api.CloseSockets)
	reload := newReloader(cfg, getenv, keys, notify, log) // SIGHUP: API tokens from SANDBOXD_ENV_FILE
	defer reload.Close()
	var e2bSrv *e2b.Server
	var e2bHTTP *http.Server
	if e2bLn != nil {
		if e2bSrv, err = newE2B(cfg, mgr, waker, keys, db, log); err != nil {
			return err
		}
		edgeSrv.Envd = e2bSrv.Envd()
		e2bHTTP = &http.Server{Handler: e2bSrv.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
			IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	}
	httpSrv := edgeSrv.HTTPServer(cfg.HTTPBind)
	httpSrv.Handler = https.Redirect(httpSrv.Handler)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveUntilClosed(apiSrv, apiLn) })
	g.Go(func() error { return serveUntilClosed(httpSrv, edgeSrv.Listener(httpLn)) })
	g.Go(func() error { return https.Run(gctx) }) // shuts HTTPS down when gctx is done
	g.Go(func() error { return mgr.Run(gctx, lifecycle.Loops{Activity: cfg.ActivityEvery}) })
	g.Go(func() error { return tasks.Run(gctx) }) // the agents go on; their tasks resume at the next start
	g.Go(func() error { return reload.Run(gctx) })
	g.Go(func() error { return egressProxy.Serve(egressLn) })
	if e2bSrv != nil {
		g.Go(func() error { return serveUntilClosed(e2bHTTP, e2bLn) })
		g.Go(func() error { return e2bSrv.Run(gctx) }) // timeouts; ends envd's processes when done
	}
	g.Go(func() error {
		<-gctx.Done()
		notify.Stopping("draining requests; sandboxes keep running")
		log.Info("shutting down; sandboxes keep running for the next start to adopt")
		// Both servers stop listening at once and drain together: requests in flight,
		// those held in a wake included, get up to the wake timeout. WebSockets never go
		// idle: Shutdown ends them with a Close frame, and CloseWebSockets waits until
		// every frame is out before the process may exit.
		sctx, cancel := context.WithTimeout(context.Background(), cfg.WakeTimeout)
		defer cancel()
		apiDone := make(chan error, 1)
		go func() { apiDone <- apiSrv.Shutdown(sctx) }()
		egressDone := make(chan error, 1)
		go func() { egressDone <- egressProxy.Shutdown(sctx) }() // tunnels close; sandboxes retry
		e2bDone := make(chan error, 1)
		go func() {
			var err error
			if e2bHTTP != nil { // envd's streams end as e2bSrv.Run ends its processes
				err = e2bHTTP.Shutdown(sctx)
			}
			e2bDone <- err
		}()
		err := httpSrv.Shutdown(sctx)
		edgeSrv.CloseWebSockets()
		err = errors.Join(err, <-apiDone, <-e2bDone, <-egressDone)
		if errors.Is(err, context.DeadlineExceeded) {
			log.Warn("requests still open after the wake timeout are cut", "wake_timeout", cfg.WakeTimeout)
			return nil
		}
		return err
	})
	log.Info("serving", "version", buildVersion(), "api", apiLn.Addr().String(), "http", httpLn.Addr().String(), "https", https.Addr(), "e2b", addrOf(e2bLn),
		"egress_proxy", egressLn.Addr().String(), "egress", cfg.Egress,
		"data_dir", cfg.DataDir, "preview_domain", cfg.PreviewDomain, "preview_access", cfg.PreviewAccess, "auth", len(cfg.Tokens) > 0)
	notify.Ready("serving: API on " + apiLn.Addr().String() + ", previews on " + httpLn.Addr().String())
	g.Go(func() error { return notify.Watchdog(gctx, db.Ping) }) // after READY=1: pings follow it
	return g.Wait()
}

// dockerClient is the Engine API client, its transport counting failed calls.
func dockerClient(met *metrics) (*client.Client, error) {
	base, err := client.NewClientWithOpts(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	defer base.Close()
	hc := base.HTTPClient() // a copy whose transport already speaks to DOCKER_HOST
	hc.Transport = dockerErrors{base: hc.Transport, m: met}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHTTPClient(hc), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return cli, nil
}

func serveUntilClosed(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// previewURL formats preview URLs; the port is shown unless it is the scheme's default.
func previewURL(scheme, domain string, addr net.Addr) func(id string, port int) string {
	suffix := ""
	if tcp, ok := addr.(*net.TCPAddr); ok {
		if !(scheme == "http" && tcp.Port == 80) && !(scheme == "https" && tcp.Port == 443) {
			suffix = ":" + strconv.Itoa(tcp.Port)
		}
	}
	return func(id string, port int) string {
		return scheme + "://s-" + id + "-" + strconv.Itoa(port) + ".preview." + domain + suffix
	}
}

// routes feeds lifecycle's route changes into the edge's table and, issue 15, the egress
// proxy's map of sandbox addresses to policies.
type routes struct {
	t      *edge.Table
	egress *egress.Proxy
}

func (r routes) SetRoute(lr lifecycle.Route) {
	state := edge.Asleep
	switch lr.Status {
	case store.StatusRunning:
		state = edge.Running
	case store.StatusError:
		state = edge.Broken
	case store.StatusPaused:
		state = edge.Paused
	case store.StatusCreating:
		state = edge.Starting
	}
	wakeOn := wake.OnNavigation // issue 14
	if lr.WakeOn == store.WakeOnAny {
		wakeOn = wake.OnAny
	}
	r.t.Set(edge.Route{ID: lr.ID, State: state, Addr: lr.IP, Ports: lr.Ports, HostHeader: lr.HostHeader, Bytes: lr.Bytes, Message: lr.Message,
		Private: lr.Previews.Access == store.AccessPrivate, PortPrivate: portPrivate(lr.Previews.Ports), Key: lr.PreviewKey,
		WakeOn: wakeOn})
	if state == edge.Running && lr.IP.IsValid() {
		r.egress.SetPolicy(lr.IP, lr.ID, lr.Egress, lr.Allow)
	} else {
		r.egress.Unset(lr.ID)
	}
}

// portPrivate turns per-port access into the edge's overrides (issue 13).
func portPrivate(ports map[int]string) map[int]bool {
	if len(ports) == 0 {
		return nil
	}
	m := make(map[int]bool, len(ports))
	for p, a := range ports {
		m[p] = a == store.AccessPrivate
	}
	return m
}

func (r routes) DeleteRoute(id string) {
	r.t.Delete(id)
	r.egress.Forget(id)
}

var (
	_ wake.Starter        = (*lifecycle.Manager)(nil)
	_ edge.Waker          = (*wake.Waker)(nil)
	_ admin.Sandboxes     = (*lifecycle.Manager)(nil)
	_ admin.Networks      = (*lifecycle.Manager)(nil)
	_ admin.EgressStatus  = (*egress.Proxy)(nil)
	_ admin.Tasks         = (*task.Runner)(nil)
	_ admin.Previews      = (*lifecycle.Manager)(nil)
	_ task.Sandboxes      = (*lifecycle.Manager)(nil)
	_ task.Store          = (*store.DB)(nil)
	_ lifecycle.RouteSink = routes{}
)

// Issue 18.
var _ admin.Snapshots = (*lifecycle.Manager)(nil)

// Issue 13.
var (
	_ admin.TokenStore = (*store.DB)(nil)
	_ admin.AuditLog   = (*store.DB)(nil)
	_ apikey.Store     = (*store.DB)(nil)
	// The edge tells a tenant's running limit from a failed start by this method.
	_ interface{ ErrorCode() string } = (*lifecycle.Error)(nil)
)
