package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/store"
)

// Snapshots is what the snapshot, restore, fork, revert and template routes need from the
// lifecycle manager (issue 18). Every route naming a sandbox is tenant-scoped by scope.go;
// the manager scopes snapshot ids to their sandbox.
type Snapshots interface {
	Snapshot(ctx context.Context, id, name string) (store.Snapshot, error)
	Snapshots(ctx context.Context, id string) ([]store.Snapshot, error)
	DeleteSnapshot(ctx context.Context, id, snapID string) error
	Restore(ctx context.Context, id, snapID string) (store.Sandbox, error)
	Fork(ctx context.Context, id, forkID string) (store.Sandbox, error)
	RevertTask(ctx context.Context, id, taskID string) (store.Sandbox, error)
	PublishTemplate(ctx context.Context, name, snapID string) (store.Snapshot, error)
	Templates(ctx context.Context) ([]store.Snapshot, error)
	DeleteTemplate(ctx context.Context, name string) error
}

// snapshotView is a snapshot as the API shows it: its config without env values. "id" is
// last, as in sandboxView, so the same sed extracts it.
type snapshotView struct {
	Kind      string             `json:"kind"` // snapshot, checkpoint or template
	SandboxID string             `json:"sandbox_id,omitempty"`
	Name      string             `json:"name"`
	TaskID    string             `json:"task_id,omitempty"`
	Method    string             `json:"method"` // btrfs, reflink or copy
	Config    snapshotConfigView `json:"config"`
	CreatedAt time.Time          `json:"created_at"`
	ID        string             `json:"id"`
}

type snapshotConfigView struct {
	Image       string            `json:"image"`
	Ports       []int             `json:"ports"`
	EnvKeys     []string          `json:"env_keys"`
	Labels      map[string]string `json:"labels"`
	Services    []store.Service   `json:"services"` // their env values are never shown
	Memory      int64             `json:"memory"`
	CPUs        float64           `json:"cpus"`
	IdleTimeout string            `json:"idle_timeout,omitempty"`
	IdlePolicy  string            `json:"idle_policy"`
}

func viewSnapshot(s store.Snapshot) snapshotView {
	c := s.Config
	v := snapshotView{
		ID: s.ID, Kind: s.Kind, SandboxID: s.SandboxID, Name: s.Name, TaskID: s.TaskID, Method: s.Method, CreatedAt: s.CreatedAt,
		Config: snapshotConfigView{
			Image: c.Image, Ports: c.Ports, EnvKeys: c.EnvKeys, Labels: c.Labels, Services: c.Services,
			Memory: c.MemoryBytes, CPUs: float64(c.NanoCPUs) / 1e9, IdlePolicy: c.IdlePolicy,
		},
	}
	if c.IdleTimeoutMS > 0 {
		v.Config.IdleTimeout = (time.Duration(c.IdleTimeoutMS) * time.Millisecond).String()
	}
	if v.Config.Ports == nil {
		v.Config.Ports = []int{}
	}
	if v.Config.EnvKeys == nil {
		v.Config.EnvKeys = []string{}
	}
	if v.Config.Labels == nil {
		v.Config.Labels = map[string]string{}
	}
	v.Config.Services = make([]store.Service, len(c.Services))
	for i, svc := range c.Services {
		svc.Env = nil // stored apart; never shown
		v.Config.Services[i] = svc
	}
	return v
}

func viewSnapshots(list []store.Snapshot) []snapshotView {
	out := make([]snapshotView, len(list))
	for i, s := range list {
		out[i] = viewSnapshot(s)
	}
	return out
}

// createSnapshot is POST /v1/sandboxes/{id}/snapshots {"name"?}.
func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &b, true); err != nil {
		return err
	}
	snap, err := s.snapshots.Snapshot(r.Context(), id, b.Name)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.snapshot", id, snap.ID)
	writeJSON(w, http.StatusCreated, viewSnapshot(snap))
	return nil
}

// listSnapshots is GET /v1/sandboxes/{id}/snapshots: its snapshots and task checkpoints,
// newest first.
func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	list, err := s.snapshots.Snapshots(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": viewSnapshots(list)})
	return nil
}

// deleteSnapshot is DELETE /v1/sandboxes/{id}/snapshots/{snapshotId}.
func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	snapID := mux.Vars(r)["snapshotId"]
	if err := s.snapshots.DeleteSnapshot(r.Context(), id, snapID); err != nil {
		return err
	}
	s.record(r, "sandbox.snapshot.delete", id, snapID)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "id": snapID})
	return nil
}

// restore is POST /v1/sandboxes/{id}/restore {"snapshot"}: the sandbox afterwards.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b struct {
		Snapshot string `json:"snapshot"`
	}
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if b.Snapshot == "" {
		return badRequest("snapshot is required: the id of one of this sandbox's snapshots")
	}
	sb, err := s.snapshots.Restore(r.Context(), id, b.Snapshot)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.restore", id, b.Snapshot)
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}

// fork is POST /v1/sandboxes/{id}/fork {"id"?}: the new sandbox, running.
func (s *Server) fork(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b struct {
		ID string `json:"id"`
	}
	if err := decode(w, r, &b, true); err != nil {
		return err
	}
	s.record(r, "sandbox.fork", id, b.ID)
	sb, err := s.snapshots.Fork(r.Context(), id, b.ID)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.fork", id, sb.ID)
	writeJSON(w, http.StatusCreated, s.view(sb))
	return nil
}

// revertTask is POST /v1/sandboxes/{id}/tasks/{taskId}/revert: the workspace as it was
// before the task, from its checkpoint.
func (s *Server) revertTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	taskID := mux.Vars(r)["taskId"]
	sb, err := s.snapshots.RevertTask(r.Context(), id, taskID)
	if err != nil {
		return err
	}
	s.record(r, "task.revert", id, taskID)
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}

// createTemplate is POST /v1/templates {"name","snapshot"}, for admins (scope.go): tenants
// read templates and create sandboxes from them, but do not publish one.
func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Name     string `json:"name"`
		Snapshot string `json:"snapshot"`
	}
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	switch {
	case b.Name == "":
		return badRequest("name is required: the template's name, like vite-react")
	case b.Snapshot == "":
		return badRequest("snapshot is required: the id of the snapshot to publish")
	}
	s.record(r, "template.create", "template:"+b.Name, b.Snapshot)
	t, err := s.snapshots.PublishTemplate(r.Context(), b.Name, b.Snapshot)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewSnapshot(t))
	return nil
}

// listTemplates is GET /v1/templates, for every caller.
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) error {
	list, err := s.snapshots.Templates(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": viewSnapshots(list)})
	return nil
}

// deleteTemplate is DELETE /v1/templates/{template}, for admins (scope.go).
func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	name := mux.Vars(r)["template"]
	if err := s.snapshots.DeleteTemplate(r.Context(), name); err != nil {
		return err
	}
	s.record(r, "template.delete", "template:"+name, "")
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "name": name})
	return nil
}
