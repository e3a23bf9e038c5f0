// Package btrfs is sandboxd's thin interface to the btrfs kernel calls: subvolumes (made,
// deleted, snapshotted), their ids, qgroup limits, and usage read back from sysfs. What to
// do when a call fails, or when a filesystem is not btrfs, is the callers' (lifecycle's
// quotas and workspaces, lifecycle/snapshot's copies); this package only makes the calls.
//
// They are ioctls on file descriptors the caller opened itself rather than runs of the
// btrfs CLI: no package to install, no fork per call, and above all no path the CLI would
// resolve again. A workspace belongs to the sandbox, which may have put a symlink where
// .sandboxd was; `btrfs subvolume delete` realpath()s its argument and would follow it to
// whatever subvolume of the host it names. An ioctl acts on a name in a directory (or on
// the descriptor itself), so nothing is followed.
//
// Numbers and layouts are linux/btrfs.h's (a stable ABI); the tests of lifecycle and
// lifecycle/snapshot on loop-mounted btrfs filesystems exercise every one.
package btrfs

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SuperMagic is the f_type statfs reports for a btrfs filesystem.
const SuperMagic = 0x9123683e

// The ioctls that make a subvolume or a snapshot, which lifecycle's seccomp profile refuses
// to sandboxes (a subvolume a sandbox made would escape its qgroup limit, issue 12).
const (
	IocSnapCreate     = 0x50009401 // _IOW(0x94, 1, struct btrfs_ioctl_vol_args)
	IocSubvolCreate   = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	IocSnapCreateV2   = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	IocSubvolCreateV2 = 0x50009418 // _IOW(0x94, 24, struct btrfs_ioctl_vol_args_v2)
)

const (
	iocSnapDestroy = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocInoLookup   = 0xd0009412 // _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)
	iocFSInfo      = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)
	iocQuotaCtl    = 0xc0109428 // _IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args)
	iocQgroupLimit = 0x8030942b // _IOR(0x94, 43, struct btrfs_ioctl_qgroup_limit_args)

	firstFreeObjectID  = 256 // the inode number of every subvolume's root directory
	quotaCtlEnable     = 1
	qgroupLimitMaxRfer = 1 // BTRFS_QGROUP_LIMIT_MAX_RFER
)

// volArgs is struct btrfs_ioctl_vol_args (4096 bytes).
type volArgs struct {
	FD   int64
	Name [4088]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes).
type volArgsV2 struct {
	FD      int64
	TransID uint64
	Flags   uint64
	Unused  [4]uint64 // the size and qgroup_inherit union
	Name    [4040]byte
}

// inoLookupArgs is struct btrfs_ioctl_ino_lookup_args.
type inoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [4080]byte
}

// qgroupLimitArgs is struct btrfs_ioctl_qgroup_limit_args.
type qgroupLimitArgs struct {
	QgroupID uint64
	Flags    uint64
	MaxRfer  uint64
	MaxExcl  uint64
	RsvRfer  uint64
	RsvExcl  uint64
}

// quotaCtlArgs is struct btrfs_ioctl_quota_ctl_args.
type quotaCtlArgs struct {
	Cmd    uint64
	Status uint64
}

// ioctl makes request req on f with the argument struct at arg. The caller keeps f open
// (and so reachable) until it returns.
func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// newVolArgs is the argument naming the entry name of a directory; a name that is not one
// plain entry is refused before the kernel sees it.
func newVolArgs(name string) (*volArgs, error) {
	a := &volArgs{}
	if name == "" || strings.ContainsAny(name, "/\x00") || len(name) >= len(a.Name) {
		return nil, fmt.Errorf("subvolume name %q", name)
	}
	copy(a.Name[:], name)
	return a, nil
}

// CreateSubvolume creates subvolume name in the directory parent.
func CreateSubvolume(parent *os.File, name string) error {
	a, err := newVolArgs(name)
	if err != nil {
		return err
	}
	if err := ioctl(parent, IocSubvolCreate, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", name, err)
	}
	return nil
}

// DeleteSubvolume deletes subvolume name of the directory parent. A name that is not a
// subvolume's root (a symlink, a plain directory) fails with EINVAL and is left alone.
func DeleteSubvolume(parent *os.File, name string) error {
	a, err := newVolArgs(name)
	if err != nil {
		return err
	}
	if err := ioctl(parent, iocSnapDestroy, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", name, err)
	}
	return nil
}

// Snapshot makes name in the directory parent a writable snapshot of the subvolume src.
// Only the name's length is checked here; the kernel refuses one with a slash. The errno
// is wrapped, for errors.Is: a parent on a btrfs other than src's fails with EXDEV, one
// off btrfs as a rule with ENOTTY or EOPNOTSUPP.
func Snapshot(src, parent *os.File, name string) error {
	a := &volArgsV2{FD: int64(src.Fd())}
	if len(name) >= len(a.Name) {
		return fmt.Errorf("snapshot name %q is too long", name)
	}
	copy(a.Name[:], name)
	if err := ioctl(parent, IocSnapCreateV2, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("btrfs snapshot of %s: %w", src.Name(), err)
	}
	return nil
}

// IsSubvolume reports whether f is the root directory of a btrfs subvolume.
func IsSubvolume(f *os.File) bool {
	fd := int(f.Fd())
	var fs unix.Statfs_t
	var st unix.Stat_t
	if unix.Fstatfs(fd, &fs) != nil || unix.Fstat(fd, &st) != nil {
		return false
	}
	return fs.Type == SuperMagic && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == firstFreeObjectID
}

// SubvolumeID is the id of the subvolume f (a directory) lies in.
func SubvolumeID(f *os.File) (uint64, error) {
	a := &inoLookupArgs{ObjectID: firstFreeObjectID}
	if err := ioctl(f, iocInoLookup, unsafe.Pointer(a)); err != nil {
		return 0, fmt.Errorf("subvolume id: %w", err)
	}
	return a.TreeID, nil
}

// Limit sets the referenced-bytes limit of the qgroup of the subvolume f is the root of;
// 0 removes it.
func Limit(f *os.File, bytes int64) error {
	a := &qgroupLimitArgs{Flags: qgroupLimitMaxRfer, MaxRfer: uint64(bytes)}
	if bytes <= 0 {
		a.MaxRfer = ^uint64(0) // "none"
	}
	if err := ioctl(f, iocQgroupLimit, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("qgroup limit: %w", err)
	}
	return nil
}

// EnableQuota turns qgroups on for the filesystem of f; on a filesystem that has them it
// changes nothing.
func EnableQuota(f *os.File) error {
	a := &quotaCtlArgs{Cmd: quotaCtlEnable}
	if err := ioctl(f, iocQuotaCtl, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("enable quota: %w", err)
	}
	return nil
}

// FSID is the filesystem's UUID, which names its directory in /sys/fs/btrfs.
func FSID(f *os.File) (string, error) {
	var a [1024]byte // struct btrfs_ioctl_fs_info_args; the fsid is bytes 16 to 32
	if err := ioctl(f, iocFSInfo, unsafe.Pointer(&a)); err != nil {
		return "", fmt.Errorf("filesystem info: %w", err)
	}
	id := a[16:32]
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]), nil
}
