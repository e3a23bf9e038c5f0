// Package snapshot copies a sandbox's workspace to a snapshot and back (issue 18). A copy is
// byte for byte: contents, modes, owners, times, symlinks (never followed) and hard links
// within the tree. It is made the cheapest way the filesystem offers:
//
//   - a btrfs subvolume snapshot, when the source is a subvolume (a workspace on a btrfs
//     data dir, issue 12): one ioctl, whatever the tree's size, sharing every block;
//   - a tree of reflinked files (FICLONE: btrfs, XFS made with reflink=1): a walk that
//     shares the data blocks, so a 300 MB tree costs its metadata only;
//   - elsewhere, a parallel copy by a few workers, writing only the data of sparse files.
//
// Never hard links to the source: the source would change the snapshot through them.
//
// The source is hostile: it belongs to a sandbox, which may have put symlinks pointing
// anywhere, FIFOs, sparse files of any apparent size, deep nesting and names with newlines
// in it. The walk works on directory descriptors (openat with O_NOFOLLOW, fstat of what it
// opened), so no symlink is followed and a name swapped for a symlink mid-walk fails the
// copy instead of leading out; FIFOs and sockets are made again with mknod, never opened;
// device nodes (a sandbox cannot make one) are skipped; a hard-linked file is linked in the
// copy too, so a million links to one big file cost one file, not a million.
//
// Restore puts a snapshot back: a fresh copy next to the target, then one atomic exchange
// of names (renameat2 RENAME_EXCHANGE), so a crash leaves either the old tree or the new
// one, never half of each.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Method is how a copy is made.
type Method string

// Methods, cheapest first.
const (
	MethodBtrfs   Method = "btrfs"   // a btrfs subvolume snapshot
	MethodReflink Method = "reflink" // files cloned with FICLONE
	MethodCopy    Method = "copy"    // bytes copied
)

// Defaults of Options.
const (
	DefaultMaxDepth = 512
	maxWorkers      = 8
)

// ErrTooDeep is returned for a tree nested deeper than Options.MaxDepth.
var ErrTooDeep = errors.New("directories nested too deep")

// ErrChanged is returned when the source changed under the walk (a file replaced, a
// directory swapped for a symlink): the copy is refused rather than made of two states.
var ErrChanged = errors.New("changed while it was copied")

// ErrUnsupported is returned when a forced Method cannot be done on the filesystem.
var ErrUnsupported = errors.New("not supported by this filesystem")

// Options tune a copy. The zero value picks the cheapest method and the defaults.
type Options struct {
	// Method forces a method; "" picks the cheapest the filesystems allow. A forced btrfs
	// or reflink that the filesystem cannot do fails with ErrUnsupported (benchmarks and
	// tests force each one).
	Method Method
	// Exclude names entries of the tree's top directory that are not copied (sandboxd's
	// state dir in a workspace). Restore keeps the target's own.
	Exclude []string
	// Workers is the number of goroutines of a walk; 0 means the number of CPUs, at most 8.
	Workers int
	// MaxDepth bounds the nesting of directories; 0 means DefaultMaxDepth. A walk holds
	// two descriptors per level, so this also bounds the descriptors a hostile tree costs:
	// at most 2 × MaxDepth × (Workers + 1).
	MaxDepth int
	// Owner, when set, gives the copy to another uid as it is made: an entry that
	// Owner.From owns, as user or group, comes out Owner.To's (set-id bits kept), others
	// keep their owners, as Reown would leave them. A copy for another sandbox is thus
	// that sandbox's without a second walk (issue 18). It applies to walks only: a btrfs
	// snapshot (Result.Method MethodBtrfs) keeps the source's owners, to Reown after.
	Owner *Owner
}

// Owner maps one uid to another in a copy; see Options.Owner.
type Owner struct{ From, To int }

// owners is what an entry owned by uid and gid becomes under o: From's turn to To, others
// stay. A nil o changes nothing.
func (o *Owner) owners(uid, gid int) (int, int, bool) {
	if o == nil {
		return uid, gid, false
	}
	change := false
	if uid == o.From {
		uid, change = o.To, true
	}
	if gid == o.From {
		gid, change = o.To, true
	}
	return uid, gid, change
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return min(runtime.NumCPU(), maxWorkers)
}

func (o Options) maxDepth() int {
	if o.MaxDepth > 0 {
		return o.MaxDepth
	}
	return DefaultMaxDepth
}

func (o Options) excluded(name string) bool {
	for _, e := range o.Exclude {
		if e == name {
			return true
		}
	}
	return false
}

// Result says how a copy was made and what it held.
type Result struct {
	Method   Method
	Dirs     int64 // directories, the top one included (walks only)
	Files    int64 // regular files
	Links    int64 // hard links made to a file copied earlier in the walk
	Symlinks int64
	Special  int64 // FIFOs and sockets, made again without being opened
	Skipped  int64 // device nodes, which are not copied
	Bytes    int64 // apparent size of the regular files
	Cloned   int64 // regular files whose data was reflinked rather than copied

	// Leftover, after a Restore, names the replaced tree when it could not be removed.
	Leftover string
}

// Copy makes dst a copy of the directory src. dst must not exist and its parent must; src
// must not change meanwhile (the caller pauses or stops whatever writes it). On failure
// nothing is left at dst.
func Copy(ctx context.Context, src, dst string, opt Options) (Result, error) {
	if _, err := os.Lstat(dst); err == nil {
		return Result{}, fmt.Errorf("copy to %s: %w", dst, os.ErrExist)
	}
	res, err := copyTree(ctx, src, dst, opt)
	if err != nil {
		if rerr := Remove(dst); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the partial copy: %w", rerr))
		}
		return Result{}, err
	}
	return res, nil
}

func copyTree(ctx context.Context, src, dst string, opt Options) (Result, error) {
	if opt.Method == "" || opt.Method == MethodBtrfs {
		ok, err := btrfsSnapshot(src, dst, opt)
		switch {
		case err != nil:
			return Result{}, err
		case ok:
			return Result{Method: MethodBtrfs}, nil
		case opt.Method == MethodBtrfs:
			return Result{}, fmt.Errorf("btrfs snapshot of %s: %w", src, ErrUnsupported)
		}
	}
	return walkCopy(ctx, src, dst, opt)
}

// Remove deletes a copy: a subvolume with the btrfs call (instant), anything else with
// os.RemoveAll, which never follows a symlink. A missing path is not an error.
func Remove(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if btrfsDelete(path) == nil {
		return nil
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
