package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/store"
	"golang.org/x/sys/unix"
)

// BenchmarkCreate measures create → running through sandboxd beside the raw Engine API
// create + start of the same hardened container, interleaved in one run so both see the
// same machine. It reports p50/p95 of each over 20 sandboxes and the ratio of the p50s.
func BenchmarkCreate(b *testing.B) {
	h := &benchHarness{harness: newHarness(b), rawDir: b.TempDir()}
	ctx := context.Background()
	const n = 20
	for iter := 0; iter < b.N; iter++ {
		var raw, ours []time.Duration
		for i := 0; i < n; i++ {
			raw = append(raw, h.rawCreateStart(b, fmt.Sprintf("raw%d-%d", iter, i)))
			start := time.Now()
			if _, err := h.m.Create(ctx, CreateRequest{ID: fmt.Sprintf("sbd%d-%d", iter, i), Ports: []int{3000}}); err != nil {
				b.Fatal(err)
			}
			ours = append(ours, time.Since(start))
		}
		rp50, rp95 := percentiles(raw)
		op50, op95 := percentiles(ours)
		b.ReportMetric(float64(rp50.Microseconds())/1000, "raw-p50-ms")
		b.ReportMetric(float64(rp95.Microseconds())/1000, "raw-p95-ms")
		b.ReportMetric(float64(op50.Microseconds())/1000, "sandboxd-p50-ms")
		b.ReportMetric(float64(op95.Microseconds())/1000, "sandboxd-p95-ms")
		b.ReportMetric(float64(op50)/float64(rp50), "p50-ratio")
		b.ReportMetric(float64(op95)/float64(rp95), "p95-ratio")
		h.removeAll(b)
	}
}

type benchHarness struct {
	*harness
	rawDir string
}

// rawCreateStart creates and starts the same container sandboxd would, straight through the
// Engine API, and returns how long that took.
func (h *benchHarness) rawCreateStart(b *testing.B, id string) time.Duration {
	ctx := context.Background()
	sb := store.Sandbox{ID: id, Image: h.cfg.Image, MemoryBytes: h.cfg.Memory, NanoCPUs: h.cfg.NanoCPUs}
	cfg, host := h.m.containerSpec(sb, nil, []string{"devserver"})
	ws := filepath.Join(h.rawDir, id)
	os.MkdirAll(ws, 0o755)
	host.Mounts[0].Source = ws
	os.MkdirAll(h.m.runDir(id), 0o755)
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{h.cfg.Network: {}}}
	start := time.Now()
	resp, err := h.docker.ContainerCreate(ctx, cfg, host, netcfg, nil, "raw-"+h.m.instance[:6]+"-"+id)
	if err != nil {
		b.Fatal(err)
	}
	if err := h.docker.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func (h *benchHarness) removeAll(b *testing.B) {
	byID, err := h.m.listContainers(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	for id := range byID {
		if _, ok := h.m.cached(id); ok {
			h.m.Delete(context.Background(), id)
		} else {
			for _, c := range byID[id] {
				h.m.removeContainer(context.Background(), c.ID)
			}
		}
	}
}

func percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.95)
}

// BenchmarkCreateIsolation measures issue 12's cost at create, interleaved in one run: a
// sandboxd configured as before it (uid 1000, the image's accounts, no quota), the same
// with a uid of its own, account files and the scan's quota on an ordinary data dir, and
// on a loop-mounted btrfs with a subvolume, a qgroup limit and the seccomp profile. It
// reports each p50 and their ratios to the first.
func BenchmarkCreateIsolation(b *testing.B) {
	modes := []struct {
		name string
		h    *harness
	}{
		{"before", newHarnessAt(b, b.TempDir(), func(c *Config) { c.UIDFirst, c.UIDLast, c.DiskQuota, c.InodeQuota = 0, 0, 0, 0 })},
		{"scan", newHarnessAt(b, b.TempDir(), nil)},
		{"btrfs", newHarnessAt(b, testutil.Btrfs(b, 2<<30), nil)},
	}
	ctx := context.Background()
	const n = 25
	for iter := 0; iter < b.N; iter++ {
		times := make([][]time.Duration, len(modes))
		for i := 0; i < n; i++ {
			for k := range modes {
				m := (i + k) % len(modes) // each mode takes each place in the round in turn
				mode := modes[m]
				id := fmt.Sprintf("iso%d-%d", iter, i)
				start := time.Now()
				if _, err := mode.h.m.Create(ctx, CreateRequest{ID: id}); err != nil {
					b.Fatal(err)
				}
				if i > 0 { // the first create of an image reads its accounts: once per process
					times[m] = append(times[m], time.Since(start))
				}
			}
		}
		base, _ := percentiles(times[0])
		for m, mode := range modes {
			p50, _ := percentiles(times[m])
			b.ReportMetric(float64(p50.Microseconds())/1000, mode.name+"-p50-ms")
			if m > 0 {
				b.ReportMetric(float64(p50)/float64(base), mode.name+"/before")
			}
		}
		for _, mode := range modes {
			(&benchHarness{harness: mode.h}).removeAll(b)
		}
	}
}

