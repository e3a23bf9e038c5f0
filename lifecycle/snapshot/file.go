package snapshot

import (
	"errors"
	"fmt"
	"path"
	"sync"

	"golang.org/x/sys/unix"
)

// fileKey identifies a file across its hard links.
type fileKey struct{ dev, ino uint64 }

// linkSet maps each hard-linked file of the source to the path of its first copy, so its
// other names are linked to that copy instead of copied again: a tree of a million links
// to one file copies one file. It grows by one entry per file with several links, which
// the source's own inodes bound.
type linkSet struct {
	mu sync.Mutex
	m  map[fileKey]string
}

const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// file copies the regular file name of s (at p) into d.
func (w *walker) file(s, d int, p, name string, st *unix.Stat_t) error {
	// O_NONBLOCK: should the name have become a FIFO since the stat, the open must not wait
	// for a writer; the fstat below then refuses it.
	sf, err := unix.Openat(s, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", show(p), err)
	}
	defer unix.Close(sf)
	var fst unix.Stat_t
	if err := unix.Fstat(sf, &fst); err != nil {
		return fmt.Errorf("stat %s: %w", show(p), err)
	}
	if fst.Mode&unix.S_IFMT != unix.S_IFREG || fst.Ino != st.Ino || fst.Dev != st.Dev {
		return fmt.Errorf("%s: %w", show(p), ErrChanged)
	}
	df, linked, err := w.create(d, p, name, &fst)
	if err != nil {
		return err
	}
	if linked {
		w.res.links.Add(1)
		return nil
	}
	defer unix.Close(df)
	w.res.files.Add(1)
	w.res.bytes.Add(fst.Size)
	if err := w.data(sf, df, p, fst.Size); err != nil {
		return err
	}
	if err := w.setMeta(df, &fst); err != nil {
		return fmt.Errorf("%s: %w", show(p), err)
	}
	return nil
}

// create makes the copy of a file in d, or, for a further name of a hard-linked file already
// copied, links it to that copy (linked true, no descriptor).
func (w *walker) create(d int, p, name string, st *unix.Stat_t) (fd int, linked bool, err error) {
	if st.Nlink > 1 {
		w.links.mu.Lock()
		defer w.links.mu.Unlock()
		k := fileKey{st.Dev, st.Ino}
		if first, ok := w.links.m[k]; ok {
			if w.link(first, d, name) == nil {
				return -1, true, nil
			}
			// The first copy cannot be named (a path past PATH_MAX): copy this one too.
		} else {
			defer func() {
				if err == nil {
					w.links.m[k] = p
				}
			}()
		}
	}
	fd, err = unix.Openat(d, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, false, fmt.Errorf("create the copy of %s: %w", show(p), err)
	}
	return fd, false, nil
}

// link makes name in d a hard link to first, a file this walk copied. first is resolved
// beneath the copy's top without following any symlink: the copy holds the source's
// symlinks, and a path through one must not lead out.
func (w *walker) link(first string, d int, name string) error {
	pd, err := unix.Openat2(w.dstRoot, path.Dir(first), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveBeneath,
	})
	if err != nil {
		return err
	}
	defer unix.Close(pd)
	return unix.Linkat(pd, path.Base(first), d, name, 0)
}

// data fills df with the contents of sf: a clone of its extents when the filesystem can,
// else a copy of its data, leaving its holes holes.
func (w *walker) data(sf, df int, p string, size int64) error {
	if size == 0 {
		return nil
	}
	if w.clone.Load() {
		err := unix.IoctlFileClone(df, sf)
		switch {
		case err == nil:
			w.res.cloned.Add(1)
			return nil
		case w.forced:
			return fmt.Errorf("clone %s: %w (%w)", show(p), ErrUnsupported, err)
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOTTY),
			errors.Is(err, unix.ENOSYS):
			w.clone.Store(false) // this filesystem cannot: stop asking
		}
		// EINVAL and the like: this one file cannot be cloned (a nodatacow file on btrfs,
		// say); copy it.
	}
	w.res.copied.Add(1)
	bp := w.bufs.Get().(*[]byte)
	defer w.bufs.Put(bp)
	if err := copySparse(sf, df, size, *bp); err != nil {
		return fmt.Errorf("copy %s: %w", show(p), err)
	}
	return nil
}

// copySparse copies the data ranges of sf (SEEK_DATA/SEEK_HOLE) into df and sets its size,
// so a file of 1 TB apparent size holding 4 KiB of data costs 4 KiB. A filesystem without
// hole reporting reports the whole file as data.
func copySparse(sf, df int, size int64, buf []byte) error {
	for off := int64(0); off < size; {
		start, err := unix.Seek(sf, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // the rest is a hole
		}
		if err != nil {
			start = off
		}
		end, err := unix.Seek(sf, start, unix.SEEK_HOLE)
		if err != nil || end > size {
			end = size
		}
		if end <= start {
			break
		}
		if err := copyRange(sf, df, start, end, buf); err != nil {
			return err
		}
		off = end
	}
	return unix.Ftruncate(df, size)
}

func copyRange(sf, df int, start, end int64, buf []byte) error {
	for start < end {
		n, err := unix.Pread(sf, buf[:min(int64(len(buf)), end-start)], start)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // shorter than its size said
		}
		for w := 0; w < n; {
			m, err := unix.Pwrite(df, buf[w:n], start+int64(w))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			w += m
		}
		start += int64(n)
	}
	return nil
}
