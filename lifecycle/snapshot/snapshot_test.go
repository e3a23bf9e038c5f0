package snapshot

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"golang.org/x/sys/unix"
)

// filesystems are where the tests copy: the ordinary temp dir (the fallback copy), a
// loop-mounted btrfs (subvolume snapshots, and reflinks of a plain directory) and a
// loop-mounted XFS made with reflink=1. Each is made once per test function.
type filesystems struct {
	tmp, btrfs, xfs string
}

func makeFilesystems(t *testing.T) filesystems {
	t.Helper()
	return filesystems{
		tmp:   t.TempDir(),
		btrfs: testutil.LoopFS(t, testutil.FSBtrfs, 512<<20),
		xfs:   testutil.LoopFS(t, testutil.FSXFSReflink, 512<<20),
	}
}

// where is one way a tree is laid out for a copy.
type where struct {
	name   string
	root   func(filesystems) string
	subvol bool   // the source is a btrfs subvolume
	force  Method // Options.Method
	want   Method
}

var layouts = []where{
	{name: "fallback copy on the temp dir", root: func(f filesystems) string { return f.tmp }, want: MethodCopy},
	{name: "btrfs subvolume snapshot", root: func(f filesystems) string { return f.btrfs }, subvol: true, want: MethodBtrfs},
	{name: "reflinks on btrfs", root: func(f filesystems) string { return f.btrfs }, want: MethodReflink},
	{name: "reflinks on xfs", root: func(f filesystems) string { return f.xfs }, want: MethodReflink},
	{name: "copy forced on xfs", root: func(f filesystems) string { return f.xfs }, force: MethodCopy, want: MethodCopy},
}

// mkSource makes the directory a tree is copied from: a subvolume when asked.
func mkSource(t *testing.T, p string, subvol bool) {
	t.Helper()
	if !subvol {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("btrfs", "subvolume", "create", p).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v %s", err, out)
	}
}

var exclude = []string{".sandboxd"}

// wantCopy is the listing a copy of src must have: everything but the excluded state dir
// and the device node, which a walk never copies (a subvolume snapshot holds the subvolume
// as it is).
func wantCopy(t *testing.T, src string, m Method) []string {
	t.Helper()
	if m == MethodBtrfs {
		return testutil.TreeListing(t, src, ".sandboxd")
	}
	return testutil.TreeListing(t, src, ".sandboxd", "device")
}

func TestCopyIsByteForByteAndIndependent(t *testing.T) {
	fss := makeFilesystems(t)
	for i, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			base := filepath.Join(l.root(fss), "copy", string(rune('a'+i)))
			if err := os.MkdirAll(base, 0o700); err != nil {
				t.Fatal(err)
			}
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			mkSource(t, src, l.subvol)
			hostileTree(t, src)
			before := testutil.TreeListing(t, src)
			want := wantCopy(t, src, l.want)

			res, err := Copy(context.Background(), src, dst, Options{Method: l.force, Exclude: exclude})
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if res.Method != l.want {
				t.Errorf("method %s, want %s (%+v)", res.Method, l.want, res)
			}
			if got := testutil.TreeListing(t, dst); !slices.Equal(got, want) {
				t.Fatalf("the copy differs from its source:\n%s", testutil.DiffListings(want, got))
			}
			if l.want != MethodBtrfs && (res.Skipped != 1 || res.Special != 2 || res.Links != 2) {
				t.Errorf("counted %+v, want 1 device skipped, 2 special files, 2 hard links", res)
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dst, "sparse"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 > 1<<20 {
				t.Errorf("the sparse file's copy takes %d bytes on disk, want its data only", st.Blocks*512)
			}

			// Independent both ways: a change to either shows in the other nowhere.
			change := func(dir string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, "workspace/app/index.html"), []byte("changed"), 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(filepath.Join(dir, "workspace/app/big.bin"), os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte("overwritten in place"), 4096)
				f.Close()
				os.Remove(filepath.Join(dir, "workspace/app/run.sh"))
			}
			change(dst)
			if got := testutil.TreeListing(t, src); !slices.Equal(got, before) {
				t.Fatalf("a change to the copy showed in the source:\n%s", testutil.DiffListings(before, got))
			}
			copied := testutil.TreeListing(t, dst)
			change(src)
			if got := testutil.TreeListing(t, dst); !slices.Equal(got, copied) {
				t.Fatalf("a change to the source showed in the copy:\n%s", testutil.DiffListings(copied, got))
			}
			if err := Remove(dst); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Remove, %s: %v", dst, err)
			}
		})
	}
}

