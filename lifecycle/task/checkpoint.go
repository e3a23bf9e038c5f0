package task

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// A checkpoint is a manifest of the app dir (path → size and modification time) taken from
// the host through os.Root when a task starts; files changed are the difference with the
// app dir when it ends. It needs nothing in the image (no git), never touches the app's own
// .git, and runs no code of the sandbox's on the host.

type manifest map[string]fileStamp

type fileStamp struct {
	Size  int64 `json:"s"`
	MTime int64 `json:"m"`
}

// FileChange is one file a task added, modified or deleted, relative to the app dir.
type FileChange struct {
	Path   string `json:"path"`
	Change string `json:"change"` // added, modified, deleted
}

// skipDirs are not walked: dependencies and caches change in bulk and say nothing a user
// wants in "files changed".
var skipDirs = map[string]bool{"node_modules": true, ".git": true, ".cache": true, ".next": true, ".vite": true, "dist": true, ".sandboxd": true}

const maxManifest = 50000

// takeManifest walks the app dir of a workspace.
func takeManifest(workspace string) (manifest, error) {
	root, err := os.OpenRoot(workspace)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	m := manifest{}
	const app = "workspace/app"
	err = fs.WalkDir(root.FS(), app, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == app && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return nil // unreadable entry: skip it, keep walking
		}
		if d.IsDir() {
			if p != app && skipDirs[d.Name()] {
				return fs.SkipDir
			}
			return nil
		}
		if len(m) >= maxManifest {
			return fs.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel := p[len(app)+1:]
		m[rel] = fileStamp{Size: info.Size(), MTime: info.ModTime().UnixNano()}
		return nil
	})
	return m, err
}

// changes lists what differs between two manifests, sorted by path.
func changes(before, after manifest) []FileChange {
	out := []FileChange{}
	for p, a := range after {
		b, ok := before[p]
		switch {
		case !ok:
			out = append(out, FileChange{p, "added"})
		case a != b:
			out = append(out, FileChange{p, "modified"})
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, FileChange{p, "deleted"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// The manifest of a running task is kept under the data dir (host-owned), so a restarted
// sandboxd can still compute the task's changes.
func (r *Runner) manifestPath(taskID string) string {
	return filepath.Join(r.dataDir, "tasks", taskID+".manifest.json")
}

func (r *Runner) saveManifest(taskID string, mf manifest) error {
	if err := os.MkdirAll(filepath.Join(r.dataDir, "tasks"), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(mf)
	if err != nil {
		return err
	}
	return os.WriteFile(r.manifestPath(taskID), b, 0o600)
}

func (r *Runner) loadManifest(taskID string) (manifest, error) {
	b, err := os.ReadFile(r.manifestPath(taskID))
	if err != nil {
		return nil, err
	}
	var mf manifest
	return mf, json.Unmarshal(b, &mf)
}