// BenchmarkDiskScan200x10k is one pass of the quota scan over 200 running sandboxes of
// 10,000 files each (in 100 directories): the CPU it takes, and that figure as a share of
// one CPU at the interval the scan keeps (Config.DiskScanEvery, 1m, or scanBudget times the
// pass's duration when that is longer). The trees are made once, in /dev/shm when it is a
// tmpfs: two million files take tens of minutes to make on this machine's disk, and a
// pass over a disk whose inodes are cached (every pass after the first) does the same
// work in memory.
func BenchmarkDiskScan200x10k(b *testing.B) {
	scanOnce.Do(func() { scanData, scanMgr = makeScanTrees(b) })
	if scanMgr == nil {
		b.Fatal("the trees were not made")
	}
	for iter := 0; iter < b.N; iter++ {
		cpu0, wall0 := cpuTime(), time.Now()
		if stopped := scanMgr.DiskSweep(context.Background()); len(stopped) > 0 {
			b.Fatalf("stopped %v", stopped)
		}
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		interval := max(scanMgr.diskEvery(), wall*scanBudget)
		b.ReportMetric(cpu.Seconds(), "cpu-s/pass")
		b.ReportMetric(wall.Seconds(), "wall-s/pass")
		b.ReportMetric(interval.Seconds(), "interval-s")
		b.ReportMetric(100*cpu.Seconds()/interval.Seconds(), "cpu-%")
	}
}

// The scan benchmark's trees, made once per process (a benchmark function runs more than
// once) and removed by TestMain's end.
var (
	scanOnce sync.Once
	scanData string
	scanMgr  *Manager
)

func makeScanTrees(b *testing.B) (string, *Manager) {
	parent := ""
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == 0x01021994 {
		parent = "/dev/shm"
	}
	data, err := os.MkdirTemp(parent, "sandboxd-scan-")
	if err != nil {
		b.Fatal(err)
	}
	scanCleanup = func() { os.RemoveAll(data) }
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
	if err != nil {
		b.Fatal(err)
	}
	m := New(db, nil, DefaultConfig(data), nil)
	m.disk.kind = EnforcedScan
	const sandboxes, files = 200, 10000
	for i := 0; i < sandboxes; i++ {
		id := fmt.Sprintf("scan%03d", i)
		makeTree(b, m.workspaceDir(id), files, 0)
		m.remember(store.Sandbox{ID: id, Status: store.StatusRunning})
	}
	return data, m
}

// BenchmarkIsolationSetup is the host side of what issue 12 adds to a create, without the
// engine: the uid from the store, the workspace (a subvolume and its qgroup limits on
// btrfs) and the account files, against the workspace alone as before it.
func BenchmarkIsolationSetup(b *testing.B) {
	for _, mode := range []struct {
		name  string
		data  func() string
		setup func(m *Manager, sb store.Sandbox) error
	}{
		{"before", b.TempDir, func(m *Manager, sb store.Sandbox) error {
			_, err := m.ensureWorkspace(sb)
			return err
		}},
		{"scan", b.TempDir, isolationSetup},
		{"btrfs", func() string { return testutil.Btrfs(b, 1<<30) }, isolationSetup},
	} {
		b.Run(mode.name, func(b *testing.B) {
			data := mode.data()
			db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			cfg := DefaultConfig(data)
			if mode.name == "before" {
				cfg.UIDFirst, cfg.UIDLast = 0, 0
			}
			m := New(db, nil, cfg, nil)
			if err := m.initDisk(); err != nil {
				b.Fatal(err)
			}
			// make bench runs each benchmark once (-benchtime 1x): 100 setups a round make
			// that one round worth reading.
			const perRound = 100
			b.ResetTimer()
			for i := 0; i < b.N*perRound; i++ {
				sb := store.Sandbox{ID: fmt.Sprintf("s%d", i)}
				if err := mode.setup(m, sb); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*perRound), "ms/setup")
		})
	}
}

func isolationSetup(m *Manager, sb store.Sandbox) error {
	uid, err := m.assignUID(context.Background(), sb.ID)
	if err != nil {
		return err
	}
	sb.UID = uid
	if _, err := m.ensureWorkspace(sb); err != nil {
		return err
	}
	return m.writeAccounts(sb, minimalAccounts)
}
