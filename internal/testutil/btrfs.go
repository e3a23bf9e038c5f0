package testutil

import "testing"

// Btrfs makes a btrfs filesystem of size bytes in a file of the test's temp dir, mounts it
// through a loop device and returns the mount point: LoopFS with FSBtrfs (issue 12's
// quota tests and issue 18's snapshot tests share it). The mount and its loop device go at
// cleanup, even when the test fails; register the cleanup of anything that uses the
// filesystem (containers with mounts from it) after calling Btrfs, so it runs first.
//
// It needs root, loop devices, btrfs in the kernel and mkfs.btrfs (btrfs-progs; `make
// test` installs it). Without one of them the test is skipped with one loud line, except
// under CI=true, where it fails: CI must prove kernel-enforced quotas.
func Btrfs(t testing.TB, size int64) string {
	t.Helper()
	return LoopFS(t, FSBtrfs, size)
}
