package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Subvolume snapshots are made with the ioctl, not the btrfs CLI: nothing to install at run
// time, no process per snapshot, and no path resolved again by another program (the CLI
// realpath()s its arguments, and a workspace is the sandbox's to fill with symlinks). The
// ioctl takes a descriptor of the source, opened here with O_NOFOLLOW, and a name in the
// directory of another descriptor. Numbers and layouts are linux/btrfs.h's, a stable ABI;
// lifecycle/btrfs.go (issue 12) declares the ones quotas use.
const (
	btrfsSuperMagic    = 0x9123683e
	iocSnapCreateV2    = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocSnapDestroy     = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	btrfsFirstObjectID = 256        // the inode number of every subvolume's root directory
)

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes).
type btrfsVolArgsV2 struct {
	FD      int64
	TransID uint64
	Flags   uint64
	Unused  [4]uint64 // the size and qgroup_inherit union
	Name    [4040]byte
}

// btrfsVolArgs is struct btrfs_ioctl_vol_args (4096 bytes).
type btrfsVolArgs struct {
	FD   int64
	Name [4088]byte
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// isSubvolume reports whether the directory fd is the root of a btrfs subvolume.
func isSubvolume(fd int) bool {
	var fs unix.Statfs_t
	var st unix.Stat_t
	if unix.Fstatfs(fd, &fs) != nil || unix.Fstat(fd, &st) != nil {
		return false
	}
	return fs.Type == btrfsSuperMagic && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == btrfsFirstObjectID
}

// btrfsSnapshot makes dst a writable snapshot of src when src is a subvolume and dst's
// parent lies on the same btrfs. It reports false, having made nothing, when that is not
// the case. The excluded entries are removed from the snapshot: a nested subvolume (the
// state dir, on a btrfs data dir) shows in it as an empty directory, a plain one in full.
func btrfsSnapshot(src, dst string, opt Options) (bool, error) {
	s, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", src, err)
	}
	defer unix.Close(s)
	if !isSubvolume(s) {
		return false, nil
	}
	p, err := unix.Open(filepath.Dir(dst), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open the parent of %s: %w", dst, err)
	}
	defer unix.Close(p)
	a := &btrfsVolArgsV2{FD: int64(s)}
	name := filepath.Base(dst)
	if len(name) >= len(a.Name) {
		return false, fmt.Errorf("snapshot name %q is too long", name)
	}
	copy(a.Name[:], name)
	if err := ioctl(p, iocSnapCreateV2, unsafe.Pointer(a)); err != nil {
		// Another filesystem, or a btrfs other than the source's: a walk will do.
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
			return false, nil
		}
		return false, fmt.Errorf("btrfs snapshot of %s: %w", src, err)
	}
	for _, e := range opt.Exclude {
		if err := removeIn(dst, e); err != nil {
			return true, err
		}
	}
	return true, nil
}

// removeIn removes the entry name of the directory dir, whatever it is; a missing one is
// fine.
func removeIn(dir, name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("exclude %q: not a name", name)
	}
	return os.RemoveAll(filepath.Join(dir, name))
}

// btrfsDelete deletes path when it is a subvolume; any other path is left alone and an
// error returned. The ioctl takes the name in the parent directory and refuses what is not
// a subvolume's root, so a symlink at path is never followed.
func btrfsDelete(path string) error {
	d, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	sub := isSubvolume(d)
	unix.Close(d)
	if !sub {
		return errors.New("not a subvolume")
	}
	p, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(p)
	a := &btrfsVolArgs{}
	copy(a.Name[:], filepath.Base(path))
	return ioctl(p, iocSnapDestroy, unsafe.Pointer(a))
}
