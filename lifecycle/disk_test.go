package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
	"github.com/sandboxd/sandboxd/lifecycle/files"
	"github.com/sandboxd/sandboxd/store"
	"golang.org/x/sys/unix"
)

// usedBytes is what statfs says the filesystem at dir uses, after a sync so that btrfs has
// committed what was written.
func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	unix.Sync()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// TestBtrfsQuotaEnforcedByTheKernel is issue 12 on a real btrfs the test makes: a sandbox
// with "disk":"64M" that writes 100 MiB gets EDQUOT, the host's disk grows by at most the
// quota, the files API meets the same limit, a subvolume of its own is no way around it,
// and the other sandbox and sandboxd go on. Inodes are counted by the scan, which stops
// the sandbox and refuses its start until files are removed.
func TestBtrfsQuotaEnforcedByTheKernel(t *testing.T) {
	t.Parallel()
	data := testutil.Btrfs(t, 768<<20)
	h := newHarnessAt(t, data, func(c *Config) { c.InodeQuota = 2000 })
	ctx := context.Background()
	if got := h.m.DiskEnforcement(); got != EnforcedBtrfs {
		t.Fatalf("enforcement on a btrfs data dir: %q", got)
	}
	a := h.create(t, CreateRequest{ID: "quota-a", DiskBytes: 64 << 20})
	h.create(t, CreateRequest{ID: "quota-b"})

	// A subvolume of the sandbox's own would have a qgroup of its own, outside the limit:
	// the seccomp profile refuses to make one, with the request's high bits set too.
	probe := filepath.Join(h.m.workspaceDir("quota-a"), "probe")
	copyFile(t, dockertest.Binary(t, "./lifecycle/testdata/subvolprobe"), probe, a.UID)
	res := h.exec(t, "quota-a", "./probe", ".")
	if want := "escape: operation not permitted\nescape-high-bits: operation not permitted\n"; string(res.Stdout) != want {
		t.Errorf("making a subvolume inside the sandbox: %q, want %q", res.Stdout, want)
	}

	before := usedBytes(t, data)
	res = h.exec(t, "quota-a", "sh", "-c", "dd if=/dev/zero of=big bs=1M count=100 2>&1; echo exit=$?")
	if !bytesContain(res.Stdout, "Disk quota exceeded") || bytesContain(res.Stdout, "exit=0") {
		t.Fatalf("dd of 100 MiB under a 64 MiB quota: %s", res.Stdout)
	}
	if grew := usedBytes(t, data) - before; grew > 64<<20+8<<20 {
		t.Errorf("the host's disk grew by %s for a sandbox with a 64 MiB quota", formatBytes(grew))
	}
	h.m.DiskSweep(ctx)
	got, err := h.m.Get(ctx, "quota-a")
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Disk; d.Enforced != EnforcedBtrfs || d.Quota != 64<<20 || d.Used < 60<<20 || d.Used > 64<<20+stateReserve || d.InodeQuota != 2000 {
		t.Errorf("disk as the API shows it: %+v", d)
	}

	// The files API writes as root on the host, and meets the same limit.
	ws, err := h.m.Workspace(ctx, "quota-a")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.Write("workspace/more.bin", bytes.NewReader(make([]byte, 4<<20)), files.WriteOptions{}); !errors.Is(err, files.ErrNoSpace) {
		t.Errorf("files API write at the quota: %v, want ErrNoSpace", err)
	}

	// At the quota, removing files works and the room comes back.
	if res := h.exec(t, "quota-a", "sh", "-c", "rm big probe && dd if=/dev/zero of=small bs=1M count=8 2>&1 && echo written"); !bytesContain(res.Stdout, "written") {
		t.Errorf("after removing the big file: %s", res.Stdout)
	}
	// The other sandbox, and sandboxd (its database is on this filesystem too), go on.
	if res := h.exec(t, "quota-b", "sh", "-c", "echo fine > workspace/app/x && cat workspace/app/x"); string(res.Stdout) != "fine\n" {
		t.Errorf("the other sandbox: %+v", res)
	}

	// Inodes: btrfs has no limit on them, the scan counts them.
	h.exec(t, "quota-a", "sh", "-c", "mkdir many && cd many && i=0; while [ $i -lt 2100 ]; do : > f$i; i=$((i+1)); done")
	if stopped := h.m.DiskSweep(ctx); len(stopped) != 1 || stopped[0] != "quota-a" {
		t.Fatalf("sweep over 2100 files with an inode quota of 2000 stopped %v", stopped)
	}
	if _, err := h.m.Start(ctx, "quota-a"); ErrorCode(err) != CodeDiskQuota || !strings.Contains(ErrorMessage(err), "files and directories") {
		t.Fatalf("start over the inode quota: %v", err)
	}
	if err := ws.Remove("many", true); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Start(ctx, "quota-a"); err != nil {
		t.Fatalf("start after removing the files: %v", err)
	}
	if _, err := h.m.Create(ctx, CreateRequest{ID: "quota-c"}); err != nil {
		t.Fatalf("sandboxd after all that: %v", err)
	}
	// The delete ioctl takes a subvolume's name in a directory, and refuses anything else:
	// a symlink the sandbox left is not followed.
	parent, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	if err := btrfs.CreateSubvolume(parent, "vol"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "vol", "f"), []byte("x"), 0o600)
	os.Symlink(filepath.Join(data, "vol"), filepath.Join(data, "link"))
	if err := btrfs.DeleteSubvolume(parent, "link"); err == nil || !exists(filepath.Join(data, "vol", "f")) {
		t.Errorf("delete through a symlink: %v", err)
	}
	if err := btrfs.DeleteSubvolume(parent, "vol"); err != nil || exists(filepath.Join(data, "vol")) {
		t.Errorf("delete a subvolume with a file in it: %v", err)
	}
	// Purge deletes both subvolumes.
	if err := h.m.Purge(ctx, "quota-a"); err != nil {
		t.Fatal(err)
	}
	if h.m.WorkspaceExists("quota-a") {
		t.Error("the workspace outlived purge")
	}
}

