package files

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// WriteOptions shape a Write.
type WriteOptions struct {
	// Append adds to the end of the file (created when missing) instead of replacing it.
	// An append is not atomic: a reader may see part of the new bytes before the rest.
	Append bool
	// Mode is the permission bits (0-0777; other bits are ignored). 0 means 0644 for a
	// new file and the current bits for a file that is replaced or appended to.
	Mode fs.FileMode
	// MaxBytes caps the bytes taken from the reader; more is ErrTooLarge and leaves the
	// target as it was. 0 or less means no cap.
	MaxBytes int64
}

// defaultMode is the mode of a new file written without WriteOptions.Mode.
const defaultMode = 0o644

// dirMode is the mode of the parent directories Write and Move create.
const dirMode = 0o755

// Write stores r's bytes at p, creating missing parent directories (owned by uid:gid,
// mode 0755). The written file is owned by uid:gid. created reports that p did not exist.
//
// A normal write is atomic: the bytes go to a temporary file beside p (created with
// O_EXCL, named ".<name>.sandboxd-tmp-<random>"), which is synced, chowned, chmodded and
// renamed over p, so a reader sees the old content or the new, never a mix, and a failure
// leaves p untouched. When p is a symlink the rename replaces the link itself and nothing
// is written through it; a link that leads outside the workspace is refused with
// ErrEscapes all the same, so the caller hears that the path was not what it seemed.
//
// An append follows a symlink that stays in the workspace, and on ErrTooLarge cuts the
// file back to its length before the append.
func (w *Workspace) Write(p string, r io.Reader, o WriteOptions) (e Entry, created bool, err error) {
	p, err = Clean(p)
	if err != nil {
		return Entry{}, false, err
	}
	if p == "" {
		return Entry{}, false, w.fail("write", p, ErrIsDir)
	}
	if w.Full != nil && w.Full() {
		return Entry{}, false, w.fail("write", p, ErrNoSpace)
	}
	made, err := w.mkdirParents(path.Dir(p))
	if err != nil {
		return Entry{}, false, w.fail("write", p, err)
	}
	defer func() {
		if err != nil {
			w.unmake(made) // "nothing changed" includes the parents made for this write
		}
	}()
	if o.Append {
		e, created, err = w.appendTo(p, r, o)
	} else {
		e, created, err = w.replace(p, r, o)
	}
	if err != nil {
		return Entry{}, false, w.fail("write", p, err)
	}
	return e, created, nil
}

// replace is the atomic write of p.
func (w *Workspace) replace(p string, r io.Reader, o WriteOptions) (Entry, bool, error) {
	// The parent is opened once and every later step is relative to it: the sandbox may
	// rename or swap directories meanwhile, and the temp file must land beside the target.
	dir, err := w.root.OpenRoot(name(path.Dir(p)))
	if err != nil {
		// OpenRoot of a non-directory fails with an error that has no errno to classify.
		if fi, serr := w.root.Stat(name(path.Dir(p))); serr == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
		return Entry{}, false, err
	}
	defer dir.Close()
	base := path.Base(p)
	mode := o.Mode.Perm()
	created := false
	switch fi, err := dir.Lstat(base); {
	case errors.Is(err, fs.ErrNotExist):
		created = true
	case err != nil:
		return Entry{}, false, err
	case fi.IsDir():
		return Entry{}, false, ErrIsDir
	case fi.Mode()&fs.ModeSymlink != 0:
		// Only to answer clearly: the rename below never follows the link, whatever it
		// points to by then.
		// (Resolved from the workspace root: a link "../x" may leave dir and stay inside.)
		if _, err := w.root.Stat(p); w.escapes != nil && errors.Is(err, w.escapes) {
			return Entry{}, false, ErrEscapes
		}
	case fi.Mode().IsRegular() && mode == 0:
		mode = fi.Mode().Perm()
	}
	if mode == 0 {
		mode = defaultMode
	}
	tmp := tempName(base)
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Entry{}, false, err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			dir.Remove(tmp)
		}
	}()
	if err := copyCapped(f, r, o.MaxBytes); err != nil {
		return Entry{}, false, err
	}
	fi, err := w.settle(f, mode)
	if err != nil {
		return Entry{}, false, err
	}
	if err := f.Close(); err != nil {
		return Entry{}, false, err
	}
	if err := dir.Rename(tmp, base); err != nil {
		return Entry{}, false, err
	}
	keep = true
	syncDir(dir)
	return entryOf(p, fi), created, nil
}

