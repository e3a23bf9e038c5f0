package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Change is one file (anything but a directory) that differs between two trees.
type Change struct {
	Path   string `json:"path"`
	Change string `json:"change"` // added, modified or deleted
}

// Kinds of Change.
const (
	Added    = "added"
	Modified = "modified"
	Deleted  = "deleted"
)

// DiffOptions bound a Diff.
type DiffOptions struct {
	// Skip names directories (below the top) that are not compared: dependencies and caches
	// change in bulk and say nothing a user wants in "files changed".
	Skip func(name string) bool
	// MaxChanges stops the diff at this many changes; 0 means 50,000.
	MaxChanges int
	// MaxEntries stops it after comparing this many entries; 0 means 500,000.
	MaxEntries int
}

// Diff lists the files that differ between before/sub and after/sub, sorted by path
// (relative to sub). A file is modified when its type, mode, size, link target or contents
// differ; one whose size and modification time are both unchanged is taken as unchanged
// without reading it. truncated says the diff stopped at a bound. A missing sub on one side
// is an empty tree. Both trees are walked as Copy walks, following no symlink.
func Diff(ctx context.Context, before, after, sub string, opt DiffOptions) (changes []Change, truncated bool, err error) {
	d := &differ{ctx: ctx, opt: opt, maxChanges: opt.MaxChanges, maxEntries: opt.MaxEntries, readBudget: maxDiffRead}
	if d.maxChanges <= 0 {
		d.maxChanges = 50000
	}
	if d.maxEntries <= 0 {
		d.maxEntries = 500000
	}
	b, err := openSub(before, sub)
	if err != nil {
		return nil, false, err
	}
	a, err := openSub(after, sub)
	if err != nil {
		closeFd(b)
		return nil, false, err
	}
	err = d.dirs(b, a, "", 0)
	if errors.Is(err, errStop) {
		err, d.truncated = nil, true
	}
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(d.out, func(x, y Change) int { return strings.Compare(x.Path, y.Path) })
	return d.out, d.truncated, nil
}

var errStop = errors.New("diff bound reached")

// maxDiffRead bounds the bytes of contents one Diff compares: a tree of touched files, or a
// sparse file of a terabyte whose time changed, must not keep it reading. Files past it
// count as modified.
const maxDiffRead = 1 << 30

type differ struct {
	ctx        context.Context
	opt        DiffOptions
	maxChanges int
	maxEntries int
	entries    int
	readBudget int64 // bytes of contents a diff may still compare
	out        []Change
	truncated  bool
}

// openSub opens top/sub, one name at a time without following a symlink; -1 when a
// component is missing or not a directory.
func openSub(top, sub string) (int, error) {
	fd, err := unix.Open(top, dirFlags, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", top, err)
	}
	for _, name := range strings.Split(sub, "/") {
		if name == "" || name == "." {
			continue
		}
		next, err := unix.Openat(fd, name, dirFlags, 0)
		unix.Close(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return -1, nil
		}
		if err != nil {
			return -1, fmt.Errorf("open %s/%s: %w", top, sub, err)
		}
		fd = next
	}
	return fd, nil
}

