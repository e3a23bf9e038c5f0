package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// maxWatchDirs bounds the directories one recursive watch follows (inotify watches are a
// per-user kernel resource the sandbox shares with its own programs).
const maxWatchDirs = 8192

// watchMask is what a watch reports: the changes E2B's envd names create, write, remove,
// rename and chmod.
const watchMask = syscall.IN_CREATE | syscall.IN_MODIFY | syscall.IN_DELETE | syscall.IN_DELETE_SELF |
	syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_MOVE_SELF | syscall.IN_ATTRIB |
	syscall.IN_ONLYDIR | syscall.IN_EXCL_UNLINK

// fsEvent is one line of "fs watch" after the first: a change of Name, relative to the
// watched directory. Entry describes the path after a create, write or chmod, when it
// still exists.
type fsEvent struct {
	Name  string     `json:"name"`
	Ops   []string   `json:"ops"`
	Entry *fsEntryJS `json:"entry,omitempty"`
}

// watchDir is "fs watch DIR 0|1": it reports changes in DIR (and, recursive, below it)
// until its stdin ends or it is killed. sandboxd keeps stdin open for as long as it
// wants events, so a watch whose reader went away (sandboxd restarted) ends by itself
// instead of lingering in the sandbox.
func watchDir(dir string, recursive bool, stdin io.Reader, stdout io.Writer, o *fsOwners) int {
	fi, err := os.Stat(dir)
	if err != nil {
		return fsReply(stdout, fsFail("", err))
	}
	if !fi.IsDir() {
		return fsReply(stdout, fsFail("not_dir", fmt.Errorf("%s is not a directory", dir)))
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return fsReply(stdout, fsFail("internal", fmt.Errorf("inotify: %w", err)))
	}
	w := &watcher{fd: fd, root: dir, recursive: recursive, dirs: map[int32]string{}, writes: map[uint32]string{}}
	if err := w.add(dir); err != nil {
		syscall.Close(fd)
		return fsReply(stdout, fsFail("", err))
	}
	out := bufio.NewWriter(stdout)
	var mu sync.Mutex // the stdin goroutine and the loop both end the watch
	emit := func(v any) error {
		b, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		out.Write(append(b, '\n'))
		return out.Flush()
	}
	if err := emit(fsResult{UID: os.Geteuid()}); err != nil {
		return 1
	}
	go func() {
		io.Copy(io.Discard, stdin)
		os.Exit(0) // the reader is gone: nobody wants the events
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sandbox-init: fs watch: %v\n", err)
			return 1
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			name := string(nameBytes)
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			for _, e := range w.event(ev.Wd, ev.Mask, ev.Cookie, name, o) {
				if err := emit(map[string]fsEvent{"event": e}); err != nil {
					return 0 // the reader is gone
				}
			}
		}
	}
}

type watcher struct {
	fd        int
	root      string
	recursive bool
	dirs      map[int32]string  // watch descriptor → directory
	writes    map[uint32]string // rename cookie → the temporary file "fs write" moved away
}

// isWriteTemp reports whether name is a temporary file of "fs write" (see write): its
// events are hidden, and its rename over the file it writes reads as a create and a write
// of that file, as a write in place would.
func isWriteTemp(name string) bool {
	i := strings.LastIndex(name, ".sandboxd-")
	if !strings.HasPrefix(name, ".") || i < 0 {
		return false
	}
	for _, c := range name[i+len(".sandboxd-"):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return i+len(".sandboxd-") < len(name)
}

// add watches dir and, when recursive, every directory below it.
func (w *watcher) add(dir string) error {
	if !w.recursive {
		return w.addOne(dir)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		return w.addOne(p)
	})
}

func (w *watcher) addOne(dir string) error {
	if len(w.dirs) >= maxWatchDirs {
		return fmt.Errorf("more than %d directories to watch: watch a smaller tree", maxWatchDirs)
	}
	wd, err := syscall.InotifyAddWatch(w.fd, dir, watchMask)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.dirs[int32(wd)] = dir
	return nil
}

// event turns one inotify record into lines: none for records that report nothing (the
// kernel's own IN_IGNORED, say), more than one for a new directory of a recursive watch.
func (w *watcher) event(wd int32, mask, cookie uint32, name string, o *fsOwners) []fsEvent {
	dir, known := w.dirs[wd]
	if mask&syscall.IN_IGNORED != 0 {
		delete(w.dirs, wd)
		return nil
	}
	if !known {
		return nil
	}
	p := dir
	if name != "" {
		p = filepath.Join(dir, name)
	}
	if isWriteTemp(name) {
		if mask&syscall.IN_MOVED_FROM != 0 {
			if len(w.writes) > 64 { // cookies whose MOVED_TO never came (moved out of sight)
				clear(w.writes)
			}
			w.writes[cookie] = p
		}
		return nil
	}
	var ops []string
	if _, ok := w.writes[cookie]; ok && cookie != 0 && mask&syscall.IN_MOVED_TO != 0 {
		delete(w.writes, cookie)
		mask |= syscall.IN_MODIFY
	}
	var inside []fsEvent
	if mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO) != 0 {
		ops = append(ops, "create")
		if w.recursive && mask&syscall.IN_ISDIR != 0 {
			w.add(p) // best effort: a directory gone again at once is no error
			inside = w.scan(p, o)
		}
	}
	if mask&(syscall.IN_MOVED_FROM|syscall.IN_MOVE_SELF) != 0 {
		ops = append(ops, "rename")
	}
	if mask&syscall.IN_ATTRIB != 0 {
		ops = append(ops, "chmod")
	}
	if mask&syscall.IN_MODIFY != 0 {
		ops = append(ops, "write")
	}
	if mask&(syscall.IN_DELETE|syscall.IN_DELETE_SELF) != 0 {
		ops = append(ops, "remove")
	}
	if len(ops) == 0 {
		return nil
	}
	e := fsEvent{Name: w.rel(p), Ops: ops}
	if mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO|syscall.IN_MODIFY|syscall.IN_ATTRIB) != 0 {
		if entry, err := o.entry(p); err == nil {
			e.Entry = &entry
		}
	}
	return append([]fsEvent{e}, inside...)
}

func (w *watcher) rel(p string) string {
	rel, err := filepath.Rel(w.root, p)
	if err != nil {
		return p
	}
	return rel
}

// scan reports what a new directory already holds: whatever was made in it before its
// watch was in place (mkdir -p a/b && echo x > a/b/f is quicker than the watcher) would
// be missed otherwise. Files are reported created, and written when they have bytes. A
// change seen both ways is reported twice, which is better than not at all.
func (w *watcher) scan(dir string, o *fsOwners) []fsEvent {
	var out []fsEvent
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || isWriteTemp(d.Name()) || len(out) >= maxWatchDirs {
			return nil
		}
		entry, err := o.entry(p)
		if err != nil {
			return nil
		}
		e := fsEvent{Name: w.rel(p), Ops: []string{"create"}, Entry: &entry}
		if entry.Type == "file" && entry.Size > 0 {
			e.Ops = append(e.Ops, "write")
		}
		out = append(out, e)
		return nil
	})
	return out
}
