package lifecycle

import (
	"context"
	"log/slog"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// listContainers lists this instance's containers (of one sandbox when id is set) by id.
func (m *Manager) listContainers(ctx context.Context, id string) (map[string][]container.Summary, error) {
	return containersOf(ctx, m.docker, m.instance, id, m.log)
}

// containersOf lists instance's containers (of one sandbox when id is set) by sandbox id.
func containersOf(ctx context.Context, docker *client.Client, instance, id string, log *slog.Logger) (map[string][]container.Summary, error) {
	args := filters.NewArgs(filters.Arg("label", LabelInstance+"="+instance))
	if id != "" {
		args.Add("label", LabelID+"="+id)
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	list, err := docker.ContainerList(cctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, internal(err, "list containers")
	}
	byID := map[string][]container.Summary{}
	for _, c := range list {
		cid := c.Labels[LabelID]
		if c.Labels[labelProbe] != "" {
			continue // reading an image's accounts; removed by its maker
		}
		if !ValidID(cid) {
			log.Warn("container with a bad sandbox label; leaving it alone", "container", shortID(c.ID))
			continue
		}
		byID[cid] = append(byID[cid], c)
	}
	return byID, nil
}
