package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Loop filesystems that LoopFS makes.
const (
	FSBtrfs      = "btrfs"       // mkfs.btrfs (btrfs-progs)
	FSXFSReflink = "xfs-reflink" // mkfs.xfs -m reflink=1 (xfsprogs)
)

// LoopFS makes a filesystem of the kind asked for in a sparse file of size bytes in the
// test's temp dir, mounts it through a loop device and returns the mount point (issue 18's
// copy-on-write tests). The mount and its loop device go at cleanup, even when the test
// fails; register the cleanup of anything using the filesystem after calling LoopFS, so it
// runs first.
//
// It needs root, loop devices, the filesystem in the kernel and its mkfs (`make test`
// installs them through images/prereqs.sh). Without one, the test is skipped with one loud
// line, except under CI=true, where it fails: CI must prove copy-on-write.
func LoopFS(t testing.TB, kind string, size int64) string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s UNAVAILABLE under CI=true: %s", kind, why)
		}
		t.Skipf("SKIPPING: %s; this test needs a loop-mounted %s", why, kind)
	}
	var mkfs string
	var args []string
	switch kind {
	case FSBtrfs:
		mkfs, args = "mkfs.btrfs", []string{"-q"}
	case FSXFSReflink:
		mkfs, args = "mkfs.xfs", []string{"-q", "-m", "reflink=1"}
	default:
		t.Fatalf("LoopFS: unknown kind %q", kind)
	}
	if os.Geteuid() != 0 {
		missing("not root (mounting a loop device needs it)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		missing("no loop devices (/dev/loop-control: " + err.Error() + ")")
	}
	bin := lookSbin(mkfs)
	if bin == "" {
		missing("no " + mkfs + " (images/prereqs.sh test installs it)")
	}
	img := filepath.Join(t.TempDir(), kind+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", mkfs, err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "unknown filesystem type") {
			missing("the kernel has no " + kind + ": " + strings.TrimSpace(string(out)))
		}
		missing("mount -o loop " + kind + " failed: " + strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s; detaching it lazily", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
		// mount -o loop sets autoclear, so the loop device goes with the mount; one left
		// behind by a lazy umount is detached here.
		out, _ := exec.Command("losetup", "-j", img).Output()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if dev, _, ok := strings.Cut(line, ":"); ok {
				exec.Command("losetup", "-d", dev).Run()
			}
		}
	})
	return dir
}

// lookSbin finds a command on PATH or in the sbin directories a user's PATH may lack.
func lookSbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(d, name); isFile(p) {
			return p
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
