package lifecycle

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/store"
	"golang.org/x/sys/unix"
)

// maxReferenced is the qgroup limit of the subvolume at dir (0: none), and whether it is
// a subvolume at all.
func maxReferenced(t *testing.T, h *harness, dir string) (int64, bool) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !btrfs.IsSubvolume(f) {
		return 0, false
	}
	vol, err := btrfs.SubvolumeID(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(h.m.disk.qgroups.Dir(), "0_"+strconv.FormatUint(vol, 10), "max_referenced"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64) // "none" parses as 0
	return n, true
}

// On a btrfs data dir (issues 12 and 18): a snapshot is a subvolume snapshot that costs
// nothing until the workspace moves away from it, then counts toward the sandbox's quota,
// which stops the sandbox once the two together pass it and names the snapshots as the
// cause; a fork and a restore keep the workspace a subvolume with its quota, owned by its
// sandbox's uid.
func TestSnapshotsOnBtrfsCountTowardTheQuota(t *testing.T) {
	t.Parallel()
	data := testutil.Btrfs(t, 768<<20)
	h := newHarnessAt(t, data, nil)
	ctx := context.Background()
	const id = "snapq"
	h.create(t, CreateRequest{ID: id, DiskBytes: 64 << 20})
	h.exec(t, id, "dd", "if=/dev/urandom", "of=f", "bs=1M", "count=20")
	s, err := h.m.Snapshot(ctx, id, "one")
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != "btrfs" {
		t.Errorf("snapshot method %s, want btrfs", s.Method)
	}
	measure := func() store.DiskUsage {
		t.Helper()
		unix.Sync() // btrfs accounts at the commit
		h.m.DiskSweep(ctx)
		got, err := h.m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got.Disk
	}
	if d := measure(); d.Snapshots > 1<<20 || d.Used < 20<<20 {
		t.Errorf("a fresh subvolume snapshot: %+v; want it to hold next to nothing alone", d)
	}
	// The workspace rewrites its file: the snapshot alone holds the old blocks now.
	h.exec(t, id, "dd", "if=/dev/urandom", "of=f", "bs=1M", "count=20", "conv=notrunc")
	if d := measure(); d.Snapshots < 19<<20 || d.Used < 40<<20 {
		t.Errorf("after the workspace rewrote its 20 MiB: %+v; want the snapshot to hold them", d)
	}
	// 30 MiB more: 50 in the workspace and 20 in the snapshot pass its 64 MiB.
	h.exec(t, id, "dd", "if=/dev/zero", "of=g", "bs=1M", "count=30")
	unix.Sync()
	if stopped := h.m.DiskSweep(ctx); !slices.Contains(stopped, id) {
		t.Fatalf("the sweep stopped %v; want %s, whose snapshot puts it over its quota", stopped, id)
	}
	if _, err := h.m.Start(ctx, id); ErrorCode(err) != CodeDiskQuota || !strings.Contains(err.Error(), "snapshots") {
		t.Fatalf("start over the quota through a snapshot: %v", err)
	}
	if err := h.m.DeleteSnapshot(ctx, id, s.ID); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	if _, err := h.m.Start(ctx, id); err != nil {
		t.Fatalf("start once the snapshot is gone: %v", err)
	}

	// A fork: a subvolume with its own limit, its files its own uid's.
	fork, err := h.m.Fork(ctx, id, "snapq-fork")
	if err != nil {
		t.Fatal(err)
	}
	if max, sub := maxReferenced(t, h, h.m.workspaceDir(fork.ID)); !sub || max != 64<<20 {
		t.Errorf("the fork's workspace: subvolume %v, limit %d; want a subvolume limited to 64 MiB", sub, max)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(h.m.workspaceDir(fork.ID), "f"), &st); err != nil || int(st.Uid) != fork.UID || fork.UID == 0 {
		t.Errorf("the fork's file belongs to %d, the fork runs as %d (%v)", st.Uid, fork.UID, err)
	}
	// A restore: the new tree is a subvolume, limited as the old one was.
	s2, err := h.m.Snapshot(ctx, id, "two")
	if err != nil {
		t.Fatal(err)
	}
	h.exec(t, id, "rm", "g")
	if _, err := h.m.Restore(ctx, id, s2.ID); err != nil {
		t.Fatal(err)
	}
	if max, sub := maxReferenced(t, h, h.m.workspaceDir(id)); !sub || max != 64<<20 {
		t.Errorf("the restored workspace: subvolume %v, limit %d", sub, max)
	}
	if res := h.exec(t, id, "ls", "g"); res.ExitCode != 0 {
		t.Errorf("the restored workspace lacks g: %s", res.Stderr)
	}
}

