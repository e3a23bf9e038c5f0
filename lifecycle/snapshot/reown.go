package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Reown gives everything under dir (dir included) that uid from owns, as user or group,
// to uid to: a copy that becomes another sandbox's must be that sandbox's uid's (issue
// 12), and with 50,000 files one chown after another was most of a fork's time (issue
// 18). It walks like Copy: directory descriptors, no symlink followed (a link itself is
// reowned), several workers, MaxDepth levels. The set-id bits a chown clears are put back:
// the tree keeps its modes. It returns how many entries it changed.
func Reown(dir string, from, to int, opt Options) (int64, error) {
	fd, err := unix.Open(dir, dirFlags, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dir, err)
	}
	r := &reowner{from: from, to: to, maxDepth: opt.maxDepth(), slots: make(chan struct{}, opt.workers()-1)}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return 0, err
	}
	if err := r.fix(fd, "", &st); err != nil {
		unix.Close(fd)
		return 0, err
	}
	r.dir(fd, "", 0)
	r.wg.Wait()
	return r.n.Load(), r.err
}

type reowner struct {
	from, to int
	maxDepth int
	slots    chan struct{}
	wg       sync.WaitGroup
	n        atomic.Int64
	once     sync.Once
	err      error
	failed   atomic.Bool
}

func (r *reowner) fail(err error) {
	r.once.Do(func() { r.err = err; r.failed.Store(true) })
}

// dir reowns the entries of the directory fd (at rel) and closes it.
func (r *reowner) dir(fd int, rel string, depth int) {
	f := os.NewFile(uintptr(fd), rel) // owns fd: see walker.dir
	defer f.Close()
	for !r.failed.Load() {
		names, err := f.Readdirnames(readBatch)
		for _, name := range names {
			if r.failed.Load() {
				return
			}
			r.entry(fd, path.Join(rel, name), name, depth)
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			r.fail(fmt.Errorf("read %s: %w", show(rel), err))
			return
		}
	}
}

func (r *reowner) entry(dir int, p, name string, depth int) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return // gone
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := r.fixAt(dir, name, p, &st); err != nil {
			r.fail(err)
		}
		return
	}
	if depth+1 > r.maxDepth {
		r.fail(fmt.Errorf("%s: %w (more than %d levels)", show(p), ErrTooDeep, r.maxDepth))
		return
	}
	sub, err := unix.Openat(dir, name, dirFlags, 0)
	if err != nil {
		return // swapped or gone since it was listed
	}
	if err := r.fix(sub, p, &st); err != nil {
		unix.Close(sub)
		r.fail(err)
		return
	}
	select {
	case r.slots <- struct{}{}:
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-r.slots }()
			r.dir(sub, p, depth+1)
		}()
	default:
		r.dir(sub, p, depth+1)
	}
}

// owners is what st's owners become: from's turn to to, others stay.
func (r *reowner) owners(st *unix.Stat_t) (uid, gid int, change bool) {
	return (&Owner{From: r.from, To: r.to}).owners(int(st.Uid), int(st.Gid))
}

// fix reowns the open directory fd.
func (r *reowner) fix(fd int, p string, st *unix.Stat_t) error {
	uid, gid, change := r.owners(st)
	if !change {
		return nil
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", show(p), err)
	}
	r.n.Add(1)
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		return unix.Fchmod(fd, st.Mode&0o7777)
	}
	return nil
}

// fixAt reowns the non-directory name of dir, a symlink itself and not its target.
func (r *reowner) fixAt(dir int, name, p string, st *unix.Stat_t) error {
	uid, gid, change := r.owners(st)
	if !change {
		return nil
	}
	if err := unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", show(p), err)
	}
	r.n.Add(1)
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&(unix.S_ISUID|unix.S_ISGID) == 0 {
		return nil
	}
	// Put the set-id bits back through a descriptor of the very file: a chmod by name
	// would follow a symlink swapped in meanwhile.
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // gone or swapped: nothing of ours to put back
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if unix.Fstat(fd, &now) != nil || now.Ino != st.Ino || now.Dev != st.Dev {
		return nil
	}
	return unix.Fchmod(fd, st.Mode&0o7777)
}
