package lifecycle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path"
	"syscall"

	"golang.org/x/sys/unix"
)

// treeUsage is what a walk of a workspace found.
type treeUsage struct {
	Bytes  int64 // allocated bytes (st_blocks, as du counts), when measured
	Inodes int64 // files, directories and links, the root included
	// Unmeasurable names why part of the tree could not be walked: a path longer than the
	// kernel opens, which a sandbox could use to hide data from the scan. The caller
	// treats it as over quota.
	Unmeasurable string
}

// scanTree walks the tree at dir through os.Root, never following a symlink and never
// leaving dir, whatever the sandbox does to the tree meanwhile (it may be running). With
// withBytes it stats every entry for its allocated blocks (hard links counted once);
// without, it only reads directories, which is far cheaper (btrfs knows the bytes). It
// stops early once Inodes exceeds maxInodes (> 0): the verdict is known by then, and a
// sandbox with millions of files must not cost a walk of them all.
func scanTree(dir string, withBytes bool, maxInodes int64) (treeUsage, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return treeUsage{}, err
	}
	defer root.Close()
	u := treeUsage{Inodes: 1}
	links := map[[2]uint64]bool{}
	stack := []string{"."}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		// O_DIRECTORY|O_NONBLOCK: an entry swapped for a FIFO since it was listed must not
		// block the walk; O_NOFOLLOW: nor one swapped for a symlink send it elsewhere.
		f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, syscall.ENAMETOOLONG) {
			u.Unmeasurable = "its directories nest deeper than a path can reach, so the scan cannot measure them"
			continue
		}
		if err != nil {
			continue // gone or replaced since it was listed: the next scan sees the new tree
		}
		more := scanDir(f, p, withBytes, &u, links, &stack, maxInodes)
		f.Close()
		if !more {
			return u, nil
		}
	}
	return u, nil
}

// scanDir adds the entries of the open directory f (at p) to u and queues its
// subdirectories; more is false once u.Inodes passed maxInodes. It reads the directory with
// getdents itself: os.File.ReadDir stats every entry, which doubled the cost of a walk
// that only counts.
func scanDir(f *os.File, p string, withBytes bool, u *treeUsage, links map[[2]uint64]bool, stack *[]string, maxInodes int64) (more bool) {
	fd := int(f.Fd())
	var st unix.Stat_t
	if withBytes && unix.Fstat(fd, &st) == nil {
		u.Bytes += st.Blocks * 512
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil || n <= 0 {
			return true // the end, or the directory went away mid-read: count what was seen
		}
		for b := buf[:n]; len(b) >= direntNameOffset; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < direntNameOffset || reclen > len(b) {
				return true
			}
			typ := b[18]
			name := b[direntNameOffset:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if string(name) == "." || string(name) == ".." {
				continue
			}
			u.Inodes++
			if typ == unix.DT_DIR {
				*stack = append(*stack, path.Join(p, string(name)))
				continue
			}
			if !withBytes || unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			if st.Nlink > 1 {
				id := [2]uint64{st.Dev, st.Ino}
				if links[id] {
					continue
				}
				links[id] = true
			}
			u.Bytes += st.Blocks * 512
		}
		if maxInodes > 0 && u.Inodes > maxInodes {
			return false
		}
	}
}

// direntNameOffset is where the name starts in a struct linux_dirent64: d_ino (8), d_off
// (8), d_reclen (2), d_type (1).
const direntNameOffset = 19
