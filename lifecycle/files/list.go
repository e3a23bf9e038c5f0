package files

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeOther   = "other" // FIFO, socket, device
)

// Entry describes one path in the workspace. A symlink is described as itself, never
// as what it points to.
type Entry struct {
	Path    string // relative to the home; "" is the home
	Name    string // the last component; "" for the home
	Type    string // TypeFile, TypeDir, TypeSymlink or TypeOther
	Size    int64
	Mode    fs.FileMode // permission bits and the setuid, setgid and sticky bits
	ModTime time.Time
	Target  string // a symlink's target as written in the link, for display only
	// Skipped marks a directory a recursive List did not descend into (see SkipDirs).
	Skipped bool
}

func entryOf(p string, fi fs.FileInfo) Entry {
	e := Entry{Path: p, Name: path.Base(p), Size: fi.Size(), ModTime: fi.ModTime(),
		Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
	if p == "" {
		e.Name = ""
	}
	switch t := fi.Mode().Type(); {
	case t == 0:
		e.Type = TypeFile
	case t == fs.ModeDir:
		e.Type = TypeDir
	case t == fs.ModeSymlink:
		e.Type = TypeSymlink
	default:
		e.Type = TypeOther
	}
	return e
}

// Stat describes p itself: when p's last component is a symlink, the link (with its
// Target), not what it points to. Symlinks in the other components are followed inside
// the workspace only.
func (w *Workspace) Stat(p string) (Entry, error) {
	p, err := Clean(p)
	if err != nil {
		return Entry{}, err
	}
	fi, err := w.root.Lstat(name(p))
	if err != nil {
		return Entry{}, w.fail("stat", p, err)
	}
	return w.describe(p, fi), nil
}

// describe is entryOf plus the link target of a symlink.
func (w *Workspace) describe(p string, fi fs.FileInfo) Entry {
	e := entryOf(p, fi)
	if e.Type == TypeSymlink {
		e.Target, _ = w.root.Readlink(p) // display only: a link replaced meanwhile shows none
	}
	return e
}

// SkipDirs are the directories a recursive List lists but does not descend into unless
// ListOptions.All is set: dependency trees, VCS internals, sandbox-init's state and caches,
// which would otherwise fill the limit before the project's own files.
var SkipDirs = map[string]bool{"node_modules": true, ".git": true, ".sandboxd": true, ".cache": true}

// DefaultListLimit is the most entries List returns when ListOptions.Limit is 0.
const DefaultListLimit = 10000

// ListOptions shape a List.
type ListOptions struct {
	// Recursive lists the whole tree below the directory, depth first in lexical order,
	// never following symlinks. Directories named in SkipDirs (at any depth below the
	// listed directory) appear with Skipped set and are not descended into.
	Recursive bool
	// All descends into SkipDirs too.
	All bool
	// Limit caps the number of entries; 0 means DefaultListLimit.
	Limit int
}

// List returns the entries of the directory p sorted by name (a recursive listing: by
// path, depth first). truncated reports that the limit cut the listing short. A symlink
// as p's last component is followed when it stays in the workspace; listed entries that
// are symlinks are shown as links.
func (w *Workspace) List(p string, o ListOptions) (entries []Entry, truncated bool, err error) {
	p, err = Clean(p)
	if err != nil {
		return nil, false, err
	}
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	fi, err := w.root.Stat(name(p))
	if err != nil {
		return nil, false, w.fail("list", p, err)
	}
	if !fi.IsDir() {
		return nil, false, w.fail("list", p, ErrNotDir)
	}
	entries = []Entry{}
	if !o.Recursive {
		f, err := w.root.Open(name(p))
		if err != nil {
			return nil, false, w.fail("list", p, err)
		}
		defer f.Close()
		// ReadDir on a file opened in a Root stats each entry with fstatat on the open
		// directory, never by host path, so a swapped component cannot redirect it.
		des, err := f.ReadDir(-1)
		if err != nil {
			return nil, false, w.fail("list", p, err)
		}
		slices.SortFunc(des, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		for _, d := range des {
			if len(entries) == limit {
				return entries, true, nil
			}
			info, err := d.Info()
			if err != nil {
				continue // removed since the directory was read
			}
			entries = append(entries, w.describe(path.Join(p, d.Name()), info))
		}
		return entries, false, nil
	}
	// fs.WalkDir over the Root's FS: it never follows a symlink (a link is not a dir
	// entry of type dir), and every open goes through the Root.
	err = fs.WalkDir(w.root.FS(), name(p), func(fp string, d fs.DirEntry, err error) error {
		if fp == name(p) {
			return err // the listed directory itself: not an entry; an error ends the walk
		}
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir // unreadable or vanished directory: keep the rest
			}
			return nil
		}
		if len(entries) == limit {
			truncated = true
			return fs.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		e := w.describe(fp, info) // WalkDir joins with path.Join: "." + "a" is "a"
		skip := d.IsDir() && !o.All && SkipDirs[d.Name()]
		e.Skipped = skip
		entries = append(entries, e)
		if skip {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.SkipAll) {
		return nil, false, w.fail("list", p, err)
	}
	return entries, truncated, nil
}
