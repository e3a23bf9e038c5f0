package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// Supervisor timing.
const (
	configPollInterval = time.Second // fallback when no SIGHUP comes
	portProbeInterval  = 250 * time.Millisecond
	removeTimeout      = 5 * time.Second // SIGTERM to SIGKILL for a removed or changed service
	shutdownTimeout    = 8 * time.Second // SIGTERM to SIGKILL on shutdown, inside Docker's 10s
	shutdownGrace      = time.Second     // after SIGKILL, before exiting regardless
)

// forwardedSignals go to every service's process group as they are.
var forwardedSignals = []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT}

// options are the supervisor's inputs, from flags and the environment.
type options struct {
	ConfigPath string
	StatePath  string
	RelayAddr  string   // "": no relay
	Home       string   // services' HOME and the base of relative cwds
	Env        []string // login environment every service starts from
	MainArgv   []string // the image's command; empty: no main service
	MainDir    string   // main's working directory
	HoldPath   string   // while this file exists, nothing starts (hold.go); "": no hold
}

// runSupervisor parses the supervisor's flags, runs it until SIGTERM or
// SIGINT, and returns the exit code.
func runSupervisor(args []string, getenv func(string) string, stdout io.Writer, logger *log.Logger) int {
	home := homeDir(getenv("HOME"))
	fs := flag.NewFlagSet("sandbox-init", flag.ContinueOnError)
	fs.SetOutput(logger.Writer())
	fs.Usage = func() {
		w := fs.Output()
		io.WriteString(w, "usage: sandbox-init [--config PATH] [--state PATH] [--relay ADDR] [--] [command...]\n"+
			"       sandbox-init exec [--log FILE] -- command...\n"+
			"       sandbox-init version\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", initproto.ServicesPath(), "declared services `file`")
	statePath := fs.String("state", filepath.Join(home, initproto.StateFile), "state `file` written for sandboxd")
	relayAddr := fs.String("relay", ":"+strconv.Itoa(initproto.RelayPort), "relay listen `address` (empty: no relay)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	wd, err := os.Getwd()
	if err != nil {
		wd = "/"
	}
	opt := options{
		ConfigPath: *configPath,
		HoldPath:   filepath.Join(filepath.Dir(*configPath), initproto.HoldFile),
		StatePath:  *statePath,
		RelayAddr:  *relayAddr,
		Home:       home,
		Env:        loginEnv(os.Environ(), home, userName(), loginShell(fileExists)),
		MainArgv:   fs.Args(),
		MainDir:    wd,
	}
	s := newSupervisor(opt, logger, stdout)
	s.run()
	return 0
}

// supervisor runs the services. All its state belongs to the goroutine in
// run; timers and signals reach it as messages.
type supervisor struct {
	opt    options
	log    *log.Logger
	stdout io.Writer        // main's output is copied here (the container log)
	now    func() time.Time // time.Now
	stdin  *os.File         // /dev/null, every service's stdin

	services map[string]*service
	byPID    map[int]*service // live instances by leader pid
	timerc   chan func()      // timer callbacks, run by the loop
	done     chan struct{}    // closed when the loop has returned

	cfgSig    string // stat signature of the config file last loaded
	cfgErr    string // last config error logged
	lastState []byte // services as last written to the state file
	stateErr  string // last state write error logged

	shutting bool // SIGTERM or SIGINT received
	forced   bool // shutdown took too long: exit now
}

func newSupervisor(opt options, logger *log.Logger, stdout io.Writer) *supervisor {
	return &supervisor{
		opt:      opt,
		log:      logger,
		stdout:   stdout,
		now:      time.Now,
		services: make(map[string]*service),
		byPID:    make(map[int]*service),
		timerc:   make(chan func()),
		done:     make(chan struct{}),
	}
}

// run supervises until a SIGTERM or SIGINT has stopped every service.
func (s *supervisor) run() {
	// Signals first: a child that exits before SIGCHLD is watched would
	// never be reaped.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	sigc := make(chan os.Signal, 16)
	// SIGPIPE is watched only so that a broken stdout or stderr gives
	// write errors instead of killing this process (Go's default for fds 1
	// and 2). Ignoring it instead would be inherited by every service.
	handled := []os.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGPIPE}
	signal.Notify(sigc, append(handled, forwardedSignals...)...)
	defer signal.Stop(chld)
	defer signal.Stop(sigc)
	defer close(s.done)

	if err := becomeSubreaper(); err != nil {
		s.log.Printf("%v (orphans will not be reaped here)", err)
	}
	if f, err := os.Open(os.DevNull); err == nil {
		s.stdin = f
		defer f.Close()
	}
	s.log.Printf("%s supervising: pid %d, home %s, config %s", version, os.Getpid(), s.opt.Home, s.opt.ConfigPath)
	if !s.awaitHold(sigc) {
		s.log.Printf("stopped before the workspace was ready, exiting")
		return
	}
	// Before the first log creates it 0700: the state file must stay
	// readable. A failure is reported by the first state write.
	os.MkdirAll(filepath.Dir(s.opt.StatePath), 0o755)
	stopRelay := s.startRelay()
	defer stopRelay()
	if len(s.opt.MainArgv) > 0 {
		spec := Spec{Name: mainName, Cmd: s.opt.MainArgv, Cwd: s.opt.MainDir}
		svc := &service{spec: spec, want: &spec, isMain: true, tee: s.stdout, log: s.newLog(mainName)}
		s.services[mainName] = svc
		s.start(svc)
	}
	s.reload()

	poll := time.NewTicker(configPollInterval)
	defer poll.Stop()
	// The port probe ticks only while a service is starting, so an idle
	// sandbox wakes once a second, for the config poll.
	probe := time.NewTicker(portProbeInterval)
	defer probe.Stop()
	probing := true
	for !s.finished() {
		s.saveState()
		if starting := s.anyStarting(); starting != probing {
			if probing = starting; probing {
				probe.Reset(portProbeInterval)
			} else {
				probe.Stop()
			}
		}
		select {
		case <-chld:
			s.reap()
		case sig := <-sigc:
			s.signal(sig.(syscall.Signal))
		case fn := <-s.timerc:
			fn()
		case <-poll.C:
			s.reap() // a safety net for a lost SIGCHLD: one wait4 when there is nothing to reap
			s.pollConfig()
		case <-probe.C:
			s.probePorts()
		}
	}
	s.saveState()
	s.waitLogged(s.now().Add(500 * time.Millisecond))
	s.log.Printf("all services stopped, exiting")
}

// finished reports whether shutdown is complete.
func (s *supervisor) finished() bool {
	if !s.shutting {
		return false
	}
	if s.forced {
		return true
	}
	for _, svc := range s.services {
		if svc.stopping || (svc.inst != nil && svc.inst.alive) {
			return false
		}
	}
	return true
}

// after runs fn on the loop goroutine once d has passed.
func (s *supervisor) after(d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		select {
		case s.timerc <- fn:
		case <-s.done:
		}
	})
}

