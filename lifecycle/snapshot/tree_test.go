package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostileTree fills dir with what a sandbox could leave in its workspace: files of several
// sizes, owners and modes, symlinks leading out (absolute, relative, dangling, to a
// directory), a FIFO, a socket, a character device (which a sandbox cannot make, but the
// copy must not reproduce), a sparse file of a terabyte, hard links, names with a newline
// and other bytes, a read-only directory, a nested directory 100 deep, and the state dir
// sandboxd keeps out of snapshots.
func hostileTree(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, size int, mode os.FileMode, uid int) {
		t.Helper()
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7 + len(rel))
		}
		must(os.WriteFile(p, b, 0o600))
		must(os.Chmod(p, mode))
		must(os.Lchown(p, uid, uid))
	}
	write("workspace/app/index.html", 1200, 0o644, 200123)
	write("workspace/app/run.sh", 300, 0o755, 200123)
	write("workspace/app/secret", 40, 0o600, 200123)
	write("workspace/app/setgid", 10, 0o2755, 200123)
	write("workspace/app/big.bin", 3<<20+17, 0o644, 200123)
	write("workspace/app/empty", 0, 0o644, 200123)
	write("root-owned", 5, 0o644, 0)
	write("name with\nnewline", 11, 0o644, 200123)
	write("tab\tand \"quote\" and é", 12, 0o644, 200123)
	must(os.Mkdir(filepath.Join(dir, "empty-dir"), 0o750))
	must(os.Symlink("/etc", filepath.Join(dir, "escape-dir")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "escape-file")))
	must(os.Symlink("../../../../..", filepath.Join(dir, "workspace/app/up")))
	must(os.Symlink("index.html", filepath.Join(dir, "workspace/app/relative")))
	must(os.Symlink("nowhere/at/all", filepath.Join(dir, "dangling")))
	must(os.Lchown(filepath.Join(dir, "dangling"), 200123, 200123))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(dir, "socket"), unix.S_IFSOCK|0o600, 0))
	must(unix.Mknod(filepath.Join(dir, "device"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	// A terabyte of apparent size with 4 KiB of data in the middle.
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	must(err)
	_, err = f.WriteAt([]byte("middle of nowhere"), 1<<39)
	must(err)
	must(f.Truncate(1 << 40))
	must(f.Close())
	must(os.Link(filepath.Join(dir, "workspace/app/big.bin"), filepath.Join(dir, "hardlink-to-big")))
	must(os.Link(filepath.Join(dir, "workspace/app/big.bin"), filepath.Join(dir, "empty-dir/another")))
	deep := dir
	for i := range 100 {
		deep = filepath.Join(deep, fmt.Sprintf("d%d", i%10))
	}
	must(os.MkdirAll(deep, 0o755))
	write(filepath.Join(deep[len(dir)+1:], "bottom"), 20, 0o644, 200123)
	must(os.MkdirAll(filepath.Join(dir, "readonly/inner"), 0o755))
	write("readonly/inner/file", 9, 0o444, 200123)
	must(os.Chmod(filepath.Join(dir, "readonly/inner"), 0o555))
	must(os.Chmod(filepath.Join(dir, "readonly"), 0o500))
	write(".sandboxd/services/web.log", 64, 0o600, 200123)
	// Distinct times on everything, directories last (writing into one moves its time).
	stamp := time.Date(2023, 4, 5, 6, 7, 8, 123456789, time.UTC)
	var paths []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(stamp.UnixNano()), unix.NsecToTimespec(stamp.Add(time.Duration(i) * time.Second).UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	must(os.Lchown(dir, 200123, 200123))
	must(os.Chmod(dir, 0o700))
}

// manyFiles makes n small files (and a few bigger ones) spread over directories, with total
// bytes about size, for the copy-on-write measurements and the benchmark.
func manyFiles(t testing.TB, dir string, n int, size int64) {
	t.Helper()
	per := size / int64(n)
	buf := make([]byte, per*4)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for i := range n {
		sub := filepath.Join(dir, "workspace", "app", fmt.Sprintf("m%02d", i%50), fmt.Sprintf("s%02d", (i/50)%20))
		if i < 1000 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		b := buf[:per]
		if i%10 == 0 { // some bigger, most smaller: the same total
			b = buf[:per*4]
		} else if per > 4 {
			b = buf[:per*6/9]
		}
		b[0] = byte(i)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%06d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
