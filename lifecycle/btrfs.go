package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs calls sandboxd makes: subvolumes for workspaces, a qgroup limit on each, usage
// read back from sysfs. They are ioctls on file descriptors sandboxd opened itself rather
// than runs of the btrfs CLI: no package to install, no fork per call, and above all no
// path the CLI would resolve again. A workspace belongs to the sandbox, which may have put
// a symlink where .sandboxd was; `btrfs subvolume delete` realpath()s its argument and
// would follow it to whatever subvolume of the host it names. An ioctl acts on a name in a
// directory (or on the descriptor itself), so nothing is followed.
//
// Numbers and layouts are linux/btrfs.h's (a stable ABI); the test on a loop-mounted
// btrfs exercises every one.
const (
	btrfsSuperMagic = 0x9123683e // statfs f_type
	xfsSuperMagic   = 0x58465342

	iocSubvolCreate  = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	iocSnapDestroy   = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocInoLookup     = 0xd0009412 // _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)
	iocFSInfo        = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)
	iocQuotaCtl      = 0xc0109428 // _IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args)
	iocQgroupLimit   = 0x8030942b // _IOR(0x94, 43, struct btrfs_ioctl_qgroup_limit_args)
	iocSnapCreate    = 0x50009401 // _IOW(0x94, 1, struct btrfs_ioctl_vol_args)
	iocSnapCreateV2  = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocSubvolCreateV = 0x50009418 // _IOW(0x94, 24, struct btrfs_ioctl_vol_args_v2)

	btrfsFirstFreeObjectID = 256 // the inode number of every subvolume's root directory
	quotaCtlEnable         = 1
	qgroupLimitMaxRfer     = 1 // BTRFS_QGROUP_LIMIT_MAX_RFER
)

// btrfsVolArgs is struct btrfs_ioctl_vol_args.
type btrfsVolArgs struct {
	FD   int64
	Name [4088]byte
}

// btrfsInoLookupArgs is struct btrfs_ioctl_ino_lookup_args.
type btrfsInoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [4080]byte
}

// btrfsQgroupLimitArgs is struct btrfs_ioctl_qgroup_limit_args.
type btrfsQgroupLimitArgs struct {
	QgroupID uint64
	Flags    uint64
	MaxRfer  uint64
	MaxExcl  uint64
	RsvRfer  uint64
	RsvExcl  uint64
}

// btrfsQuotaCtlArgs is struct btrfs_ioctl_quota_ctl_args.
type btrfsQuotaCtlArgs struct {
	Cmd    uint64
	Status uint64
}

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func volArgs(name string) (*btrfsVolArgs, error) {
	a := &btrfsVolArgs{}
	if name == "" || strings.ContainsAny(name, "/\x00") || len(name) >= len(a.Name) {
		return nil, fmt.Errorf("subvolume name %q", name)
	}
	copy(a.Name[:], name)
	return a, nil
}

// btrfsCreateSubvolume creates subvolume name in the directory parent.
func btrfsCreateSubvolume(parent *os.File, name string) error {
	a, err := volArgs(name)
	if err != nil {
		return err
	}
	if err := ioctl(parent.Fd(), iocSubvolCreate, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", name, err)
	}
	return nil
}

// btrfsDeleteSubvolume deletes subvolume name of the directory parent. A name that is not
// a subvolume's root (a symlink, a plain directory) fails with EINVAL and is left alone.
func btrfsDeleteSubvolume(parent *os.File, name string) error {
	a, err := volArgs(name)
	if err != nil {
		return err
	}
	if err := ioctl(parent.Fd(), iocSnapDestroy, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", name, err)
	}
	return nil
}

// btrfsSubvolumeID is the id of the subvolume f (a directory) lies in.
func btrfsSubvolumeID(f *os.File) (uint64, error) {
	a := &btrfsInoLookupArgs{ObjectID: btrfsFirstFreeObjectID}
	if err := ioctl(f.Fd(), iocInoLookup, unsafe.Pointer(a)); err != nil {
		return 0, fmt.Errorf("subvolume id: %w", err)
	}
	return a.TreeID, nil
}

// btrfsLimit sets the referenced-bytes limit of the qgroup of the subvolume f is the root
// of; 0 removes it.
func btrfsLimit(f *os.File, bytes int64) error {
	a := &btrfsQgroupLimitArgs{Flags: qgroupLimitMaxRfer, MaxRfer: uint64(bytes)}
	if bytes <= 0 {
		a.MaxRfer = ^uint64(0) // "none"
	}
	if err := ioctl(f.Fd(), iocQgroupLimit, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("qgroup limit: %w", err)
	}
	return nil
}

// btrfsEnableQuota turns qgroups on for the filesystem of f; on a filesystem that has them
// it changes nothing.
func btrfsEnableQuota(f *os.File) error {
	a := &btrfsQuotaCtlArgs{Cmd: quotaCtlEnable}
	if err := ioctl(f.Fd(), iocQuotaCtl, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("enable quota: %w", err)
	}
	return nil
}

// btrfsFSID is the filesystem's UUID, which names its directory in /sys/fs/btrfs.
func btrfsFSID(f *os.File) (string, error) {
	var a [1024]byte
	if err := ioctl(f.Fd(), iocFSInfo, unsafe.Pointer(&a)); err != nil {
		return "", fmt.Errorf("filesystem info: %w", err)
	}
	id := a[16:32]
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]), nil
}

// isSubvolumeRoot reports whether f is the root directory of a btrfs subvolume.
func isSubvolumeRoot(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == btrfsFirstFreeObjectID
}

// qgroupSysfs reads the qgroups of one btrfs filesystem from /sys/fs/btrfs/<fsid>/qgroups
// (Linux 5.9 and later): one small file per value, no ioctl on the quota tree.
type qgroupSysfs struct{ dir string }

// referenced is the bytes the subvolume's qgroup (0/id) references now. The kernel updates
// it at each transaction commit, so it lags writes by up to the commit interval (30 s).
func (q qgroupSysfs) referenced(id uint64) (int64, error) { return q.read(id, "referenced") }

// read parses one value (a file named field) of the subvolume's qgroup (0/id).
func (q qgroupSysfs) read(id uint64, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(q.dir, "0_"+strconv.FormatUint(id, 10), field))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
}

// openQgroupSysfs finds the qgroups directory of the filesystem f lies on.
func openQgroupSysfs(f *os.File) (qgroupSysfs, error) {
	fsid, err := btrfsFSID(f)
	if err != nil {
		return qgroupSysfs{}, err
	}
	dir := filepath.Join("/sys/fs/btrfs", fsid, "qgroups")
	if _, err := os.Stat(dir); err != nil {
		return qgroupSysfs{}, errors.New("this kernel has no /sys/fs/btrfs/<fsid>/qgroups (Linux 5.9 or later has)")
	}
	return qgroupSysfs{dir: dir}, nil
}
