package files

import (
	"os"
	"syscall"
)

// Open opens the regular file p for reading; the caller closes it. A symlink as p's last
// component is followed when it stays in the workspace. A directory is ErrIsDir (callers
// list it instead), a FIFO, socket or device ErrNotRegular. The Entry is the opened file
// as fstat saw it, so it describes exactly what will be read.
func (w *Workspace) Open(p string) (*os.File, Entry, error) {
	p, err := Clean(p)
	if err != nil {
		return nil, Entry{}, err
	}
	// O_NONBLOCK: the sandbox may swap a FIFO in at any moment, and a blocking open of a
	// FIFO waits for a writer forever. It changes nothing for regular files.
	f, err := w.root.OpenFile(name(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, Entry{}, w.fail("read", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Entry{}, w.fail("read", p, err)
	}
	e := entryOf(p, fi)
	switch {
	case fi.IsDir():
		f.Close()
		return nil, e, w.fail("read", p, ErrIsDir)
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, e, w.fail("read", p, ErrNotRegular)
	}
	return f, e, nil
}
