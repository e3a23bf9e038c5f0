package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// start starts a process for svc, or schedules the next attempt when it
// cannot (missing cwd or command): both count as an attempt.
func (s *supervisor) start(svc *service) {
	svc.gen++
	name := svc.spec.Name
	if prev := svc.inst; prev != nil && !prev.alive {
		<-prev.logged // keep "exited" before the next "start"; bounded by exitLogGrace
		if prev.leftovers {
			// The group had SIGTERM when its leader exited; whatever is
			// left would hold the port the new process needs. The group
			// id cannot have been reused while a member is alive.
			signalGroup(prev.pid, syscall.SIGKILL)
			prev.leftovers = false // once: later the id may belong to another group
		}
	}
	svc.attempts++
	svc.log.Printf("[sandbox-init] start %s (attempt %d)", name, svc.attempts)

	dir := svc.spec.dir(s.opt.Home)
	env := mergeEnv(s.opt.Env, svc.spec.Env)
	env = mergeEnv(env, map[string]string{"PWD": dir})
	path, err := resolve(svc.spec, env, dir)
	var pid int
	if err == nil {
		var out *os.File
		pid, out, err = spawn(path, svc.spec.Cmd, env, dir, s.stdin)
		if err == nil {
			inst := &instance{pid: pid, alive: true, drained: make(chan struct{}), logged: make(chan struct{})}
			go copyOutput(out, svc.log, svc.tee, inst.drained)
			svc.inst = inst
		}
	}
	if err != nil {
		d := svc.backoff.next(0)
		svc.err = err.Error()
		svc.log.Printf("[sandbox-init] %s failed to start: %v; retry in %s", name, err, d)
		s.log.Printf("%s failed to start (attempt %d): %v; retry in %s", name, svc.attempts, err, d)
		s.scheduleRestart(svc, d)
		return
	}
	s.byPID[pid] = svc
	svc.startedAt = s.now().UTC()
	svc.err = ""
	svc.killed = false
	svc.state = stateRunning
	if svc.spec.Port != 0 {
		svc.state = stateStarting
	}
	s.log.Printf("start %s (attempt %d): pid %d", name, svc.attempts, pid)
}

// scheduleRestart starts svc again after d.
func (s *supervisor) scheduleRestart(svc *service, d time.Duration) {
	svc.state = stateBackoff
	svc.gen++
	gen := svc.gen
	s.after(d, func() {
		if svc.gen == gen {
			s.start(svc)
		}
	})
}

// exited handles the exit of svc's process.
func (s *supervisor) exited(svc *service, ws syscall.WaitStatus) {
	now := s.now()
	inst := svc.inst
	inst.alive = false
	ex := exitStatusOf(ws, now.UTC())
	svc.lastExit = &ex
	name := svc.spec.Name

	if svc.stopping {
		inst.leftovers = groupAlive(inst.pid)
		svc.state = stateStopped
		s.logExit(svc, inst, fmt.Sprintf("[sandbox-init] %s exited: %s", name, ex))
		s.log.Printf("%s exited: %s", name, ex)
		s.checkStopped(svc)
		return
	}
	// A background child of a shell would outlive it and hold its port
	// when it restarts: the whole group goes with its leader.
	inst.leftovers = signalGroup(inst.pid, syscall.SIGTERM)
	d := svc.backoff.next(now.Sub(svc.startedAt))
	s.logExit(svc, inst, fmt.Sprintf("[sandbox-init] %s exited: %s; restart in %s", name, ex, d))
	s.log.Printf("%s exited: %s; restart in %s", name, ex, d)
	s.scheduleRestart(svc, d)
}

// logExit writes line to svc's log once the process's output has drained,
// or after exitLogGrace, so a reader sees it after the last words of the
// process it describes.
func (s *supervisor) logExit(svc *service, inst *instance, line string) {
	lf := svc.log
	go func() {
		t := time.NewTimer(exitLogGrace)
		defer t.Stop()
		select {
		case <-inst.drained:
		case <-t.C:
		}
		lf.Printf("%s", line)
		close(inst.logged)
	}()
}

// stop asks svc's process group to exit with sig and kills it at deadline.
// When nothing of it runs, it is stopped at once. What follows the stop
// (remove, restart with a new spec, stay stopped) is up to stopped.
func (s *supervisor) stop(svc *service, sig syscall.Signal, deadline time.Time) {
	if svc.stopping {
		return
	}
	inst := svc.inst
	svc.gen++ // cancels a pending restart
	if inst == nil || (!inst.alive && !(inst.leftovers && groupAlive(inst.pid))) {
		s.stopped(svc)
		return
	}
	svc.stopping = true
	svc.killed = false
	svc.log.Printf("[sandbox-init] stop %s (%s)", svc.spec.Name, signalName(sig))
	signalGroup(inst.pid, sig)
	gen := svc.gen
	s.after(deadline.Sub(s.now()), func() {
		if svc.gen != gen || !svc.stopping {
			return
		}
		s.log.Printf("%s: still running at the stop deadline, killing", svc.spec.Name)
		signalGroup(inst.pid, syscall.SIGKILL)
		svc.killed = true
		s.checkStopped(svc)
	})
}

// checkStopped completes the stop of svc once its process has exited and
// its group is empty (or was killed).
func (s *supervisor) checkStopped(svc *service) {
	if !svc.stopping {
		return
	}
	inst := svc.inst
	if inst.alive {
		return
	}
	if !svc.killed && inst.leftovers && groupAlive(inst.pid) {
		return
	}
	svc.stopping = false
	svc.killed = false
	s.stopped(svc)
}

// stopped decides what comes after a stop: nothing while shutting down,
// removal when the service is no longer wanted, else a start with the
// wanted spec.
func (s *supervisor) stopped(svc *service) {
	svc.gen++
	name := svc.spec.Name
	switch {
	case s.shutting:
		svc.state = stateStopped
	case svc.want == nil:
		delete(s.services, name)
		if svc.inst != nil {
			<-svc.inst.logged // bounded by exitLogGrace
		}
		svc.log.Close()
		s.log.Printf("%s removed", name)
	default:
		if !svc.spec.equal(*svc.want) {
			svc.reset(*svc.want)
		}
		s.start(svc)
	}
}