// TestScanQuotaStopsAndRefusesStart is the fallback on a data dir whose filesystem cannot
// enforce quotas: the write succeeds, the scan stops the sandbox with reason disk_quota,
// start and file writes are refused with the documented error until files are removed
// through the files API.
func TestScanQuotaStopsAndRefusesStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	if got := h.m.DiskEnforcement(); got != EnforcedScan {
		t.Fatalf("enforcement on %s: %q, want scan", h.data, got)
	}
	var reasons []string
	h.m.Observe.Stopped = func(reason string) { reasons = append(reasons, reason) }
	h.create(t, CreateRequest{ID: "scanq", DiskBytes: 16 << 20})
	if res := h.exec(t, "scanq", "sh", "-c", "dd if=/dev/zero of=big bs=1M count=20 2>/dev/null; echo exit=$?"); string(res.Stdout) != "exit=0\n" {
		t.Fatalf("nothing enforces the quota as it is written: %s", res.Stdout)
	}
	if stopped := h.m.DiskSweep(ctx); len(stopped) != 1 {
		t.Fatalf("the sweep stopped %v", stopped)
	}
	if len(reasons) != 1 || reasons[0] != "disk_quota" {
		t.Errorf("stop reasons %v", reasons)
	}
	sb, err := h.m.Get(ctx, "scanq")
	if err != nil {
		t.Fatal(err)
	}
	if sb.Status != store.StatusStopped || !strings.Contains(sb.Error, "over its disk quota") || sb.Disk.Enforced != EnforcedScan || sb.Disk.Used < 20<<20 {
		t.Fatalf("after the sweep: status %s, error %q, disk %+v", sb.Status, sb.Error, sb.Disk)
	}
	_, err = h.m.Start(ctx, "scanq")
	if ErrorCode(err) != CodeDiskQuota || !strings.Contains(ErrorMessage(err), "uses 20") ||
		!strings.Contains(ErrorMessage(err), "Remove files through the files API") {
		t.Fatalf("start over the quota: %v", err)
	}
	ws, err := h.m.Workspace(ctx, "scanq")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.Write("workspace/more.txt", strings.NewReader("more"), files.WriteOptions{}); !errors.Is(err, files.ErrNoSpace) {
		t.Errorf("files API write over the quota: %v, want ErrNoSpace", err)
	}
	if err := ws.Remove("big", false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Start(ctx, "scanq"); err != nil {
		t.Fatalf("start after removing the file: %v", err)
	}
	if sb, _ := h.m.Get(ctx, "scanq"); sb.Status != store.StatusRunning || sb.Error != "" {
		t.Errorf("after start: %s %q", sb.Status, sb.Error)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func copyFile(t *testing.T, from, to string, uid int) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(to, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDiskRequest(t *testing.T) {
	t.Parallel()
	m := &Manager{cfg: Config{DiskQuota: 10 << 30}}
	for _, c := range []struct {
		disk int64
		want string
	}{
		{0, ""}, {16 << 20, ""}, {10 << 30, ""},
		{-1, "disk must be positive"},
		{1 << 20, "disk 1 MiB is less than the minimum of 16 MiB"},
		{11 << 30, "disk 11 GiB is more than the limit of 10 GiB"},
	} {
		err := m.checkDiskRequest(&CreateRequest{DiskBytes: c.disk})
		if c.want == "" && err != nil || c.want != "" && (err == nil || ErrorMessage(err) != c.want) {
			t.Errorf("disk %d: %v, want %q", c.disk, err, c.want)
		}
	}
}

// TestLegacySandboxMovesToItsOwnUID: a sandbox made before issue 12 runs as uid 1000; at its
// first start under a sandboxd with a uid range it gets a uid of its own, its files are
// given to that uid, its container is made again for it, and the log says so.
func TestLegacySandboxMovesToItsOwnUID(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	ctx := context.Background()
	old := newHarnessAt(t, data, func(c *Config) { c.UIDFirst, c.UIDLast = 0, 0 })
	sb := old.create(t, CreateRequest{ID: "legacy"})
	if res := old.exec(t, "legacy", "sh", "-c", "id -u; touch workspace/app/mine"); sb.UID != 0 || string(res.Stdout) != "1000\n" {
		t.Fatalf("before: uid %d, id -u %q", sb.UID, res.Stdout)
	}
	if err := old.m.Stop(ctx, "legacy"); err != nil {
		t.Fatal(err)
	}

	h := newHarnessAt(t, data, nil)
	logs := &records{}
	h.m.log = slog.New(logs)
	if _, err := h.m.Start(ctx, "legacy"); err != nil {
		t.Fatal(err)
	}
	moved, _ := h.m.cached("legacy")
	if moved.UID != h.cfg.UIDFirst {
		t.Fatalf("uid after the start: %d", moved.UID)
	}
	if res := h.exec(t, "legacy", "id", "-un"); string(res.Stdout) != "sandbox\n" {
		t.Errorf("id -un: %q", res.Stdout)
	}
	for _, p := range []string{"", "workspace/app/mine"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(h.m.workspaceDir("legacy"), p), &st); err != nil || int(st.Uid) != moved.UID || int(st.Gid) != moved.UID {
			t.Errorf("%q: owner %d:%d, %v; want %d", p, st.Uid, st.Gid, err, moved.UID)
		}
	}
	if !slices.Contains(logs.messages(), "INFO sandbox moved to a uid of its own") {
		t.Errorf("logged %q", logs.messages())
	}

	// A workspace kept by a delete before the upgrade (uid 1000's) is given to the uid of
	// the sandbox created again with its id.
	kept := filepath.Join(h.m.workspacesDir(), "kept")
	if err := os.MkdirAll(filepath.Join(kept, "workspace", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(kept, "workspace", "app", "old"), []byte("x"), 0o644)
	if _, err := reown(kept, 0, legacyUID); err != nil {
		t.Fatal(err)
	}
	again := h.create(t, CreateRequest{ID: "kept"})
	if res := h.exec(t, "kept", "sh", "-c", "stat -c %u workspace/app/old; echo more >> workspace/app/old && echo ok"); string(res.Stdout) != fmt.Sprintf("%d\nok\n", again.UID) {
		t.Errorf("a kept workspace after create: %q, want owner %d and writable", res.Stdout, again.UID)
	}
}
