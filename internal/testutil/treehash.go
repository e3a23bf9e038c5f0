package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TreeListing describes every entry below dir, one line each, sorted by path: its path
// (quoted: names may hold newlines), type, permission and set-id bits, owner, modification
// time (but the top directory's), hard-link group, and its contents' hash or link target.
// Two trees are byte-identical (issue 18's proof of snapshot, restore and revert) when
// their listings are equal. Entries of the top directory named in skip are left out.
//
// Contents are hashed as the offsets and bytes of their non-zero 4 KiB blocks, read from
// the data ranges alone (SEEK_DATA), so a sparse file of a terabyte hashes in no time and
// two files that differ only in where their holes are hash the same. FIFOs, sockets and
// devices are described, never opened.
func TreeListing(t testing.TB, dir string, skip ...string) []string {
	t.Helper()
	var out []string
	firstOf := map[[2]uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." && !strings.Contains(rel, "/") && slices.Contains(skip, rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%q type=%o perm=%04o owner=%d:%d", rel, st.Mode&syscall.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid)
		if rel != "." {
			line += fmt.Sprintf(" mtime=%d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			if st.Nlink > 1 {
				k := [2]uint64{st.Dev, st.Ino}
				if first, ok := firstOf[k]; ok {
					line += fmt.Sprintf(" link-of=%q", first)
				} else {
					firstOf[k] = rel
				}
			}
			sum, err := contentHash(p, st.Size)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d sha=%s", st.Size, sum)
		case syscall.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" target=%q", target)
		case syscall.S_IFCHR, syscall.S_IFBLK:
			line += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	slices.Sort(out)
	return out
}

// DiffListings says how two listings differ, for a test's failure message.
func DiffListings(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

func contentHash(p string, size int64) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	block := make([]byte, 4096)
	zero := make([]byte, 4096)
	for off := int64(0); off < size; {
		start, err := f.Seek(off, seekData)
		if err != nil {
			break // ENXIO: only a hole is left
		}
		end, err := f.Seek(start, seekHole)
		if err != nil || end > size {
			end = size
		}
		for pos := start &^ 4095; pos < end; pos += 4096 {
			n, err := f.ReadAt(block, pos)
			if err != nil && err != io.EOF {
				return "", err
			}
			if !bytes.Equal(block[:n], zero[:n]) {
				fmt.Fprintf(h, "%d:", pos)
				h.Write(block[:n])
			}
		}
		off = end
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
