package btrfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

// QgroupSysfs reads the qgroups of one btrfs filesystem from /sys/fs/btrfs/<fsid>/qgroups
// (Linux 5.9 and later): one small file per value, no ioctl on the quota tree. The zero
// value reads nothing.
type QgroupSysfs struct{ dir string }

// OpenQgroupSysfs finds the qgroups directory of the filesystem f lies on.
func OpenQgroupSysfs(f *os.File) (QgroupSysfs, error) {
	fsid, err := FSID(f)
	if err != nil {
		return QgroupSysfs{}, err
	}
	dir := filepath.Join("/sys/fs/btrfs", fsid, "qgroups")
	if _, err := os.Stat(dir); err != nil {
		return QgroupSysfs{}, errors.New("this kernel has no /sys/fs/btrfs/<fsid>/qgroups (Linux 5.9 or later has)")
	}
	return QgroupSysfs{dir: dir}, nil
}

// Dir is the qgroups directory, which holds one directory per qgroup (0_<id> for a
// subvolume's).
func (q QgroupSysfs) Dir() string { return q.dir }

// Referenced is the bytes the subvolume's qgroup (0/id) references now. The kernel updates
// it at each transaction commit, so it lags writes by up to the commit interval (30 s).
func (q QgroupSysfs) Referenced(id uint64) (int64, error) { return q.read(id, "referenced") }

// Exclusive is the bytes only the subvolume's qgroup (0/id) references; like Referenced,
// it lags writes by up to a transaction commit.
func (q QgroupSysfs) Exclusive(id uint64) (int64, error) { return q.read(id, "exclusive") }

// read parses one value (a file named field) of the subvolume's qgroup (0/id).
func (q QgroupSysfs) read(id uint64, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(q.dir, "0_"+strconv.FormatUint(id, 10), field))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
}
