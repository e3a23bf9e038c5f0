package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tempPrefix starts the name of a tree Restore (or a caller of TempPath) is making beside
// its target; CleanTemp removes the ones a crash left.
const tempPrefix = ".tmp-"

// Restore replaces the directory target with a copy of snap. The copy is made beside the
// target, the target's excluded entries (sandboxd's state dir) are moved into it, and the
// two names are exchanged in one renameat2(RENAME_EXCHANGE): at every instant target is
// either the whole old tree or the whole new one. Whatever writes to target must be
// stopped meanwhile (a running container keeps the directory it mounted, not the name).
//
// On success the old tree is removed; if that fails, Result.Leftover names it (CleanTemp
// removes it later). On failure target is as it was.
func Restore(ctx context.Context, snap, target string, opt Options) (Result, error) {
	tmp, err := TempPath(target)
	if err != nil {
		return Result{}, err
	}
	res, err := Copy(ctx, snap, tmp, opt)
	if err != nil {
		return Result{}, err
	}
	var moved []string
	undo := func(err error) (Result, error) {
		for _, name := range moved {
			if merr := moveEntry(tmp, target, name); merr != nil {
				err = errors.Join(err, fmt.Errorf("move %s back: %w", name, merr))
			}
		}
		if rerr := Remove(tmp); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return Result{}, err
	}
	for _, name := range opt.Exclude {
		ok, err := moveEntryIfAny(target, tmp, name)
		if err != nil {
			return undo(fmt.Errorf("keep %s: %w", name, err))
		}
		if ok {
			moved = append(moved, name)
		}
	}
	// Moving entries in changed the new top directory's times; give it the snapshot's.
	var st unix.Stat_t
	if err := unix.Lstat(snap, &st); err != nil {
		return undo(fmt.Errorf("stat %s: %w", snap, err))
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, tmp, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return undo(fmt.Errorf("set times of %s: %w", tmp, err))
	}
	if err := exchange(target, tmp); err != nil {
		return undo(err)
	}
	// tmp is now the old tree.
	if err := Remove(tmp); err != nil {
		res.Leftover = tmp
	}
	return res, nil
}

// TempPath is a fresh name beside path for a tree being made there, which CleanTemp
// removes should a crash leave it.
func TempPath(path string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(path), tempPrefix+filepath.Base(path)+"-"+hex.EncodeToString(b[:])), nil
}

// CleanTemp removes what an interrupted Restore (or TempPath's caller) left in dir.
// Call it at boot, before anything restores into dir.
func CleanTemp(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			errs = append(errs, Remove(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// moveEntryIfAny moves name from the directory from into to, reporting whether there was
// one. An entry already in to is replaced.
func moveEntryIfAny(from, to, name string) (bool, error) {
	if _, err := os.Lstat(filepath.Join(from, name)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err := removeIn(to, name); err != nil {
		return false, err
	}
	return true, moveEntry(from, to, name)
}

// moveEntry renames from/name to to/name. On btrfs a plain directory cannot be renamed out
// of its subvolume (EXDEV; a subvolume can); it is copied, then removed.
func moveEntry(from, to, name string) error {
	src, dst := filepath.Join(from, name), filepath.Join(to, name)
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EXDEV) {
		return err
	}
	if _, err := Copy(context.Background(), src, dst, Options{}); err != nil {
		return err
	}
	return Remove(src)
}

// exchange swaps the names a and b in one step. Every filesystem sandboxd runs on (ext4,
// XFS, btrfs, tmpfs, overlayfs) can; on one that cannot, restore fails, changing nothing,
// rather than rename three times and open a window in which a crash leaves no workspace.
func exchange(a, b string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, a, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchange %s and %s (renameat2 RENAME_EXCHANGE): %w", a, b, err)
	}
	return nil
}
