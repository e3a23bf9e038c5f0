package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The operations of "sandbox-init fs" that change files: write and move (fscmd.go has
// the others).

func (o *fsOwners) move(from, to string) fsResult {
	if _, err := os.Lstat(from); err != nil {
		return fsFail("", err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fsFail("", err)
	}
	err := os.Rename(from, to)
	if errors.Is(err, syscall.EXDEV) {
		// The home, /tmp and the image's tree are different filesystems: copy, then
		// remove, as mv does.
		if err = copyTree(from, to); err == nil {
			err = os.RemoveAll(from)
		} else {
			os.RemoveAll(to)
		}
	}
	if err != nil {
		return fsFail("", err)
	}
	return fsEntry(o.entry(to))
}

// copyTree copies from to to: directories, regular files and symlinks, with their modes.
// to must not exist.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(dst, fi.Mode().Perm())
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case fi.Mode().IsRegular():
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(out, src)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return fmt.Errorf("%s is neither a file, a directory nor a symlink: it cannot be moved to another filesystem", p)
	})
}

// write stores the framed bytes of r at p. They go to a temporary file beside the file
// that p names (through a symlink, its target), which replaces it once the last frame
// arrived: a transfer cut short leaves the file as it was. A file replaced keeps its mode.
//
// Frames: a 4-byte big-endian length, then that many bytes; length 0 ends the content.
func (o *fsOwners) write(p string, r io.Reader) fsResult {
	target := p
	if real, err := filepath.EvalSymlinks(p); err == nil {
		target = real
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(target); err == nil {
		if fi.IsDir() {
			return fsFail("is_dir", fmt.Errorf("%s is a directory", p))
		}
		mode = fi.Mode().Perm()
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fsFail("", err)
	}
	// The name's pattern is known to "fs watch" (isWriteTemp), which hides it.
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".sandboxd-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("cannot write %s: %w", p, pe.Err) // not the temporary name
		}
		return fsFail("", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = copyFrames(tmp, r)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		return fsFail("", err)
	}
	return fsEntry(o.entry(p))
}

// maxFrame bounds one frame of "fs write".
const maxFrame = 1 << 20

var errIncomplete = errors.New("the content ended before its last frame: nothing was written")

// copyFrames copies framed content from r to w until the end frame.
func copyFrames(w io.Writer, r io.Reader) error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return errIncomplete
		}
		n := int64(hdr[0])<<24 | int64(hdr[1])<<16 | int64(hdr[2])<<8 | int64(hdr[3])
		if n == 0 {
			return nil
		}
		if n > maxFrame {
			return fmt.Errorf("frame of %d bytes is larger than %d", n, maxFrame)
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errIncomplete
			}
			return err
		}
	}
}
