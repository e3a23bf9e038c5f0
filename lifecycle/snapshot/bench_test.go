package snapshot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// BenchmarkSnapshot times a snapshot of a workspace of 50,000 files and 300 MB (issue 18)
// each way sandboxd can make one, beside `cp -a` of the same tree, in one run: compare the
// ratios. Each way also reports the disk space its copy took (MiB-extra; on the temp dir,
// shared with the host, that figure is not measured).
//
// cp -a is coreutils' (9.x clones with reflinks by default where it can, so on XFS it is
// a reflink copy too); the fallback copy is timed on the temp dir and on XFS with cloning
// turned off.
func BenchmarkSnapshot(b *testing.B) {
	const files, size = 50000, 300 << 20
	tmp := b.TempDir()
	btrfs := testutil.LoopFS(b, testutil.FSBtrfs, 2<<30)
	xfs := testutil.LoopFS(b, testutil.FSXFSReflink, 2<<30)
	trees := map[string]string{}
	for name, root := range map[string]string{"tmp": tmp, "btrfs": btrfs, "xfs": xfs} {
		src := filepath.Join(root, "src")
		if name == "btrfs" {
			if out, err := exec.Command("btrfs", "subvolume", "create", src).CombinedOutput(); err != nil {
				b.Fatalf("btrfs subvolume create: %v %s", err, out)
			}
		} else if err := os.Mkdir(src, 0o700); err != nil {
			b.Fatal(err)
		}
		manyFiles(b, src, files, size)
		trees[name] = src
	}
	cases := []struct {
		name, tree string
		method     Method
		cp         bool
	}{
		{name: "btrfs-subvolume-snapshot", tree: "btrfs", method: MethodBtrfs},
		{name: "btrfs-reflink", tree: "btrfs", method: MethodReflink},
		{name: "xfs-reflink", tree: "xfs", method: MethodReflink},
		{name: "xfs-copy", tree: "xfs", method: MethodCopy},
		{name: "xfs-cp-a", tree: "xfs", cp: true},
		{name: "tmp-copy", tree: "tmp", method: MethodCopy},
		{name: "tmp-cp-a", tree: "tmp", cp: true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			src := trees[c.tree]
			measured := c.tree != "tmp"
			var extra int64
			n := 0
			for b.Loop() {
				b.StopTimer()
				dst := filepath.Join(filepath.Dir(src), fmt.Sprintf("snap-%d", n))
				n++
				var before int64
				if measured {
					before = used(b, filepath.Dir(src))
				}
				b.StartTimer()
				if c.cp {
					if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
						b.Fatalf("cp -a: %v %s", err, out)
					}
				} else if _, err := Copy(context.Background(), src, dst, Options{Method: c.method}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if measured {
					extra = used(b, filepath.Dir(src)) - before
				}
				if err := Remove(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			if measured {
				b.ReportMetric(float64(extra)/(1<<20), "MiB-extra")
			}
		})
	}
}
