package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Service states, as written to the state file.
const (
	stateStarting = "starting" // process up, its port not listening yet
	stateRunning  = "running"  // process up (and its port listening, if it has one)
	stateBackoff  = "backoff"  // exited or failed to start; restart pending
	stateStopped  = "stopped"  // stopped by sandbox-init (shutdown)
)

// stateFile is the content of $HOME/.sandboxd/state.json, which sandboxd
// reads to show each service's state, restarts and last exit.
type stateFile struct {
	UpdatedAt time.Time      `json:"updated_at"`
	Services  []serviceState `json:"services"` // sorted by name; never null
}

// serviceState is one service in the state file.
type serviceState struct {
	Name      string      `json:"name"`
	State     string      `json:"state"`
	PID       int         `json:"pid,omitempty"` // while a process is up
	Restarts  int         `json:"restarts"`      // starts after the first, since the spec last changed
	StartedAt time.Time   `json:"started_at,omitzero"`
	LastExit  *exitStatus `json:"last_exit,omitempty"`
	Port      int         `json:"port,omitempty"`
	Error     string      `json:"error,omitempty"` // why the last start failed (cmd or cwd missing)
}

// exitStatus is how a process ended. A process killed by a signal has Code
// 128+signal, as a shell reports it, and Signal set to the signal's name.
type exitStatus struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal"`
	At     time.Time `json:"at"`
}

// exitStatusOf converts a wait status.
func exitStatusOf(ws syscall.WaitStatus, at time.Time) exitStatus {
	if ws.Signaled() {
		sig := ws.Signal()
		return exitStatus{Code: 128 + int(sig), Signal: signalName(sig), At: at}
	}
	return exitStatus{Code: ws.ExitStatus(), At: at}
}

// String is the text after "exited: " in a service log.
func (e exitStatus) String() string {
	if e.Signal != "" {
		return fmt.Sprintf("killed by signal %d", e.Code-128)
	}
	return fmt.Sprintf("code %d", e.Code)
}

// writeState replaces the file at path with st, atomically: a reader sees
// the old content or the new, never a mix. The file (0644) and a directory
// it creates (0755) are readable by others, unlike the logs, so sandboxd
// need not run as the sandbox's uid to read it. The file is not fsynced: it is
// rewritten at every start, so losing the last version in a power cut costs
// nothing, while fsyncing on every restart of a crash-looping service would.
func writeState(path string, st stateFile) error {
	if st.Services == nil {
		st.Services = []serviceState{}
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := replaceFile(path, append(data, '\n'), 0o644); err != nil {
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
	services := make([]serviceState, 0, len(s.services))
	for _, svc := range s.sorted() {
		st := serviceState{
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
	err := writeState(s.opt.StatePath, stateFile{UpdatedAt: s.now().UTC(), Services: services})
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