// signal handles one signal received by the supervisor.
func (s *supervisor) signal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGHUP:
		if s.shutting {
			return
		}
		s.log.Printf("SIGHUP: reloading %s", s.opt.ConfigPath)
		s.reload()
	case syscall.SIGTERM, syscall.SIGINT:
		s.shutdown(sig)
	case syscall.SIGPIPE:
		// Not for the services: the write that raised it has its error.
	default:
		for _, svc := range s.services {
			if svc.inst != nil && svc.inst.alive {
				signalGroup(svc.inst.pid, sig)
			}
		}
	}
}

// shutdown stops every service, passing sig on to each process group and
// killing what is left at shutdownTimeout. A second SIGTERM or SIGINT kills
// at once.
func (s *supervisor) shutdown(sig syscall.Signal) {
	if s.shutting {
		s.log.Printf("%s again: killing every service", signalName(sig))
		for _, svc := range s.sorted() {
			if svc.stopping {
				signalGroup(svc.inst.pid, syscall.SIGKILL)
				svc.killed = true
				s.checkStopped(svc)
			}
		}
		return
	}
	s.shutting = true
	s.log.Printf("%s: stopping %d services", signalName(sig), len(s.services))
	deadline := s.now().Add(shutdownTimeout)
	for _, svc := range s.sorted() {
		s.stop(svc, sig, deadline)
	}
	s.after(shutdownTimeout+shutdownGrace, func() { s.forced = true })
}

// reap dispatches every exited child to the service it belongs to; other
// children (orphans reparented to this process) are only reaped.
func (s *supervisor) reap() {
	reapAll(func(pid int, ws syscall.WaitStatus) {
		if svc := s.byPID[pid]; svc != nil {
			delete(s.byPID, pid)
			s.exited(svc, ws)
		}
	})
	// A reaped orphan may have been the last member of a stopping group.
	for _, svc := range s.sorted() {
		s.checkStopped(svc)
	}
}

// anyStarting reports whether a service waits for its port.
func (s *supervisor) anyStarting() bool {
	for _, svc := range s.services {
		if svc.state == stateStarting {
			return true
		}
	}
	return false
}

// probePorts moves services whose port is now listening from starting to
// running.
func (s *supervisor) probePorts() {
	var starting []*service
	for _, svc := range s.services {
		if svc.state == stateStarting {
			starting = append(starting, svc)
		}
	}
	if len(starting) == 0 {
		return
	}
	ports, ok := listeningPorts()
	for _, svc := range starting {
		if !ok || ports[svc.spec.Port] {
			svc.state = stateRunning
		}
	}
}

// sorted returns the services by name, for a deterministic order of effects.
func (s *supervisor) sorted() []*service {
	out := make([]*service, 0, len(s.services))
	for _, svc := range s.services {
		out = append(out, svc)
	}
	slices.SortFunc(out, func(a, b *service) int {
		switch {
		case a.spec.Name < b.spec.Name:
			return -1
		case a.spec.Name > b.spec.Name:
			return 1
		}
		return 0
	})
	return out
}

// newLog returns the log of service name.
func (s *supervisor) newLog(name string) *logFile {
	return &logFile{
		Path:    filepath.Join(s.opt.Home, initproto.ServiceLog(name)),
		OnError: func(err error) { s.log.Printf("%s: %v", name, err) },
	}
}

// waitLogged waits, until deadline at most, for the "exited" lines of the
// last processes to reach their logs.
func (s *supervisor) waitLogged(deadline time.Time) {
	t := time.NewTimer(deadline.Sub(s.now()))
	defer t.Stop()
	for _, svc := range s.services {
		if svc.inst == nil || svc.inst.alive {
			continue
		}
		select {
		case <-svc.inst.logged:
		case <-t.C:
			return
		}
	}
}

// startRelay starts the relay when an address is set, and returns the
// function that stops it and waits for it.
func (s *supervisor) startRelay() (stop func()) {
	if s.opt.RelayAddr == "" {
		return func() {}
	}
	ln, err := net.Listen("tcp", s.opt.RelayAddr)
	if err != nil {
		s.log.Printf("relay: %v (continuing without it)", err)
		return func() {}
	}
	s.log.Printf("relay listening on %s", ln.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := &relay{Logf: s.log.Printf}
	go func() {
		defer close(done)
		if err := r.Serve(ctx, ln); err != nil {
			s.log.Printf("relay: %v", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
