package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"golang.org/x/sys/unix"
)

// What a copy costs on disk, so that snapshots count toward their sandbox's quota (issue
// 18). A copied file costs its blocks; a reflinked one only the extents it no longer
// shares with anything (FIEMAP flags each shared extent): at first nothing, then what the
// workspace rewrote since. A subvolume snapshot is measured by the caller, from its
// qgroup's exclusive bytes.

const (
	xfsSuperMagic = 0x58465342
	iocFiemap     = 0xc020660b // FS_IOC_FIEMAP: _IOWR('f', 11, struct fiemap)
	extentLast    = 0x1        // FIEMAP_EXTENT_LAST
	extentShared  = 0x2000     // FIEMAP_EXTENT_SHARED
	fiemapBatch   = 64
)

// fiemapHeader is struct fiemap without its extents; fiemapExtent is struct fiemap_extent.
type fiemapHeader struct {
	Start, Length               uint64
	Flags, Mapped, Count, Spare uint32
}

type fiemapExtent struct {
	Logical, Physical, Length uint64
	_                         [2]uint64
	Flags                     uint32
	_                         [3]uint32
}

type fiemapBuf struct {
	h fiemapHeader
	e [fiemapBatch]fiemapExtent
}

// Usage is the bytes the tree dir takes on disk that nothing else shares: the blocks of
// each file and directory, once per inode, less the extents FIEMAP reports shared on a
// filesystem that shares them (btrfs, XFS). It walks like Copy, following no symlink, and
// stops at MaxDepth levels.
func Usage(dir string) (int64, error) {
	fd, err := unix.Open(dir, dirFlags, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dir, err)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		unix.Close(fd)
		return 0, err
	}
	u := &usage{shares: fs.Type == btrfs.SuperMagic || fs.Type == xfsSuperMagic, seen: map[fileKey]bool{}}
	err = u.dir(fd, 0)
	return u.bytes, err
}

type usage struct {
	shares bool
	seen   map[fileKey]bool
	bytes  int64
	buf    fiemapBuf
}

// dir adds the directory fd and what it holds, and closes it.
func (u *usage) dir(fd, depth int) error {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	u.bytes += st.Blocks * 512
	for {
		names, err := f.Readdirnames(readBatch)
		for _, name := range names {
			if err := u.entry(fd, name, depth); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (u *usage) entry(dir int, name string, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil // gone
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if depth >= DefaultMaxDepth {
			return fmt.Errorf("%s: %w", filepath.Join("…", name), ErrTooDeep)
		}
		sub, err := unix.Openat(dir, name, dirFlags, 0)
		if err != nil {
			return nil
		}
		return u.dir(sub, depth+1)
	case unix.S_IFREG:
		k := fileKey{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if u.seen[k] {
				return nil
			}
			u.seen[k] = true
		}
		if !u.shares || st.Blocks == 0 {
			u.bytes += st.Blocks * 512
			return nil
		}
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		n, err := u.unshared(fd)
		unix.Close(fd)
		if err != nil {
			n = st.Blocks * 512 // no extent map: count it all
		}
		u.bytes += n
	default:
		u.bytes += st.Blocks * 512
	}
	return nil
}

// unshared is the length of the extents of fd that FIEMAP does not flag shared.
func (u *usage) unshared(fd int) (int64, error) {
	var n int64
	start := uint64(0)
	for {
		u.buf.h = fiemapHeader{Start: start, Length: ^uint64(0) - start, Count: fiemapBatch}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), iocFiemap, uintptr(unsafe.Pointer(&u.buf))); e != 0 {
			return 0, e
		}
		if u.buf.h.Mapped == 0 {
			return n, nil
		}
		for _, x := range u.buf.e[:u.buf.h.Mapped] {
			if x.Flags&extentShared == 0 {
				n += int64(x.Length)
			}
			if x.Flags&extentLast != 0 {
				return n, nil
			}
			start = x.Logical + x.Length
		}
	}
}

// CanClone reports whether files in dir can be cloned (FICLONE): it clones a scratch file
// into another and removes both.
func CanClone(dir string) bool {
	a, err := os.CreateTemp(dir, ".clone-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(a.Name())
	defer a.Close()
	if _, err := a.Write(make([]byte, 4096)); err != nil {
		return false
	}
	b, err := os.CreateTemp(dir, ".clone-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(b.Name())
	defer b.Close()
	return unix.IoctlFileClone(int(b.Fd()), int(a.Fd())) == nil
}
