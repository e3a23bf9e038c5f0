package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/container"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// createLoggedExec creates (does not start) an exec of argv as the sandbox user through
// sandbox-init's logging wrapper: its output is appended to logFile (a path inside the
// sandbox) and its exit code written to its exit file, so the command's fate is known
// without holding a connection to it. Detached execs and agent tasks run this way.
func (m *Manager) createLoggedExec(ctx context.Context, sb store.Sandbox, logFile string, argv []string, env map[string]string, cwd string) (string, error) {
	cid := sb.ContainerID
	cmd := initproto.ExecCommand(logFile, argv...)
	return m.createExec(ctx, sb.ID, cid, container.ExecOptions{
		User: userSpec(sb), Cmd: cmd, Env: execEnv(env), WorkingDir: cwd,
	})
}
