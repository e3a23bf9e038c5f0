package lifecycle

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sandboxd/sandboxd/internal/btrfs"
)

// blockedIoctls are the btrfs ioctls that make a subvolume or a snapshot. Any user may make
// one in a directory they can write (no capability is checked), and a new subvolume gets a
// qgroup of its own, outside the workspace's limit: on a btrfs data dir a sandbox could
// write past its quota by writing into a subvolume it made (issue 12; tried on this
// kernel: 100 MiB landed in a subvolume made inside a workspace limited to 50 MiB).
var blockedIoctls = []uint32{btrfs.IocSnapCreate, btrfs.IocSubvolCreate, btrfs.IocSnapCreateV2, btrfs.IocSubvolCreateV2}

// btrfsSeccompProfile is Docker's default seccomp profile (the engine's own, from
// github.com/moby/profiles) with blockedIoctls refused (EPERM, the profile's default
// action): sandboxes on a btrfs data dir run with it.
//
// The profile allows ioctl unconditionally, and a rule cannot carve exceptions out of
// that: libseccomp gives no order between an unconditional and a conditional rule of one
// syscall, and runc ORs conditions on the same argument, so "allow unless cmd is X" cannot
// be written as one rule. Instead the unconditional ioctl is removed and replaced by allow
// rules that each match a bit pattern of the request's low 32 bits (allowCubes): together
// they match every request but the blocked ones. Only the low 32 bits are compared because
// the kernel truncates the request to 32 bits: a blocked number with high bits set is still
// the blocked call, and a program (musl sign-extends) may pass any high bits.
func btrfsSeccompProfile() (string, error) {
	p := seccomp.DefaultProfile()
	removed := false
	for _, sc := range p.Syscalls {
		if i := slices.Index(sc.Names, "ioctl"); i >= 0 && sc.Action == specs.ActAllow && len(sc.Args) == 0 {
			sc.Names = slices.Delete(sc.Names, i, i+1)
			removed = true
		}
	}
	if !removed {
		return "", errors.New("seccomp: the default profile has no unconditional ioctl rule to replace")
	}
	for _, c := range allowCubes(blockedIoctls) {
		p.Syscalls = append(p.Syscalls, &seccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{
			Names: []string{"ioctl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: c.mask, ValueTwo: c.value, Op: specs.OpMaskedEqual}},
		}})
	}
	b, err := json.Marshal(p)
	return string(b), err
}

// cube is the set of values x with x&mask == value.
type cube struct{ mask, value uint64 }

// allowCubes returns bit patterns over the low 32 bits whose union is every value whose low
// 32 bits are not in deny. It walks the binary trie of deny from the top bit down; each
// branch that holds no denied value becomes one pattern (the prefix so far, the rest free),
// so there are at most 32 patterns per denied value, far fewer when they share a prefix.
func allowCubes(deny []uint32) []cube {
	var out []cube
	var walk func(prefix uint32, bit int, set []uint32)
	walk = func(prefix uint32, bit int, set []uint32) {
		if bit < 0 {
			return // the prefix is a denied value
		}
		var branches [2][]uint32
		for _, v := range set {
			branches[v>>uint(bit)&1] = append(branches[v>>uint(bit)&1], v)
		}
		mask := ^uint32(0) << uint(bit)
		for b, sub := range branches {
			p := prefix | uint32(b)<<uint(bit)
			if len(sub) == 0 {
				out = append(out, cube{mask: uint64(mask), value: uint64(p)})
			} else {
				walk(p, bit-1, sub)
			}
		}
	}
	walk(0, 31, deny)
	return out
}
