package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// Service states, as written to the state file.
const (
	stateStarting = initproto.StateStarting
	stateRunning  = initproto.StateRunning
	stateBackoff  = initproto.StateBackoff
	stateStopped  = initproto.StateStopped
)

// exitStatusOf converts a wait status.
func exitStatusOf(ws syscall.WaitStatus, at time.Time) initproto.Exit {
	if ws.Signaled() {
		sig := ws.Signal()
		return initproto.Exit{Code: 128 + int(sig), Signal: signalName(sig), At: at}
	}
	return initproto.Exit{Code: ws.ExitStatus(), At: at}
}

// writeState replaces the state file at path with st, atomically: a reader sees
// the old content or the new, never a mix. The file (0644) and a directory
// it creates (0755) are readable by others, unlike the logs, so sandboxd
// need not run as the sandbox's uid to read it. The file is not fsynced: it is
// rewritten at every start, so losing the last version in a power cut costs
// nothing, while fsyncing on every restart of a crash-looping service would.
func writeState(path string, st initproto.State) error {
	data, err := initproto.EncodeState(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := replaceFile(path, data, 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// replaceFile replaces the file at path with data and mode perm through a
// temporary file in the same directory and a rename, so a reader sees the
// old content or the new, never a mix.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

// signalName returns the conventional name of sig ("SIGKILL").
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
		syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
		syscall.SIGSTKFLT: "SIGSTKFLT", syscall.SIGCHLD: "SIGCHLD", syscall.SIGCONT: "SIGCONT",
		syscall.SIGSTOP: "SIGSTOP", syscall.SIGTSTP: "SIGTSTP", syscall.SIGTTIN: "SIGTTIN",
		syscall.SIGTTOU: "SIGTTOU", syscall.SIGURG: "SIGURG", syscall.SIGXCPU: "SIGXCPU",
		syscall.SIGXFSZ: "SIGXFSZ", syscall.SIGVTALRM: "SIGVTALRM", syscall.SIGPROF: "SIGPROF",
		syscall.SIGWINCH: "SIGWINCH", syscall.SIGIO: "SIGIO", syscall.SIGPWR: "SIGPWR",
		syscall.SIGSYS: "SIGSYS",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return fmt.Sprintf("SIG%d", int(sig))
}

// saveState writes the state file when a service's state has changed since
// the last write.
func (s *supervisor) saveState() {
	services := make([]initproto.ServiceState, 0, len(s.services))
	for _, svc := range s.sorted() {
		st := initproto.ServiceState{
			Name:      svc.spec.Name,
			State:     svc.state,
			Restarts:  max(svc.attempts-1, 0),
			StartedAt: svc.startedAt,
			LastExit:  svc.lastExit,
			Port:      svc.spec.Port,
			Error:     svc.err,
		}
		if svc.inst != nil && svc.inst.alive {
			st.PID = svc.inst.pid
		}
		services = append(services, st)
	}
	key, _ := json.Marshal(services)
	if bytes.Equal(key, s.lastState) {
		return
	}
	err := writeState(s.opt.StatePath, initproto.State{UpdatedAt: s.now().UTC(), Services: services})
	if err != nil {
		if err.Error() != s.stateErr {
			s.log.Print(err)
		}
		s.stateErr = err.Error()
		return // try again on the next change
	}
	s.stateErr = ""
	s.lastState = key
}
