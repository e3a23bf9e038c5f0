// Command subvolprobe tries, from inside a sandbox, what a tenant would to escape a btrfs
// qgroup limit: making a subvolume in its home (BTRFS_IOC_SUBVOL_CREATE), once as the call
// is numbered and once with high bits set, which the kernel truncates away. It prints one
// line per attempt: "<name>: ok" or "<name>: <error>". The lifecycle quota test runs it.
package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const iocSubvolCreate = 0x5000940e

type volArgs struct {
	fd   int64
	name [4088]byte
}

func main() {
	dir, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for _, try := range []struct {
		name string
		req  uintptr
	}{{"escape", iocSubvolCreate}, {"escape-high-bits", 1<<32 | iocSubvolCreate}} {
		a := &volArgs{}
		copy(a.name[:], try.name)
		_, _, e := syscall.Syscall(syscall.SYS_IOCTL, dir.Fd(), try.req, uintptr(unsafe.Pointer(a)))
		if e != 0 {
			fmt.Printf("%s: %v\n", try.name, e)
		} else {
			fmt.Printf("%s: ok\n", try.name)
		}
	}
}
