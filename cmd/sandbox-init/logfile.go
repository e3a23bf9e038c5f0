package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// maxLogSize is the size past which a service log is rotated.
const maxLogSize = 1 << 20

// logFile is a service's log, $HOME/.sandboxd/logs/<name>.log. When a write
// takes it past Max bytes it is renamed to <name>.log.1 (replacing the older
// one) and a new file is started, so a chatty service uses at most about
// 2*Max of the user's home. Directories are created 0700 and files 0600.
//
// The file is opened lazily on the next write after Close, so writers that
// outlive the service (a grandchild still holding the output pipe) are safe.
// It is safe for concurrent use.
type logFile struct {
	Path string
	Max  int64 // zero: maxLogSize

	// OnError, when set, is called (with the lock held, so keep it short)
	// the first time a write fails with an error different from the last.
	OnError func(error)

	mu      sync.Mutex
	f       *os.File
	size    int64
	lastErr string
}

// Write appends p, rotating first when the file is already past Max (left
// over from a previous run) and after the write that takes it past Max.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.write(p)
	l.report(err)
	return n, err
}

// Printf writes one formatted line.
func (l *logFile) Printf(format string, args ...any) {
	l.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

// Close closes the file; a later write opens it again.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func (l *logFile) max() int64 {
	if l.Max > 0 {
		return l.Max
	}
	return maxLogSize
}

func (l *logFile) write(p []byte) (int, error) {
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write log: %w", err)
	}
	if l.size > l.max() {
		if err := l.rotate(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (l *logFile) open() error {
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o700); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	if l.size > l.max() {
		return l.rotate()
	}
	return nil
}

// rotate starts a new file. When the rename fails the current file is kept
// and counted as empty, so the service's output is not lost and the rename
// is tried again only after another Max bytes.
func (l *logFile) rotate() error {
	if err := os.Rename(l.Path, l.Path+".1"); err != nil {
		l.size = 0
		return fmt.Errorf("rotate log: %w", err)
	}
	l.f.Close()
	l.f = nil
	return l.open()
}

func (l *logFile) report(err error) {
	if err == nil {
		l.lastErr = ""
		return
	}
	if err.Error() == l.lastErr {
		return
	}
	l.lastErr = err.Error()
	if l.OnError != nil {
		l.OnError(err)
	}
}
