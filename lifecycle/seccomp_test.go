package lifecycle

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/internal/btrfs"
)

func allowedBy(cubes []cube, x uint64) bool {
	for _, c := range cubes {
		if x&c.mask == c.value {
			return true
		}
	}
	return false
}

func TestAllowCubesMatchAllButTheDenied(t *testing.T) {
	t.Parallel()
	cubes := allowCubes(blockedIoctls)
	if len(cubes) > 32*len(blockedIoctls) {
		t.Fatalf("%d patterns for %d values", len(cubes), len(blockedIoctls))
	}
	for _, d := range blockedIoctls {
		for _, x := range []uint64{uint64(d), 1<<32 | uint64(d), 0xffffffff00000000 | uint64(d)} {
			if allowedBy(cubes, x) {
				t.Errorf("%#x allowed; it is the blocked %#x", x, d)
			}
		}
		for _, x := range []uint64{uint64(d) + 1, uint64(d) - 1, uint64(d) ^ 1<<31} {
			if !allowedBy(cubes, x) && !slices.Contains(blockedIoctls, uint32(x)) {
				t.Errorf("%#x refused; only the blocked ones should be", x)
			}
		}
	}
	for _, x := range []uint64{0, 0x5413 /* TIOCGWINSZ */, 0x40049409 /* FICLONE */, 0xc0189436 /* FIDEDUPERANGE */, 0xffffffff80045430} {
		if !allowedBy(cubes, x) {
			t.Errorf("ordinary ioctl %#x refused", x)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := r.Uint64()
		if allowedBy(cubes, x) == slices.Contains(blockedIoctls, uint32(x)) {
			t.Fatalf("%#x: allowed=%v", x, allowedBy(cubes, x))
		}
	}
}

func TestBtrfsSeccompProfileReplacesTheUnconditionalIoctl(t *testing.T) {
	t.Parallel()
	js, err := btrfsSeccompProfile()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		DefaultAction string
		Syscalls      []struct {
			Names  []string
			Action string
			Args   []struct {
				Index           int
				Value, ValueTwo uint64
				Op              string
			}
		}
	}
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("default action %q", p.DefaultAction)
	}
	var cubes []cube
	for _, sc := range p.Syscalls {
		if !slices.Contains(sc.Names, "ioctl") {
			continue
		}
		if len(sc.Args) != 1 || sc.Action != "SCMP_ACT_ALLOW" || sc.Args[0].Index != 1 || sc.Args[0].Op != "SCMP_CMP_MASKED_EQ" {
			t.Fatalf("ioctl rule %+v: want one masked compare of the request", sc)
		}
		cubes = append(cubes, cube{sc.Args[0].Value, sc.Args[0].ValueTwo})
	}
	if allowedBy(cubes, btrfs.IocSubvolCreate) || !allowedBy(cubes, 0x5413) {
		t.Fatal("the profile's ioctl rules do not refuse exactly the blocked calls")
	}
	if !strings.Contains(js, `"clone3"`) {
		t.Fatal("not the engine's default profile")
	}
}
