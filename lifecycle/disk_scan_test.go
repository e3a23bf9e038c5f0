package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeTree makes files files of size bytes each, 100 to a directory, two levels deep.
func makeTree(t testing.TB, dir string, files, size int) {
	t.Helper()
	body := []byte(strings.Repeat("x", size))
	for i := 0; i < files; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i/1000), fmt.Sprintf("e%02d", i/100%10))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestScanTreeCounts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeTree(t, dir, 250, 5000)
	// A hard link is one inode's blocks once; a symlink out of the tree is not followed.
	os.Link(filepath.Join(dir, "d00/e00/f0"), filepath.Join(dir, "hard"))
	os.Symlink("/etc", filepath.Join(dir, "d00/escape"))
	u, err := scanTree(dir, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 250 files, d00, e00..e02, the link, the symlink, the root.
	if u.Inodes != 250+1+3+2+1 {
		t.Fatalf("inodes %d", u.Inodes)
	}
	if u.Bytes < 250*5000 || u.Bytes > 250*8192+10*8192 {
		t.Fatalf("bytes %d for 250 files of 5000 bytes", u.Bytes)
	}
	count, err := scanTree(dir, false, 0)
	if err != nil || count.Inodes != u.Inodes || count.Bytes != 0 {
		t.Fatalf("count only: %+v, %v", count, err)
	}
	early, _ := scanTree(dir, true, 10)
	if early.Inodes <= 10 || early.Inodes > 10+1000 {
		t.Fatalf("walk past the inode limit: %+v", early)
	}
}

func BenchmarkScanTree10k(b *testing.B) {
	dir := b.TempDir()
	makeTree(b, dir, 10000, 0)
	for _, withBytes := range []bool{true, false} {
		b.Run(fmt.Sprintf("bytes=%v", withBytes), func(b *testing.B) {
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := scanTree(dir, withBytes, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/scan")
		})
	}
}
