package lifecycle

import (
	"context"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// What the task runner (package lifecycle/task) uses of a Manager; it declares these as its
// Sandboxes interface. An agent runs detached through sandbox-init's logging exec, so a
// restart of sandboxd neither kills it nor loses its output.

// RunningSandbox returns the in-memory row of a sandbox that runs: CodeNotFound for an
// unknown id, CodeConflict for one that is not running. A paused sandbox counts as running
// here (issue 14): its processes are alive, frozen, so an agent in it is waiting, not gone.
func (m *Manager) RunningSandbox(id string) (store.Sandbox, error) {
	if sb, ok := m.cached(id); ok && sb.Status == store.StatusPaused && ValidID(id) {
		return sb, nil
	}
	return m.runningSandbox(id)
}

// WorkspaceDir is the host directory of a sandbox's workspace, its home. id must be valid.
func (m *Manager) WorkspaceDir(id string) string { return m.workspaceDir(id) }

// StartLoggedExec starts argv detached as the sandbox user in cwd, through sandbox-init's
// logging exec: its output is appended to logFile (a path inside the sandbox) and its exit
// code written to logFile+".exit". It returns the Docker exec id.
func (m *Manager) StartLoggedExec(ctx context.Context, sb store.Sandbox, logFile string, argv []string, env map[string]string, cwd string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	execID, err := m.createLoggedExec(cctx, sb, logFile, argv, env, cwd)
	if err != nil {
		return "", err
	}
	if err := m.docker.ContainerExecStart(cctx, execID, container.ExecStartOptions{Detach: true}); err != nil {
		return "", internal(err, "start the agent")
	}
	return execID, nil
}

// SignalExec sends sig to a running exec's process group by its host pid. An exec that
// ended, or that the engine does not know, is left alone.
func (m *Manager) SignalExec(sandboxID, execID string, sig syscall.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerExecInspect(ctx, execID)
	if err != nil || !info.Running {
		return
	}
	killGroup(info.Pid, sig, m.log, sandboxID)
}

// ExecExited reports an exec that has ended, with its exit code. It is false while the
// exec runs and when the engine cannot say.
func (m *Manager) ExecExited(ctx context.Context, execID string) (code int, exited bool) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerExecInspect(cctx, execID)
	if err != nil {
		return 0, false
	}
	return info.ExitCode, !info.Running
}

// CanRunAgent answers CodeUnsupported when sb cannot run ad: agents need sandbox-init, and
// the agent in the image. The image's sandboxd.agents label says so when present;
// otherwise the binary is looked up inside the sandbox.
func (m *Manager) CanRunAgent(ctx context.Context, sb store.Sandbox, ad agent.Adapter) error {
	if m.cfg.InitPath == "" {
		return errorf(CodeUnsupported, "tasks need sandbox-init (SANDBOXD_INIT_PATH)")
	}
	howTo := "agent " + ad.Name() + " is not installed in image " + sb.Image +
		": rebuild it where the npm registry is reachable (make image), or create the sandbox from an image that has it"
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	img, err := m.docker.ImageInspect(cctx, sb.Image)
	if err == nil {
		if agents, ok := imageAgents(img); ok {
			if slices.Contains(agents, ad.Name()) {
				return nil
			}
			return errorf(CodeUnsupported, "%s", howTo)
		}
	}
	res, err := m.Exec(ctx, sb.ID, ExecRequest{Cmd: []string{"sh", "-c", "command -v " + ad.Binary()}, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return errorf(CodeUnsupported, "%s", howTo)
	}
	return nil
}

// LabelAgents on an image lists the agent CLIs it carries, comma-separated.
const LabelAgents = "sandboxd.agents"

// ReadExitFile reads the exit code sandbox-init's `exec --log logFile` wrote under root;
// ok is false while there is none.
func ReadExitFile(root *os.Root, logFile string) (code int, ok bool, err error) {
	return readExitFile(root, logFile)
}

// OpenRegular opens name under root for reading and refuses anything but a regular file,
// without blocking on a FIFO planted in its place.
func OpenRegular(root *os.Root, name string) (*os.File, os.FileInfo, error) {
	return openRegular(root, name)
}

// ValidEnv checks the env of an exec, terminal or task.
func ValidEnv(env map[string]string) error { return validEnv(env) }
