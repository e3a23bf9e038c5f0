package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"golang.org/x/sys/unix"
)

// Subvolume snapshots are made with the ioctl (internal/btrfs), not the btrfs CLI: nothing
// to install at run time, no process per snapshot, and no path resolved again by another
// program (the CLI realpath()s its arguments, and a workspace is the sandbox's to fill with
// symlinks). The ioctl takes a descriptor of the source, opened here with O_NOFOLLOW, and a
// name in the directory of another descriptor.

// btrfsSnapshot makes dst a writable snapshot of src when src is a subvolume and dst's
// parent lies on the same btrfs. It reports false, having made nothing, when that is not
// the case. The excluded entries are removed from the snapshot: a nested subvolume (the
// state dir, on a btrfs data dir) shows in it as an empty directory, a plain one in full.
func btrfsSnapshot(src, dst string, opt Options) (bool, error) {
	s, err := openDir(src, unix.O_NOFOLLOW)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", src, err)
	}
	defer s.Close()
	if !btrfs.IsSubvolume(s) {
		return false, nil
	}
	p, err := openDir(filepath.Dir(dst), 0)
	if err != nil {
		return false, fmt.Errorf("open the parent of %s: %w", dst, err)
	}
	defer p.Close()
	if err := btrfs.Snapshot(s, p, filepath.Base(dst)); err != nil {
		// Another filesystem, or a btrfs other than the source's: a walk will do.
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
			return false, nil
		}
		return false, err
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
	d, err := openDir(path, unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	sub := btrfs.IsSubvolume(d)
	d.Close()
	if !sub {
		return errors.New("not a subvolume")
	}
	p, err := openDir(filepath.Dir(path), 0)
	if err != nil {
		return err
	}
	defer p.Close()
	return btrfs.DeleteSubvolume(p, filepath.Base(path))
}

// openDir opens the directory at path, with flags added to O_RDONLY|O_DIRECTORY. It opens
// with unix.Open rather than os.OpenFile so that an error is the bare errno, which the
// callers wrap with their own context.
func openDir(path string, flags int) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}