// Where snapshots are full copies (an ext4 or tmpfs data dir), one that would not fit the
// quota beside the files and the other snapshots is refused before it is made; a task's
// checkpoint prunes older checkpoints to fit; and the copies count toward the disk used.
func TestCopiedSnapshotsFitTheQuota(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	const id = "snapc"
	h.create(t, CreateRequest{ID: id, DiskBytes: 64 << 20})
	if h.m.snapCosts.cloning.Load() {
		t.Skip("this temp dir's filesystem clones files: snapshots are not copies here")
	}
	h.exec(t, id, "dd", "if=/dev/urandom", "of=f", "bs=1M", "count=24")
	s, err := h.m.Snapshot(ctx, id, "one")
	if err != nil || s.Method != "copy" {
		t.Fatalf("a first snapshot: %+v %v", s, err)
	}
	if _, err := h.m.Snapshot(ctx, id, "two"); ErrorCode(err) != CodeDiskQuota {
		t.Errorf("a second 24 MiB copy under a 64 MiB quota: %v", err)
	}
	if list, _ := h.m.Snapshots(ctx, id); len(list) != 1 {
		t.Errorf("after a refused snapshot, %d snapshots", len(list))
	}
	h.m.DiskSweep(ctx)
	got, _ := h.m.Get(ctx, id)
	if d := got.Disk; d.Snapshots < 24<<20 || d.Used < 48<<20 || got.Status != store.StatusRunning {
		t.Errorf("disk with one copy: %+v, status %s", d, got.Status)
	}
	if err := h.m.DeleteSnapshot(ctx, id, s.ID); err != nil {
		t.Fatal(err)
	}
	const t1, t2 = "01jtask0000000000000000001", "01jtask0000000000000000002"
	if _, err := h.m.Checkpoint(ctx, id, t1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Checkpoint(ctx, id, t2); err != nil {
		t.Fatalf("a second checkpoint, which fits once the first is pruned: %v", err)
	}
	if _, ok := h.m.CheckpointDir(ctx, id, t1); ok {
		t.Error("the older checkpoint was kept, past the quota")
	}
	if _, ok := h.m.CheckpointDir(ctx, id, t2); !ok {
		t.Error("the new checkpoint is missing")
	}
}

// A snapshot of a running sandbox is the tree of one instant (issue 18): its processes are
// frozen for the copy. A service writes a counter to first, then to second, as fast as it
// can (each whole, by a rename: a freeze between a truncation and its write would catch a
// file empty, as a crash would), with thousands of files between the two in the walk's
// way; a copy that read them at two moments would find them far apart, a frozen one finds
// second at first or one behind.
func TestSnapshotOfARunningSandboxIsOneInstant(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	const id = "snapi"
	h.create(t, CreateRequest{ID: id, Services: []store.Service{{Name: "writer", Cwd: "workspace/app", Cmd: []string{"sh", "-c",
		`mkdir -p x y && i=0; while :; do i=$((i+1)); echo $i > x/.t && mv x/.t x/first; echo $i > y/.t && mv y/.t y/second; done`}}}})
	for _, d := range []string{"x", "y"} {
		h.exec(t, id, "sh", "-c", "mkdir -p ~/workspace/app/"+d+" && cd ~/workspace/app/"+d+" && for i in $(seq 1500); do echo $i > f$i; done")
	}
	read := func(dir, name string) int {
		b, _ := os.ReadFile(filepath.Join(dir, "workspace/app", name))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	last := 0
	for range 3 {
		s, err := h.m.Snapshot(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		dir := h.m.snapshotDir(s)
		first, second := read(dir, "x/first"), read(dir, "y/second")
		if first <= last || first-second < 0 || first-second > 1 {
			t.Errorf("a snapshot holds first=%d second=%d (the one before, first=%d): not one instant of a running writer", first, second, last)
		}
		last = first
		if err := h.m.DeleteSnapshot(ctx, id, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := h.m.Get(ctx, id); got.Status != store.StatusRunning {
		t.Errorf("after its snapshots the sandbox is %s", got.Status)
	}
}

// A crash leaves half-made copies and trees without a row (a crash between a copy and its
// row, or between a row's delete and its tree's); the next boot removes them and keeps
// every snapshot that has a row.
func TestBootRemovesWhatACrashLeft(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	kept := store.Snapshot{ID: newSnapshotID(), Kind: store.SnapshotUser, SandboxID: "gone", Method: "copy", CreatedAt: time.Now()}
	if err := h.db.CreateSnapshot(ctx, kept, store.SnapshotSecrets{}, 0); err != nil {
		t.Fatal(err)
	}
	orphan := store.Snapshot{ID: newSnapshotID(), Kind: store.SnapshotUser, SandboxID: "gone"}
	tpl := store.Snapshot{ID: newSnapshotID(), Kind: store.SnapshotTemplate}
	half := filepath.Join(h.m.workspacesDir(), ".tmp-new-0123456789abcdef")
	for _, dir := range []string{h.m.snapshotDir(kept), h.m.snapshotDir(orphan), h.m.snapshotDir(tpl), half} {
		if err := os.MkdirAll(filepath.Join(dir, "workspace"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	again := New(h.db, h.docker, h.cfg, nil)
	if err := again.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{h.m.snapshotDir(kept): true, h.m.snapshotDir(orphan): false, h.m.snapshotDir(tpl): false, half: false} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s after boot: %v, want it there: %v", dir, err, want)
		}
	}
}
