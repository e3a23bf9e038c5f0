package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// fileID is a file's identity: its device and inode.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileID{}, fmt.Errorf("database file: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("database file %s: no inode", path)
	}
	return fileID{dev: uint64(sys.Dev), ino: sys.Ino}, nil
}

// CheckFile reports whether the database file is still the one this DB opened. SQLite
// keeps writing to the file it holds open, so after the path is removed or replaced
// (issue 11: sandboxd.db moved away under a running daemon) every write lands in a file
// no one will find again, while queries go on answering. Readiness asks this.
func (db *DB) CheckFile() error {
	id, err := statID(db.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the database file %s was removed while sandboxd runs: its writes are lost at exit; restart sandboxd (it refuses to start without its database and says how to recover)", db.path)
	}
	if err != nil {
		return err
	}
	if id != db.file {
		return fmt.Errorf("the database file %s was replaced while sandboxd runs: sandboxd still writes to the old one; restart sandboxd to use the new one", db.path)
	}
	return nil
}

// Backup writes a consistent copy of the database at src to dst through SQLite's online
// backup API: it may run while sandboxd serves (WAL lets the copy read a snapshot while
// the daemon writes). The copy is written beside dst and renamed over it once complete,
// so dst is never half written. src must exist: a backup never creates a database.
func Backup(ctx context.Context, src, dst string) (err error) {
	if st, err := os.Stat(src); err != nil {
		return fmt.Errorf("database: %w", err)
	} else if st.Size() == 0 {
		return fmt.Errorf("database %s is empty", src)
	}
	if same, _ := sameFile(src, dst); same {
		return fmt.Errorf("the backup %s would overwrite the database itself", dst)
	}
	// The copy holds env values: it is the operator's alone, from its first byte.
	tmp := dst + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	drv := &sqlite3.SQLiteDriver{}
	// mode=rw: a missing source is an error, never a new empty database.
	sc, err := drv.Open("file:" + src + "?mode=rw&_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer sc.Close()
	dc, err := drv.Open("file:" + tmp + "?_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	b, err := dc.(*sqlite3.SQLiteConn).Backup("main", sc.(*sqlite3.SQLiteConn), "main")
	if err != nil {
		dc.Close()
		return fmt.Errorf("backup: %w", err)
	}
	// One step copies every page under one read transaction of the source: a snapshot.
	done, err := b.Step(-1)
	ferr := b.Finish()
	cerr := dc.Close()
	switch {
	case err != nil:
		return fmt.Errorf("backup: %w", err)
	case !done:
		return errors.New("backup: incomplete copy")
	case ferr != nil:
		return fmt.Errorf("backup: %w", ferr)
	case cerr != nil:
		return fmt.Errorf("backup: %w", cerr)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
