package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	dirFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	readBatch = 512 // names read from a directory at a time: a huge directory costs no more memory
)

// walker copies one tree. Each directory is copied by one goroutine; a subdirectory goes to
// a new goroutine while a worker slot is free, else the finder copies it itself, so there
// are never more than Workers goroutines and no queue to grow.
type walker struct {
	ctx      context.Context
	opt      Options
	maxDepth int
	slots    chan struct{}
	wg       sync.WaitGroup

	failOnce sync.Once
	err      error
	failed   atomic.Bool

	clone    atomic.Bool // FICLONE still worth trying
	forced   bool        // opt.Method is reflink: a file that cannot be cloned fails the copy
	dstRoot  int         // descriptor of dst, for hard links
	links    linkSet
	res      counters
	bufs     sync.Pool
	canClone bool // opt allows FICLONE at all
}

type counters struct {
	dirs, files, links, symlinks, special, skipped, bytes, cloned, copied atomic.Int64
}

func walkCopy(ctx context.Context, src, dst string, opt Options) (Result, error) {
	s, err := unix.Open(src, dirFlags, 0)
	if err != nil {
		return Result{}, fmt.Errorf("open %s: %w", src, err)
	}
	if err := unix.Mkdir(dst, 0o700); err != nil {
		unix.Close(s)
		return Result{}, fmt.Errorf("create %s: %w", dst, err)
	}
	d, err := unix.Open(dst, dirFlags, 0)
	if err != nil {
		unix.Close(s)
		return Result{}, fmt.Errorf("open %s: %w", dst, err)
	}
	droot, err := unix.Dup(d)
	if err != nil {
		unix.Close(s)
		unix.Close(d)
		return Result{}, err
	}
	defer unix.Close(droot)
	w := &walker{
		ctx: ctx, opt: opt, maxDepth: opt.maxDepth(), slots: make(chan struct{}, opt.workers()-1),
		dstRoot: droot, forced: opt.Method == MethodReflink,
		canClone: opt.Method != MethodCopy,
		links:    linkSet{m: map[fileKey]string{}},
		bufs:     sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }},
	}
	w.clone.Store(w.canClone)
	w.dir(s, d, "", 0)
	w.wg.Wait()
	if w.err != nil {
		return Result{}, w.err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res := Result{
		Method: MethodCopy,
		Dirs:   w.res.dirs.Load(), Files: w.res.files.Load(), Links: w.res.links.Load(),
		Symlinks: w.res.symlinks.Load(), Special: w.res.special.Load(), Skipped: w.res.skipped.Load(),
		Bytes: w.res.bytes.Load(), Cloned: w.res.cloned.Load(),
	}
	// A tree whose data was all cloned is a reflink copy; a tree of empty files alone
	// too, when cloning was still possible.
	if w.res.copied.Load() == 0 && (res.Cloned > 0 || w.clone.Load()) {
		res.Method = MethodReflink
	}
	return res, nil
}

// fail records the walk's first error; every goroutine stops at its next entry.
func (w *walker) fail(err error) {
	w.failOnce.Do(func() { w.err = err; w.failed.Store(true) })
}

func (w *walker) stopped() bool {
	if w.failed.Load() {
		return true
	}
	if err := w.ctx.Err(); err != nil {
		w.fail(err)
		return true
	}
	return false
}

