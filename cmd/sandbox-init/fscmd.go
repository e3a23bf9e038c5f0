package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runFS is "sandbox-init fs OP ARGS...", the file operations of sandboxd's E2B adapter
// (admin/e2b) on paths the host cannot see: /tmp is a tmpfs, and the image's own tree is
// the container's. sandboxd runs it through the Docker exec API as the sandbox user, so
// the kernel decides what may be read or written, exactly as for the user's own commands.
//
//	fs stat PATH            one JSON line: {"uid":N,"entry":{...}}
//	fs list PATH DEPTH      {"uid":N,"entries":[...]} (DEPTH ≥ 1 levels below PATH)
//	fs mkdir PATH           {"uid":N,"entry":{...}}, parents included
//	fs move FROM TO         {"uid":N,"entry":{...}} of TO, TO's parents created
//	fs remove PATH          {"uid":N}, recursively
//	fs read PATH            {"uid":N,"entry":{...}} then the file's bytes
//	fs write PATH           stdin's framed bytes into PATH (parents created), then {"uid":N,"entry":{...}}
//	fs watch PATH 0|1       {"uid":N} then one {"event":{...}} line per change (1: recursive)
//
// PATH is absolute. A failure is the line {"error":{"kind":K,"message":M}} with exit code
// 0: the caller tells "not found" from a broken helper by the line, not the exit code.
// Kinds: not_found, exists, not_dir, is_dir, invalid, permission, internal.
func runFS(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "sandbox-init: fs: no operation")
		return 2
	}
	op, args := args[0], args[1:]
	want := map[string]int{"stat": 1, "list": 2, "mkdir": 1, "move": 2, "remove": 1, "read": 1, "write": 1, "watch": 2}
	n, ok := want[op]
	if !ok {
		fmt.Fprintf(stderr, "sandbox-init: fs: unknown operation %q\n", op)
		return 2
	}
	if len(args) != n {
		fmt.Fprintf(stderr, "sandbox-init: fs %s: want %d arguments\n", op, n)
		return 2
	}
	for _, p := range args[:min(len(args), pathArgs(op))] {
		if !filepath.IsAbs(p) {
			return fsReply(stdout, fsFail("invalid", fmt.Errorf("path %q is not absolute", p)))
		}
	}
	o := fsOwners{}
	switch op {
	case "stat":
		e, err := o.entry(filepath.Clean(args[0]))
		return fsReply(stdout, fsEntry(e, err))
	case "list":
		depth, err := strconv.Atoi(args[1])
		if err != nil || depth < 1 {
			return fsReply(stdout, fsFail("invalid", fmt.Errorf("depth %q must be a whole number ≥ 1", args[1])))
		}
		return fsReply(stdout, o.list(filepath.Clean(args[0]), depth))
	case "mkdir":
		return fsReply(stdout, o.mkdir(filepath.Clean(args[0])))
	case "move":
		return fsReply(stdout, o.move(filepath.Clean(args[0]), filepath.Clean(args[1])))
	case "remove":
		if err := os.RemoveAll(filepath.Clean(args[0])); err != nil {
			return fsReply(stdout, fsFail("", err))
		}
		return fsReply(stdout, fsResult{})
	case "read":
		return o.read(filepath.Clean(args[0]), stdout)
	case "write":
		return fsReply(stdout, o.write(filepath.Clean(args[0]), stdin))
	case "watch":
		return watchDir(filepath.Clean(args[0]), args[1] == "1", stdin, stdout, &o)
	}
	return 2
}

// pathArgs is how many of op's arguments are paths.
func pathArgs(op string) int {
	if op == "move" {
		return 2
	}
	return 1
}

// fsResult is the one JSON line of an operation.
type fsResult struct {
	UID     int         `json:"uid"`
	Entry   *fsEntryJS  `json:"entry,omitempty"`
	Entries []fsEntryJS `json:"entries,omitempty"`
	Error   *fsError    `json:"error,omitempty"`
}

type fsError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// fsEntryJS describes one path as E2B's EntryInfo does: a symlink has the type and mode of
// its target (when it resolves) and its own permissions string.
type fsEntryJS struct {
	Name    string  `json:"name"`
	Path    string  `json:"path"`
	Type    string  `json:"type"` // file, dir, or "" for anything else
	Size    int64   `json:"size"`
	Mode    uint32  `json:"mode"` // permission bits
	Perm    string  `json:"perm"` // ls-style, of the path itself
	UID     int     `json:"uid"`
	GID     int     `json:"gid"`
	Owner   string  `json:"owner"`
	Group   string  `json:"group"`
	MTime   int64   `json:"mtime_ns"`
	Symlink *string `json:"symlink,omitempty"`
}

func fsReply(w io.Writer, r fsResult) int {
	r.UID = os.Geteuid()
	b, err := json.Marshal(r)
	if err != nil {
		return 1
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return 1
	}
	return 0
}

