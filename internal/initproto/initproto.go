// Package initproto is the contract between sandboxd and sandbox-init, the PID 1 of every
// sandbox: where sandbox-init and its inputs are mounted, the files each side writes for the
// other (services.json, state.json, the exec logs and their exit files) and the relay's
// handshake. Both programs, and the edge that speaks to the relay, use these declarations,
// so the format is written down once. It depends on the standard library only, as
// sandbox-init must.
//
// Compatibility: a sandbox keeps running the sandbox-init binary it was started with while
// sandboxd is upgraded, so fields are only ever added, and readers ignore what they do not
// know.
package initproto

import "path"

// Paths inside every sandbox.
const (
	// InitPath is where sandboxd bind-mounts sandbox-init (read-only) and makes it the
	// container's entrypoint.
	InitPath = "/opt/sandboxd/init"
	// RunDir is the host-owned directory, mounted read-only, that holds ServicesFile:
	// the sandbox can read its services but not change them or plant a symlink there.
	RunDir = "/opt/sandboxd/run"
	// ServicesFile is the name of the declared services in RunDir.
	ServicesFile = "services.json"
	// HoldFile, while RunDir holds it, tells sandbox-init to start nothing yet: sandboxd
	// is still making the workspace ready for this sandbox (a fork's copy being given to
	// its uid, issue 18), and does so while the container starts instead of before. What it
	// holds is for sandboxd alone; sandbox-init only looks whether it is there.
	HoldFile = "hold"
	// Home is the sandbox user's home and the workspace root; sandbox-init also uses it
	// when HOME is unset or "/".
	Home = "/home/sandbox"
)

// Paths relative to the home, where sandbox-init writes and sandboxd reads from the host
// (through os.Root: the home belongs to the sandbox).
const (
	// StateFile is the services' state as sandbox-init last wrote it (State).
	StateFile = ".sandboxd/state.json"
	// ServiceLogDir holds each service's log, <name>.log, rotated to <name>.log.1.
	ServiceLogDir = ".sandboxd/logs"
	// ExecLogDir holds the logs of detached execs, <exec id>.log, and their exit files.
	ExecLogDir = ".sandboxd/exec"
	// TaskLogDir holds the logs of agent tasks, <task id>.log, and their exit files.
	TaskLogDir = ".sandboxd/tasks"
)

// ServicesPath is the absolute path of the services file inside the sandbox.
func ServicesPath() string { return path.Join(RunDir, ServicesFile) }

// HoldPath is the absolute path of the hold file inside the sandbox.
func HoldPath() string { return path.Join(RunDir, HoldFile) }

// ServiceLog is the log of the named service, relative to the home.
func ServiceLog(name string) string { return path.Join(ServiceLogDir, name+".log") }

// ExecLog is the log of a detached exec, relative to the home.
func ExecLog(execID string) string { return path.Join(ExecLogDir, execID+".log") }

// TaskLog is the log of an agent task, relative to the home.
func TaskLog(taskID string) string { return path.Join(TaskLogDir, taskID+".log") }

// Entrypoint is the container's entrypoint: sandbox-init supervising, with the image's own
// command (appended after it) as service "main". The "--" keeps an image command that
// starts with "exec", "version" or "-" from being taken for sandbox-init's own.
func Entrypoint() []string { return []string{InitPath, "--"} }

// LogMaxEnv, in the environment of `sandbox-init exec --log FILE`, caps the bytes of output
// FILE keeps: past it, the rest is read and dropped, and one line says so (issue 11: a
// detached exec's output grew without bound). sandbox-init removes it from the command's
// environment. An environment variable rather than a flag: a container keeps the
// sandbox-init it started with, and an older one ignores the variable where it would
// refuse a flag it does not know.
const LogMaxEnv = "SANDBOX_INIT_LOG_MAX"

// ExecCommand is the argv of a command sandboxd runs through the Docker exec API: through
// `sandbox-init exec`, which makes it the leader of its own session so its whole tree can
// be killed. With a logFile (a path inside the sandbox) its output is appended there and
// its exit code written to ExitFile(logFile).
func ExecCommand(logFile string, argv ...string) []string {
	cmd := []string{InitPath, "exec"}
	if logFile != "" {
		cmd = append(cmd, "--log", logFile)
	}
	return append(append(cmd, "--"), argv...)
}