func TestRestoreGivesBackTheSnapshotAndKeepsTheStateDir(t *testing.T) {
	fss := makeFilesystems(t)
	for i, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			base := filepath.Join(l.root(fss), "restore", string(rune('a'+i)))
			if err := os.MkdirAll(base, 0o700); err != nil {
				t.Fatal(err)
			}
			ws, snap := filepath.Join(base, "ws"), filepath.Join(base, "snap")
			mkSource(t, ws, l.subvol)
			hostileTree(t, ws)
			if _, err := Copy(context.Background(), ws, snap, Options{Method: l.force, Exclude: exclude}); err != nil {
				t.Fatal(err)
			}
			want := wantCopy(t, ws, l.want)

			// What a task does: add, edit, delete, replace a file by a directory; and the
			// state dir grows meanwhile.
			os.WriteFile(filepath.Join(ws, "workspace/app/new.js"), []byte("new"), 0o644)
			os.WriteFile(filepath.Join(ws, "workspace/app/index.html"), []byte("edited"), 0o644)
			os.Remove(filepath.Join(ws, "workspace/app/secret"))
			os.Remove(filepath.Join(ws, "workspace/app/empty"))
			os.MkdirAll(filepath.Join(ws, "workspace/app/empty/now-a-dir"), 0o755)
			os.Chmod(filepath.Join(ws, "readonly"), 0o755)
			os.RemoveAll(filepath.Join(ws, "readonly"))
			stateLog := filepath.Join(ws, ".sandboxd/services/web.log")
			if err := os.WriteFile(stateLog, []byte("written after the snapshot"), 0o600); err != nil {
				t.Fatal(err)
			}

			res, err := Restore(context.Background(), snap, ws, Options{Method: l.force, Exclude: exclude})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if res.Leftover != "" {
				t.Errorf("restore left %s", res.Leftover)
			}
			if got := wantCopy(t, ws, l.want); !slices.Equal(got, want) {
				t.Fatalf("the restored tree differs from the snapshot's source:\n%s", testutil.DiffListings(want, got))
			}
			if b, _ := os.ReadFile(stateLog); string(b) != "written after the snapshot" {
				t.Errorf("the state dir was not kept: its log says %q", b)
			}
			if l.subvol {
				d, err := openDir(ws, unix.O_NOFOLLOW)
				if err != nil {
					t.Fatal(err)
				}
				if !btrfs.IsSubvolume(d) {
					t.Error("the restored workspace is no longer a subvolume")
				}
				d.Close()
			}
			if left := leftovers(t, base); len(left) > 0 {
				t.Errorf("restore left %v beside the workspace", left)
			}
		})
	}
}

func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// A failed copy or restore changes nothing: no partial copy, the target as it was.
// The fallback copy holds all its blocks alone; CanClone tells it apart from a filesystem
// that clones.
func TestUsageOfACopy(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	src := filepath.Join(base, "src")
	os.Mkdir(src, 0o700)
	manyFiles(t, src, 200, 4<<20)
	res, err := Copy(context.Background(), src, filepath.Join(base, "snap"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Usage(filepath.Join(base, "snap"))
	if err != nil || n < 4<<20 {
		t.Errorf("usage of a %s copy of 4 MiB: %d, %v", res.Method, n, err)
	}
	if res.Method == MethodCopy && CanClone(base) {
		t.Errorf("CanClone says yes where the copy could not clone")
	}
}

func TestFailuresLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	mkSource(t, ws, false)
	hostileTree(t, ws)
	want := testutil.TreeListing(t, ws)

	_, err := Copy(context.Background(), ws, filepath.Join(base, "shallow"), Options{MaxDepth: 50})
	if !errors.Is(err, ErrTooDeep) {
		t.Errorf("copy of a tree 100 deep with MaxDepth 50: %v, want ErrTooDeep", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "shallow")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed copy left its destination: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Copy(ctx, ws, filepath.Join(base, "cancelled"), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("copy with a cancelled context: %v", err)
	}
	if _, err := Copy(context.Background(), ws, filepath.Join(base, "ws"), Options{}); !errors.Is(err, os.ErrExist) {
		t.Errorf("copy onto an existing path: %v, want ErrExist", err)
	}

	for name, snap := range map[string]string{"missing snapshot": filepath.Join(base, "nope"), "too deep": ws} {
		if _, err := Restore(context.Background(), snap, ws, Options{MaxDepth: 50, Exclude: exclude}); err == nil {
			t.Errorf("%s: restore succeeded", name)
		}
		if got := testutil.TreeListing(t, ws); !slices.Equal(got, want) {
			t.Fatalf("%s: a failed restore changed the workspace:\n%s", name, testutil.DiffListings(want, got))
		}
	}
	if left := leftovers(t, base); len(left) > 0 {
		t.Errorf("failed restores left %v", left)
	}
	if _, err := os.Lstat(filepath.Join(base, "cancelled")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled copy left its destination: %v", err)
	}
}

// A sandbox racing the copy, swapping a directory for a symlink to somewhere outside,
// never gets the outside copied: each copy either fails or holds no byte from outside.
func TestSymlinkSwapDuringCopyNeverLeadsOut(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "host-secret"), []byte("secret"), 0o600)
	ws := filepath.Join(base, "ws")
	for i := range 20 {
		os.MkdirAll(filepath.Join(ws, "d", string(rune('a'+i))), 0o755)
		os.WriteFile(filepath.Join(ws, "d", string(rune('a'+i)), "f"), []byte("inside"), 0o644)
	}
	flip := filepath.Join(ws, "d", "flip")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Mkdir(flip, 0o755)
			os.WriteFile(filepath.Join(flip, "inner"), []byte("inside"), 0o644)
			os.RemoveAll(flip)
			os.Symlink(outside, flip)
			os.Remove(flip)
		}
	}()
	defer wg.Wait()
	defer close(stop)
	for i := range 50 {
		dst := filepath.Join(base, "copy")
		if _, err := Copy(context.Background(), ws, dst, Options{Workers: 2}); err != nil {
			continue // the race was seen and refused
		}
		filepath.Walk(dst, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Name() == "host-secret" {
				t.Errorf("copy %d holds %s from outside the tree", i, p)
			}
			return nil
		})
		Remove(dst)
	}
}