func fsEntry(e fsEntryJS, err error) fsResult {
	if err != nil {
		return fsFail("", err)
	}
	return fsResult{Entry: &e}
}

// fsFail classifies err; kind, when given, wins.
func fsFail(kind string, err error) fsResult {
	if kind == "" {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			kind = "not_found"
		case errors.Is(err, fs.ErrExist):
			kind = "exists"
		case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
			kind = "permission"
		case errors.Is(err, syscall.ENOTDIR):
			kind = "not_dir"
		case errors.Is(err, syscall.EISDIR):
			kind = "is_dir"
		case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
			kind = "no_space"
		default:
			kind = "internal"
		}
	}
	return fsResult{Error: &fsError{Kind: kind, Message: err.Error()}}
}

// fsOwners caches uid and gid names from the container's /etc/passwd and /etc/group.
type fsOwners struct {
	users, groups map[int]string
}

func (o *fsOwners) names(uid, gid int) (string, string) {
	if o.users == nil {
		o.users, o.groups = map[int]string{}, map[int]string{}
	}
	u, ok := o.users[uid]
	if !ok {
		u = strconv.Itoa(uid)
		if found, err := user.LookupId(u); err == nil {
			u = found.Username
		}
		o.users[uid] = u
	}
	g, ok := o.groups[gid]
	if !ok {
		g = strconv.Itoa(gid)
		if found, err := user.LookupGroupId(g); err == nil {
			g = found.Name
		}
		o.groups[gid] = g
	}
	return u, g
}

// entry describes p without following it, but gives a symlink its target's type.
func (o *fsOwners) entry(p string) (fsEntryJS, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return fsEntryJS{}, err
	}
	return o.describe(p, fi), nil
}

func (o *fsOwners) describe(p string, fi fs.FileInfo) fsEntryJS {
	e := fsEntryJS{Name: fi.Name(), Path: p, Size: fi.Size(), Perm: fi.Mode().String(), MTime: fi.ModTime().UnixNano()}
	mode := fi.Mode()
	if mode&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(p); err == nil {
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(p), target)
			}
			e.Symlink = &target
		}
		mode = 0
		if ti, err := os.Stat(p); err == nil {
			mode = ti.Mode()
		}
	}
	switch {
	case mode.IsRegular():
		e.Type = "file"
	case mode.IsDir():
		e.Type = "dir"
	}
	e.Mode = uint32(mode.Perm())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
		e.Owner, e.Group = o.names(e.UID, e.GID)
	}
	return e
}

// maxListEntries bounds a listing: a deep tree must not make an answer sandboxd cannot
// hold.
const maxListEntries = 20000

// list walks dir (following dir itself when it is a symlink) depth levels down.
func (o *fsOwners) list(dir string, depth int) fsResult {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fsFail("", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fsFail("", err)
	}
	if !fi.IsDir() {
		return fsFail("not_dir", fmt.Errorf("%s is not a directory", dir))
	}
	entries := []fsEntryJS{}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == real {
				return err
			}
			return nil // an unreadable subdirectory is left out, as ls -R would
		}
		if p == real {
			return nil
		}
		rel, _ := filepath.Rel(real, p)
		if strings.Count(rel, string(filepath.Separator))+1 > depth {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return nil // gone since the directory was read
		}
		if len(entries) == maxListEntries {
			return fmt.Errorf("more than %d entries: list a smaller tree", maxListEntries)
		}
		e := o.describe(p, fi)
		e.Path = filepath.Join(dir, rel)
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return fsFail("", err)
	}
	return fsResult{Entries: entries}
}

func (o *fsOwners) mkdir(p string) fsResult {
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() {
			return fsFail("exists", fmt.Errorf("directory %s already exists", p))
		}
		return fsFail("not_dir", fmt.Errorf("%s exists and is not a directory", p))
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fsFail("", err)
	}
	return fsEntry(o.entry(p))
}

// read answers the entry line, then the bytes. O_NONBLOCK keeps a FIFO from blocking the
// open; anything but a regular file is refused.
func (o *fsOwners) read(p string, stdout io.Writer) int {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fsReply(stdout, fsFail("", err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fsReply(stdout, fsFail("", err))
	}
	if fi.IsDir() {
		return fsReply(stdout, fsFail("is_dir", fmt.Errorf("%s is a directory", p)))
	}
	if !fi.Mode().IsRegular() {
		return fsReply(stdout, fsFail("invalid", fmt.Errorf("%s is not a regular file", p)))
	}
	if code := fsReply(stdout, fsResult{Entry: ptr(o.describe(p, fi))}); code != 0 {
		return code
	}
	if _, err := io.Copy(stdout, f); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox-init: fs read %s: %v\n", p, err)
		return 1
	}
	return 0
}

func ptr[T any](v T) *T { return &v }
