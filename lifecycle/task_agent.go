package lifecycle

import (
	"context"
	"slices"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// startAgent runs argv detached as the sandbox user in the app dir, through sandbox-init's
// logging exec, and returns the Docker exec id.
func (m *Manager) startAgent(ctx context.Context, sb store.Sandbox, taskID string, argv []string, env map[string]string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	execID, err := m.createLoggedExec(cctx, sb.ContainerID, Home+"/"+taskLog(taskID), argv, env, Home+"/workspace/app")
	if err != nil {
		return "", err
	}
	if err := m.docker.ContainerExecStart(cctx, execID, container.ExecStartOptions{Detach: true}); err != nil {
		return "", internal(err, "start the agent")
	}
	return execID, nil
}

// requireAgent checks that the sandbox's image has the agent: the image's sandboxd.agents
// label says so when present; otherwise the binary is looked up inside the sandbox.
func (m *Manager) requireAgent(ctx context.Context, sb store.Sandbox, ad agent.Adapter) error {
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
