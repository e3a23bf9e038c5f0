package initproto

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Service states in the state file.
const (
	StateStarting = "starting" // process up, its port not listening yet
	StateRunning  = "running"  // process up (and its port listening, if it has one)
	StateBackoff  = "backoff"  // exited or failed to start; restart pending
	StateStopped  = "stopped"  // stopped by sandbox-init (shutdown)
)

// MaxStateSize bounds how much of the state file sandboxd reads: it is written inside the
// sandbox, which may have replaced it with anything.
const MaxStateSize = 1 << 20

// State is the content of the state file, which sandbox-init replaces atomically (by
// rename) whenever a service's state changes.
type State struct {
	UpdatedAt time.Time      `json:"updated_at"`
	Services  []ServiceState `json:"services"` // sorted by name; never null
}

// ServiceState is one service in the state file.
type ServiceState struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	PID       int       `json:"pid,omitempty"` // while a process is up
	Restarts  int       `json:"restarts"`      // starts after the first, since the spec last changed
	StartedAt time.Time `json:"started_at,omitzero"`
	LastExit  *Exit     `json:"last_exit,omitempty"`
	Port      int       `json:"port,omitempty"`
	Error     string    `json:"error,omitempty"` // why the last start failed (cmd or cwd missing)
}

// Exit is how a process ended. A process killed by a signal has Code 128+signal, as a
// shell reports it, and Signal set to the signal's name ("SIGKILL").
type Exit struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal"`
	At     time.Time `json:"at"`
}

// String is the text after "exited: " in a service log.
func (e Exit) String() string {
	if e.Signal != "" {
		return fmt.Sprintf("killed by signal %d", e.Code-128)
	}
	return fmt.Sprintf("code %d", e.Code)
}

// EncodeState is the state file for st, indented for the people who read it too.
func EncodeState(st State) ([]byte, error) {
	if st.Services == nil {
		st.Services = []ServiceState{}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeState reads a state file from r, at most MaxStateSize bytes of it.
func DecodeState(r io.Reader) (State, error) {
	var st State
	b, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if len(b) > MaxStateSize {
		return st, fmt.Errorf("state file is larger than %d bytes", MaxStateSize)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode state: %w", err)
	}
	return st, nil
}
