package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Btrfs makes a btrfs filesystem of size bytes in a file of the test's temp dir, mounts it
// through a loop device and returns the mount point. The mount and its loop device go at
// cleanup, even when the test fails; register the cleanup of anything that uses the
// filesystem (containers with mounts from it) after calling Btrfs, so it runs first.
//
// It needs root, loop devices, btrfs in the kernel and mkfs.btrfs (btrfs-progs; `make
// test` installs it). Without one of them the test is skipped with one loud line, except
// under CI=true, where it fails: CI must prove kernel-enforced quotas.
func Btrfs(t testing.TB, size int64) string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("BTRFS UNAVAILABLE under CI=true: %s", why)
		}
		t.Skipf("SKIPPING: %s; this test needs a loop-mounted btrfs", why)
	}
	if os.Geteuid() != 0 {
		missing("not root (mounting a loop device needs it)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		missing("no loop devices (/dev/loop-control: " + err.Error() + ")")
	}
	mkfs, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/sbin"} {
			if p := filepath.Join(d, "mkfs.btrfs"); fileExists(p) {
				mkfs, err = p, nil
			}
		}
	}
	if err != nil {
		missing("no mkfs.btrfs (apt-get install btrfs-progs)")
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err == nil && !bytes.Contains(fs, []byte("btrfs")) {
		// The module loads on the first mount; only a kernel without it fails below.
		t.Logf("btrfs not in /proc/filesystems yet; the mount will load it")
	}
	img := filepath.Join(t.TempDir(), "btrfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "unknown filesystem type") {
			missing("the kernel has no btrfs: " + strings.TrimSpace(string(out)))
		}
		missing("mount -o loop failed: " + strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s; detaching it lazily", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
		// mount -o loop sets autoclear, so the loop device goes with the mount; one left
		// by a lazy umount or an older mount is detached here.
		out, _ := exec.Command("losetup", "-j", img).Output()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if dev, _, ok := strings.Cut(line, ":"); ok {
				exec.Command("losetup", "-d", dev).Run()
			}
		}
	})
	return dir
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