func closeFd(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func (d *differ) add(p, kind string) error {
	if len(d.out) >= d.maxChanges {
		return errStop
	}
	d.out = append(d.out, Change{Path: p, Change: kind})
	return nil
}

// dirs compares the directories b and a (either may be -1: absent) and closes them.
func (d *differ) dirs(b, a int, rel string, depth int) error {
	defer closeFd(b)
	defer closeFd(a)
	if depth > DefaultMaxDepth {
		return errStop
	}
	bn, err := d.names(b)
	if err != nil {
		return err
	}
	an, err := d.names(a)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(bn) || j < len(an) {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		var name string
		inB, inA := false, false
		switch {
		case j >= len(an) || (i < len(bn) && bn[i] < an[j]):
			name, inB = bn[i], true
			i++
		case i >= len(bn) || an[j] < bn[i]:
			name, inA = an[j], true
			j++
		default:
			name, inB, inA = bn[i], true, true
			i++
			j++
		}
		if err := d.entry(b, a, inB, inA, rel, name, depth); err != nil {
			return err
		}
	}
	return nil
}

// names reads the names of the directory fd (none for -1), within the entry budget.
func (d *differ) names(fd int) ([]string, error) {
	if fd < 0 {
		return nil, nil
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	var out []string
	for {
		batch, err := f.Readdirnames(readBatch)
		out = append(out, batch...)
		d.entries += len(batch)
		if d.entries > d.maxEntries {
			return nil, errStop
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}

func (d *differ) entry(b, a int, inB, inA bool, rel, name string, depth int) error {
	p := path.Join(rel, name)
	var bs, as unix.Stat_t
	if inB && unix.Fstatat(b, name, &bs, unix.AT_SYMLINK_NOFOLLOW) != nil {
		inB = false
	}
	if inA && unix.Fstatat(a, name, &as, unix.AT_SYMLINK_NOFOLLOW) != nil {
		inA = false
	}
	bDir := inB && bs.Mode&unix.S_IFMT == unix.S_IFDIR
	aDir := inA && as.Mode&unix.S_IFMT == unix.S_IFDIR
	if (bDir || aDir) && d.opt.Skip != nil && d.opt.Skip(name) {
		// Skipped directories are not walked; a file that became one (or the reverse)
		// still counts on its file side.
		bDir, aDir = false, false
		inB = inB && bs.Mode&unix.S_IFMT != unix.S_IFDIR
		inA = inA && as.Mode&unix.S_IFMT != unix.S_IFDIR
	}
	switch {
	case bDir || aDir:
		// A file on the other side is added or deleted; the directory's files are
		// compared against nothing, or against the other directory.
		if inB && !bDir {
			if err := d.add(p, Deleted); err != nil {
				return err
			}
		}
		if inA && !aDir {
			if err := d.add(p, Added); err != nil {
				return err
			}
		}
		sb, sa := -1, -1
		if bDir {
			sb, _ = unix.Openat(b, name, dirFlags, 0)
		}
		if aDir {
			sa, _ = unix.Openat(a, name, dirFlags, 0)
		}
		return d.dirs(sb, sa, p, depth+1)
	case inB && inA:
		if d.differs(b, a, name, &bs, &as) {
			return d.add(p, Modified)
		}
	case inB:
		return d.add(p, Deleted)
	case inA:
		return d.add(p, Added)
	}
	return nil
}

// differs compares two non-directory entries of the same name.
func (d *differ) differs(b, a int, name string, bs, as *unix.Stat_t) bool {
	if bs.Mode != as.Mode {
		return true // type or permissions
	}
	switch bs.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		bt, err1 := readlinkat(b, name)
		at, err2 := readlinkat(a, name)
		return err1 != nil || err2 != nil || bt != at
	case unix.S_IFREG:
		if bs.Size != as.Size {
			return true
		}
		if bs.Mtim == as.Mtim {
			return false
		}
		if bs.Size > d.readBudget {
			return true // past what a diff reads: taken as changed
		}
		d.readBudget -= bs.Size
		return !sameContents(b, a, name)
	}
	return false
}

// sameContents reads both files through; a file that cannot be read counts as changed.
func sameContents(b, a int, name string) bool {
	open := func(dir int) (*os.File, error) {
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
	fb, err := open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	fa, err := open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	bb, ab := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, err1 := io.ReadFull(fb, bb)
		m, err2 := io.ReadFull(fa, ab)
		if n != m || !bytes.Equal(bb[:n], ab[:m]) {
			return false
		}
		if err1 != nil || err2 != nil {
			return errors.Is(err1, io.ErrUnexpectedEOF) || errors.Is(err1, io.EOF)
		}
	}
}