// Copy-on-write costs almost nothing: a snapshot of a few thousand files on btrfs (a
// subvolume snapshot, or reflinks) and on XFS (reflinks) takes a few percent of their size.
// (The fallback copy takes all of it, of course; the temp dir's filesystem is shared with
// the host, so its usage says nothing exact, and syncing it would flush everyone's writes.)
func TestCopyOnWriteUsesAlmostNoSpace(t *testing.T) {
	fss := makeFilesystems(t)
	const files, size = 2000, 32 << 20
	for i, l := range layouts[1:4] {
		t.Run(l.name, func(t *testing.T) {
			base := filepath.Join(l.root(fss), "space", string(rune('a'+i)))
			os.MkdirAll(base, 0o700)
			src := filepath.Join(base, "src")
			mkSource(t, src, l.subvol)
			manyFiles(t, src, files, size)
			before := used(t, base)
			snap := filepath.Join(base, "snap")
			res, err := Copy(context.Background(), src, snap, Options{})
			if err != nil {
				t.Fatal(err)
			}
			extra := used(t, base) - before
			t.Logf("%s: %d files, %d MiB: the snapshot took %.2f MiB more on disk (%.1f%%)",
				res.Method, files, size>>20, float64(extra)/(1<<20), 100*float64(extra)/size)
			// Usage counts what the copy holds alone: at first next to nothing; once the
			// source rewrote its files, all their old data.
			if l.want != MethodBtrfs {
				fresh, err := Usage(snap)
				if err != nil {
					t.Fatal(err)
				}
				manyFiles(t, src, files, size) // rewrites every file
				diverged, err := Usage(snap)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: the snapshot holds alone %.2f MiB, then %.2f MiB once its source rewrote every file",
					res.Method, float64(fresh)/(1<<20), float64(diverged)/(1<<20))
				if fresh > size/10 || diverged < size*9/10 {
					t.Errorf("usage of a reflinked snapshot: %d bytes at first, %d after its source diverged; want ≈0, then ≥ %d", fresh, diverged, size*9/10)
				}
			}
			switch {
			case res.Method != l.want:
				t.Errorf("method %s, want %s", res.Method, l.want)
			case extra > size/10:
				// Reflinks on btrfs cost each file its metadata (about 1.3 KiB, twice over
				// as btrfs keeps metadata in duplicate): 8% of these 16 KiB files.
				t.Errorf("a copy-on-write snapshot took %d bytes, more than 10%% of %d", extra, int64(size))
			}
		})
	}
}