// appendTo adds r's bytes to p, creating it when missing.
func (w *Workspace) appendTo(p string, r io.Reader, o WriteOptions) (Entry, bool, error) {
	mode := o.Mode.Perm()
	created := true
	perm := mode
	if perm == 0 {
		perm = defaultMode
	}
	// O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader.
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NONBLOCK
	f, err := w.root.OpenFile(p, flags|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = w.root.OpenFile(p, flags, 0)
	}
	if err != nil {
		return Entry{}, false, err
	}
	defer f.Close()
	before, err := f.Stat()
	switch {
	case err != nil:
		return Entry{}, false, err
	case before.IsDir():
		return Entry{}, false, ErrIsDir
	case !before.Mode().IsRegular():
		return Entry{}, false, ErrNotRegular
	}
	if err := copyCapped(f, r, o.MaxBytes); err != nil {
		if created {
			w.root.Remove(p)
		} else {
			f.Truncate(before.Size())
		}
		return Entry{}, false, err
	}
	if created {
		mode = perm // the umask may have taken bits from the create
	}
	fi, err := w.settle(f, mode)
	if err != nil {
		return Entry{}, false, err
	}
	return entryOf(p, fi), created, nil
}

// settle gives a written file to the sandbox user, sets its mode (0 keeps it), syncs it and
// describes it. Everything goes through the descriptor, not the name: the sandbox can rename
// or replace the file meanwhile, but not what the descriptor refers to.
func (w *Workspace) settle(f *os.File, mode fs.FileMode) (fs.FileInfo, error) {
	if err := w.own(f); err != nil {
		return nil, err
	}
	if mode != 0 {
		if err := f.Chmod(mode); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return f.Stat()
}

// copyCapped copies r into f, at most max bytes (max <= 0: no cap).
func copyCapped(f *os.File, r io.Reader, max int64) error {
	if max <= 0 {
		_, err := io.Copy(f, r)
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, max+1))
	if err != nil {
		return err
	}
	if n > max {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return nil
}

// own gives f to the workspace owner.
func (w *Workspace) own(f *os.File) error {
	if w.uid < 0 && w.gid < 0 {
		return nil
	}
	return f.Chown(w.uid, w.gid)
}

// tempName is the name of a write's temporary file beside base. The name is shortened so
// that the temp name fits in NAME_MAX (255) whenever base does.
func tempName(base string) string {
	var b [8]byte
	rand.Read(b[:])
	if len(base) > 200 {
		base = base[:200]
	}
	return "." + base + ".sandboxd-tmp-" + hex.EncodeToString(b[:])
}

// syncDir makes a rename in dir durable; a failure only costs durability on a crash.
func syncDir(dir *os.Root) {
	if d, err := dir.Open("."); err == nil {
		d.Sync()
		d.Close()
	}
}

// mkdirParents creates the missing directories of p (relative, cleaned), owned by
// uid:gid with mode 0755, and returns the ones it made, outermost first. Each step goes
// through the Root: a component that is a symlink leading outside stops it with the
// escape error before anything is created there.
func (w *Workspace) mkdirParents(p string) (made []string, err error) {
	if p == "." || p == "" {
		return nil, nil
	}
	cur := ""
	for c := range strings.SplitSeq(p, "/") {
		cur = path.Join(cur, c)
		err := w.root.Mkdir(cur, dirMode)
		if errors.Is(err, fs.ErrExist) {
			continue // a directory, or something the next step will refuse
		}
		if err != nil {
			w.unmake(made)
			return nil, err
		}
		made = append(made, cur)
		// Lchown, and Chmod for the umask: cur was just made by us; if the sandbox swaps
		// it for a symlink meanwhile, Lchown changes the link and Chmod stays in the Root.
		if w.uid >= 0 || w.gid >= 0 {
			err = w.root.Lchown(cur, w.uid, w.gid)
		}
		if err == nil {
			err = w.root.Chmod(cur, dirMode)
		}
		if err != nil {
			w.unmake(made)
			return nil, err
		}
	}
	return made, nil
}

// unmake removes directories mkdirParents made, innermost first, if they are still empty.
func (w *Workspace) unmake(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		w.root.Remove(made[i])
	}
}
