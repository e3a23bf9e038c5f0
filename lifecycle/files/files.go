// Package files reads and writes inside one sandbox workspace, confined with os.Root so
// that "..", absolute paths and a symlink in any path component cannot reach outside it.
//
// The sandbox user owns the workspace and may plant symlinks anywhere in it, at any
// moment, so nothing here resolves a host path: every operation goes through the
// workspace's *os.Root (or a Root opened beneath it), which walks each component with
// openat(O_NOFOLLOW) and refuses a symlink that leads outside. The up-front checks in
// Clean only give a clear message for paths that are wrong as written.
//
// Paths are slash-separated and relative to the sandbox home; "" (or ".") is the home.
// Every error this package returns is an *Error whose Path is the caller's path, never a
// host path, so its message is safe to show when its Err is one of the Err* kinds below
// (or fs.ErrNotExist / fs.ErrExist); any other cause is internal.
package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// Kinds of failure; match them with errors.Is.
var (
	// ErrInvalidPath: the path is wrong as written (absolute, "..", NUL, too long), names
	// the home where a file is needed, or runs through a symlink loop.
	ErrInvalidPath = errors.New("invalid path")
	// ErrEscapes: the path is well formed, but resolving it leads outside the workspace,
	// through a symlink the sandbox planted (absolute, or climbing above the home).
	ErrEscapes = errors.New("path leads outside the workspace")
	// ErrTooLarge: the content is larger than WriteOptions.MaxBytes; nothing changed.
	ErrTooLarge = errors.New("too large")
	// ErrIsDir: a file was needed and the path is a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrNotDir: a component that must be a directory is not one.
	ErrNotDir = errors.New("not a directory")
	// ErrNotRegular: the path is a FIFO, socket or device; this package only reads and
	// writes regular files (opening a FIFO would block).
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotEmpty: a directory removal without recursive found entries.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrNoSpace: the sandbox's disk quota is full (the kernel said so, or Workspace.Full).
	ErrNoSpace = errors.New("the sandbox's disk quota is full; remove files first")
)

// Error is a failed operation on a workspace path.
type Error struct {
	Op   string // "read", "write", "list", "remove", "move", "stat", "resolve"
	Path string // as the caller gave it, cleaned
	To   string // a move's destination
	Err  error  // a kind above, fs.ErrNotExist, fs.ErrExist, or an internal cause
}

func (e *Error) Error() string {
	s := e.Op + " " + show(e.Path)
	if e.To != "" {
		s += " to " + show(e.To)
	}
	return s + ": " + e.Err.Error()
}

func show(p string) string {
	if p == "" {
		return "the home"
	}
	return fmt.Sprintf("%q", p)
}

func (e *Error) Unwrap() error { return e.Err }

// Workspace is one sandbox's home directory on the host. Its methods are safe for
// concurrent use; the sandbox may change the tree under them at any time.
type Workspace struct {
	// Full, when set and true, refuses writes with ErrNoSpace: the sandbox is over a
	// quota no kernel enforces (issue 12). Reads and removals go on.
	Full func() bool

	root     *os.Root
	uid, gid int
	// escapes is os.Root's unexported "path escapes from parent" error, taken from a
	// probe at Open: os has no exported sentinel for it, and matching its text would
	// break silently if the text changed.
	escapes error
}

// Open opens the workspace at dir; files and directories it creates are owned by uid:gid
// (-1 leaves that id unchanged, as chown does).
func Open(dir string, uid, gid int) (*Workspace, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	w := &Workspace{root: r, uid: uid, gid: gid}
	if _, err := r.Lstat(".."); err != nil {
		for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
			err = u
		}
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			w.escapes = err
		}
	}
	return w, nil
}

// Close releases the workspace. Files returned by Open stay readable.
func (w *Workspace) Close() error { return w.root.Close() }

// maxPath bounds a path as Linux does (PATH_MAX).
const maxPath = 4096

// Clean validates p and returns it in canonical form: slash-separated, no "." or empty
// components, no trailing slash, "" for the home. Absolute paths, NUL bytes and ".."
// components are refused with ErrInvalidPath, whatever they would resolve to: a caller
// that sends them has a bug worth hearing about. Backslashes are ordinary characters.
func Clean(p string) (string, error) {
	invalid := func(why string) error {
		return &Error{Op: "resolve", Path: p, Err: fmt.Errorf("%w: %s", ErrInvalidPath, why)}
	}
	switch {
	case p == "" || p == ".":
		return "", nil
	case strings.IndexByte(p, 0) >= 0:
		return "", invalid("it contains a NUL byte")
	case strings.HasPrefix(p, "/"):
		return "", invalid("it is absolute; paths are relative to the sandbox home")
	case len(p) > maxPath:
		return "", invalid(fmt.Sprintf("it is longer than %d bytes", maxPath))
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == ".." {
			return "", invalid(`".." components are not allowed`)
		}
	}
	c := path.Clean(p)
	if c == "." {
		c = ""
	}
	return c, nil
}

// name is p as os.Root wants it: "." for the home.
func name(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// fail wraps err, from an operation on p, as an *Error whose Err is one of the kinds when
// the cause is understood.
func (w *Workspace) fail(op, p string, err error) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return err
	}
	kind := err
	switch {
	case w.escapes != nil && errors.Is(err, w.escapes):
		kind = ErrEscapes
	case errors.Is(err, syscall.ELOOP):
		kind = fmt.Errorf("%w: too many levels of symbolic links", ErrInvalidPath)
	case errors.Is(err, syscall.ENAMETOOLONG):
		kind = fmt.Errorf("%w: a name is too long", ErrInvalidPath)
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist: ENOTEMPTY matches it too
		kind = ErrNotEmpty
	case errors.Is(err, fs.ErrNotExist):
		kind = fs.ErrNotExist
	case errors.Is(err, fs.ErrExist):
		kind = fs.ErrExist
	case errors.Is(err, syscall.EISDIR):
		kind = ErrIsDir
	case errors.Is(err, syscall.ENOTDIR):
		kind = fmt.Errorf("%w: a component of the path is not a directory", ErrNotDir)
	case errors.Is(err, syscall.ENXIO): // O_NONBLOCK open of a FIFO without a reader
		kind = ErrNotRegular
	case errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.ENOSPC):
		kind = ErrNoSpace
	}
	return &Error{Op: op, Path: p, Err: kind}
}
