package task

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
)

// Every task starts with a checkpoint (issue 18): a snapshot of the sandbox's home, taken
// by the lifecycle manager before the agent runs (copy-on-write where the filesystem can,
// with the sandbox frozen for the instant of the copy). RevertTask puts it back, and the
// task's files_changed is the difference between its app dir and the app dir when the
// task ends: added, deleted, and modified by type, mode, size, link target or contents.
// It replaces the manifest of sizes and modification times of the issue-10 runner, which
// could restore nothing. It needs nothing in the image (no git), never touches the app's
// own .git, and runs no code of the sandbox's on the host.

// FileChange is one file a task added, modified or deleted, relative to the app dir.
type FileChange = snapshot.Change

// appDir is the app dir in the home, the part of the tree files_changed covers.
const appDir = "workspace/app"

// skipDirs are not compared: dependencies and caches change in bulk and say nothing a user
// wants in "files changed".
var skipDirs = map[string]bool{"node_modules": true, ".git": true, ".cache": true, ".next": true, ".vite": true, "dist": true, ".sandboxd": true}

// maxChanges bounds the files a result lists.
const maxChanges = 50000

// filesChanged compares the app dir of a task's checkpoint with the workspace's now;
// truncated says the list stopped at its bound. A task without a checkpoint (pruned, or
// begun before issue 18) changed nothing anyone can tell.
func (r *Runner) filesChanged(ctx context.Context, sandboxID, taskID string) (changes []FileChange, truncated bool) {
	r.removeLegacyManifest(taskID)
	dir, ok := r.sandboxes.CheckpointDir(ctx, sandboxID, taskID)
	if !ok {
		return nil, false
	}
	changes, truncated, err := snapshot.Diff(ctx, dir, r.sandboxes.WorkspaceDir(sandboxID), appDir, snapshot.DiffOptions{
		Skip: func(name string) bool { return skipDirs[name] }, MaxChanges: maxChanges,
	})
	if err != nil {
		r.log.Warn("compare a task's app dir with its checkpoint", "sandbox", sandboxID, "task", taskID, "err", err)
		return nil, false
	}
	return changes, truncated
}

// removeLegacyManifest removes the manifest a runner before issue 18 kept for a task under
// the data dir, should the task have outlived that runner.
func (r *Runner) removeLegacyManifest(taskID string) {
	p := filepath.Join(r.dataDir, "tasks", taskID+".manifest.json")
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("remove an old task manifest", "task", taskID, "err", err)
	}
}
