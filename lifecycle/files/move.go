package files

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"syscall"
)

// Remove deletes p. A symlink is removed itself, never what it points to. A directory
// with entries needs recursive (else ErrNotEmpty); a recursive removal never follows a
// symlink inside the tree. The home itself cannot be removed (ErrInvalidPath).
func (w *Workspace) Remove(p string, recursive bool) error {
	p, err := Clean(p)
	if err != nil {
		return err
	}
	if p == "" {
		return w.fail("remove", p, fmt.Errorf("%w: the home itself cannot be removed", ErrInvalidPath))
	}
	fi, err := w.root.Lstat(p)
	if err != nil {
		return w.fail("remove", p, err)
	}
	if fi.IsDir() && recursive {
		err = w.root.RemoveAll(p)
	} else {
		err = w.root.Remove(p)
	}
	if errors.Is(err, syscall.EEXIST) {
		err = syscall.ENOTEMPTY // some filesystems answer rmdir of a non-empty dir so
	}
	return w.fail("remove", p, err)
}

// Move renames from to to, creating to's missing parent directories (owned by uid:gid).
// A symlink is moved itself. An existing to is ErrExist unless overwrite, and even then
// a directory at to is ErrExist: replacing a tree is a Remove first. Neither path may be
// the home, and a directory cannot move into itself.
//
// Without overwrite, a to the sandbox creates between the check and the rename is
// replaced: the only thing at stake is the sandbox's own file in its own workspace.
func (w *Workspace) Move(from, to string, overwrite bool) error {
	from, err := Clean(from)
	if err != nil {
		return err
	}
	to, err = Clean(to)
	if err != nil {
		return err
	}
	if from == "" || to == "" {
		return w.fail("move", from, fmt.Errorf("%w: the home itself cannot be moved or replaced", ErrInvalidPath))
	}
	if from == to || hasPrefixDir(to, from) {
		return w.fail("move", from, fmt.Errorf("%w: %q cannot move onto or into itself", ErrInvalidPath, from))
	}
	if _, err := w.root.Lstat(from); err != nil {
		return w.fail("move", from, err)
	}
	switch fi, err := w.root.Lstat(to); {
	case err == nil && (!overwrite || fi.IsDir()):
		return w.fail("move", to, fs.ErrExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return w.fail("move", to, err)
	}
	made, err := w.mkdirParents(path.Dir(to))
	if err != nil {
		return w.fail("move", to, err)
	}
	if err := w.root.Rename(from, to); err != nil {
		w.unmake(made)
		if errors.Is(err, syscall.EINVAL) { // into itself, through a symlinked parent
			err = fmt.Errorf("%w: %q cannot move into itself", ErrInvalidPath, from)
		}
		err = w.fail("move", from, err)
		if fe := (*Error)(nil); errors.As(err, &fe) {
			fe.To = to
		}
		return err
	}
	return nil
}

// hasPrefixDir reports whether p lies below dir.
func hasPrefixDir(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}