// dir copies the entries of the directory s into d and then d's owner, mode and times
// from s, and closes both. rel is its path in the tree, for errors and hard links.
func (w *walker) dir(s, d int, rel string, depth int) {
	// f owns s from here: closing s behind its back would let its finalizer close the
	// number again later, when it may name another file.
	f := os.NewFile(uintptr(s), rel)
	defer f.Close()
	defer unix.Close(d)
	w.res.dirs.Add(1)
	for !w.stopped() {
		names, err := f.Readdirnames(readBatch)
		for _, name := range names {
			if w.stopped() {
				break
			}
			if depth == 0 && w.opt.excluded(name) {
				continue
			}
			if err := w.entry(s, d, rel, name, depth); err != nil {
				w.fail(err)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.fail(fmt.Errorf("read %s: %w", show(rel), err))
			}
			break
		}
	}
	if w.stopped() {
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(s, &st); err != nil {
		w.fail(fmt.Errorf("stat %s: %w", show(rel), err))
		return
	}
	if err := w.setMeta(d, &st); err != nil {
		w.fail(fmt.Errorf("%s: %w", show(rel), err))
	}
}

// entry copies one entry of the directory s (at rel) into d.
func (w *walker) entry(s, d int, rel, name string, depth int) error {
	p := path.Join(rel, name)
	var st unix.Stat_t
	if err := unix.Fstatat(s, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", show(p), err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return w.subdir(s, d, p, name, depth+1)
	case unix.S_IFREG:
		return w.file(s, d, p, name, &st)
	case unix.S_IFLNK:
		return w.symlink(s, d, p, name, &st)
	case unix.S_IFIFO, unix.S_IFSOCK:
		// Made again, never opened: opening a FIFO for reading would wait for a writer.
		if err := unix.Mknodat(d, name, st.Mode&(unix.S_IFMT|0o7777), 0); err != nil {
			return fmt.Errorf("make %s: %w", show(p), err)
		}
		if err := w.setMetaAt(d, name, &st); err != nil {
			return fmt.Errorf("%s: %w", show(p), err)
		}
		w.res.special.Add(1)
	default:
		// A device node: a sandbox has no CAP_MKNOD, so it cannot have made one, and a copy
		// of one would open a host device to whoever gets the tree back.
		w.res.skipped.Add(1)
	}
	return nil
}

// subdir makes the directory name in d and copies s's one into it, on a goroutine of its
// own when a worker slot is free.
func (w *walker) subdir(s, d int, p, name string, depth int) error {
	if depth > w.maxDepth {
		return fmt.Errorf("%s: %w (more than %d levels)", show(p), ErrTooDeep, w.maxDepth)
	}
	cs, err := unix.Openat(s, name, dirFlags, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: %w", show(p), ErrChanged) // swapped for a symlink or removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", show(p), err)
	}
	if err := unix.Mkdirat(d, name, 0o700); err != nil {
		unix.Close(cs)
		return fmt.Errorf("create %s: %w", show(p), err)
	}
	cd, err := unix.Openat(d, name, dirFlags, 0)
	if err != nil {
		unix.Close(cs)
		return fmt.Errorf("open the copy of %s: %w", show(p), err)
	}
	select {
	case w.slots <- struct{}{}:
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer func() { <-w.slots }()
			w.dir(cs, cd, p, depth)
		}()
	default:
		w.dir(cs, cd, p, depth)
	}
	return nil
}

func (w *walker) symlink(s, d int, p, name string, st *unix.Stat_t) error {
	target, err := readlinkat(s, name)
	if err != nil {
		return fmt.Errorf("read link %s: %w", show(p), err)
	}
	if err := unix.Symlinkat(target, d, name); err != nil {
		return fmt.Errorf("make link %s: %w", show(p), err)
	}
	if err := w.setMetaAt(d, name, st); err != nil {
		return fmt.Errorf("%s: %w", show(p), err)
	}
	w.res.symlinks.Add(1)
	return nil
}

// readlinkat reads a symlink's target; Linux bounds targets to PATH_MAX.
func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// owners is the owner and group a copy of an entry with st gets: st's, mapped by
// Options.Owner.
func (w *walker) owners(st *unix.Stat_t) (uid, gid int) {
	uid, gid, _ = w.opt.Owner.owners(int(st.Uid), int(st.Gid))
	return uid, gid
}

// setMeta gives the open file or directory fd the owner (see owners), mode and times of
// st. The owner goes first: chown clears the set-id bits that the mode then puts back.
func (w *walker) setMeta(fd int, st *unix.Stat_t) error {
	uid, gid := w.owners(st)
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := futimens(fd, ts); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// setMetaAt is setMeta for the entry name of the directory d, not following a symlink. A
// symlink's mode cannot be set (it is always 0777); a FIFO's or socket's mode is set by
// name, as it is one this walk has just made.
func (w *walker) setMetaAt(d int, name string, st *unix.Stat_t) error {
	uid, gid := w.owners(st)
	if err := unix.Fchownat(d, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(d, name, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(d, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// show quotes a path of the tree for an error: names may hold newlines and anything else.
func show(p string) string {
	if p == "" {
		return "the top directory"
	}
	return fmt.Sprintf("%q", p)
}

// futimens sets the times of the open fd (utimensat with a NULL path, as libc's futimens).
func futimens(fd int, ts []unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