// used is the bytes in use on the filesystem of dir, once what was written is committed.
func used(t testing.TB, dir string) int64 {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// Reown gives a tree to another uid without following a symlink out, keeping modes (the
// set-id bits a chown clears too) and every other owner.
func TestReown(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	os.Mkdir(ws, 0o700)
	hostileTree(t, ws) // most of it 200123's, some root's
	outside := filepath.Join(base, "outside")
	os.WriteFile(outside, []byte("host"), 0o600)
	os.Lchown(outside, 200123, 200123)
	os.Symlink(outside, filepath.Join(ws, "to-outside"))
	os.Lchown(filepath.Join(ws, "to-outside"), 200123, 200123)
	before := testutil.TreeListing(t, ws)
	n, err := Reown(ws, 200123, 200456, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after := testutil.TreeListing(t, ws)
	want := make([]string, len(before))
	changed := 0
	for i, l := range before {
		want[i] = strings.ReplaceAll(l, "owner=200123:200123", "owner=200456:200456")
		if want[i] != l {
			changed++
		}
	}
	if !slices.Equal(after, want) {
		t.Fatalf("after Reown:\n%s", testutil.DiffListings(want, after))
	}
	// Three names of one file are one change (hostileTree links big.bin twice).
	if n != int64(changed-2) {
		t.Errorf("Reown counted %d, the listing shows %d changed names", n, changed)
	}
	var st unix.Stat_t
	unix.Lstat(outside, &st)
	if st.Uid != 200123 {
		t.Errorf("the file a symlink leads to was reowned: %d", st.Uid)
	}
}

// A copy with Options.Owner comes out the new uid's as it is made: every entry the old uid
// owns, as user or group (files, directories, symlinks, FIFOs, the top directory), is the
// new one's, set-id bits kept; other owners stay. A btrfs snapshot makes no walk: it keeps
// the source's owners, for Reown to change.
func TestCopyWithOwnerGivesTheCopyToTheNewUID(t *testing.T) {
	fss := makeFilesystems(t)
	owner := regexp.MustCompile(`owner=(\d+):(\d+)`)
	mapped := func(lines []string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = owner.ReplaceAllStringFunc(l, func(s string) string {
				m := owner.FindStringSubmatch(s)
				for j := 1; j <= 2; j++ {
					if m[j] == "200123" {
						m[j] = "200456"
					}
				}
				return "owner=" + m[1] + ":" + m[2]
			})
		}
		return out
	}
	for i, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			base := filepath.Join(l.root(fss), "owner", string(rune('a'+i)))
			if err := os.MkdirAll(base, 0o700); err != nil {
				t.Fatal(err)
			}
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			mkSource(t, src, l.subvol)
			hostileTree(t, src) // most of it 200123's, some root's
			// Owner and group apart, set-id bits on files and a directory, a symlink.
			for _, e := range []struct {
				name     string
				mode     os.FileMode
				uid, gid int
			}{
				{"setuid-user-only", 0o4755 | os.ModeSetuid, 200123, 0},
				{"setgid-group-only", 0o2755 | os.ModeSetgid, 0, 200123},
				{"someone-else", 0o644, 300000, 300000},
			} {
				p := filepath.Join(src, e.name)
				if err := os.WriteFile(p, []byte(e.name), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Lchown(p, e.uid, e.gid); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, e.mode); err != nil {
					t.Fatal(err)
				}
			}
			sgid := filepath.Join(src, "setgid-dir")
			if err := os.Mkdir(sgid, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(sgid, 200123, 200123); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(sgid, 0o2775|os.ModeSetgid); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../escape-file", filepath.Join(sgid, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(sgid, "link"), 200123, 200123); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(src, "fifo"), 200123, 200123); err != nil {
				t.Fatal(err)
			}
			before := testutil.TreeListing(t, src)
			want := wantCopy(t, src, l.want)
			if l.want != MethodBtrfs {
				want = mapped(want)
				if slices.Equal(want, wantCopy(t, src, l.want)) {
					t.Fatal("the tree has nothing of 200123's")
				}
			}

			res, err := Copy(context.Background(), src, dst, Options{
				Method: l.force, Exclude: exclude, Owner: &Owner{From: 200123, To: 200456},
			})
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if res.Method != l.want {
				t.Errorf("method %s, want %s (%+v)", res.Method, l.want, res)
			}
			if got := testutil.TreeListing(t, dst); !slices.Equal(got, want) {
				t.Fatalf("the copy is not the new uid's:\n%s", testutil.DiffListings(want, got))
			}
			if got := testutil.TreeListing(t, src); !slices.Equal(got, before) {
				t.Fatalf("the copy changed its source:\n%s", testutil.DiffListings(before, got))
			}
			for _, c := range []struct {
				name string
				bits uint32
			}{{"setuid-user-only", unix.S_ISUID}, {"setgid-group-only", unix.S_ISGID}, {"setgid-dir", unix.S_ISGID}} {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(dst, c.name), &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&c.bits == 0 {
					t.Errorf("%s lost its set-id bit: mode %o", c.name, st.Mode)
				}
			}
			if l.want == MethodBtrfs {
				return
			}
			// Nothing is left for a Reown to do.
			if n, err := Reown(dst, 200123, 200456, Options{}); err != nil || n != 0 {
				t.Errorf("Reown after the copy changed %d entries (%v), want none", n, err)
			}
		})
	}
}
