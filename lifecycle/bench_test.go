package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/sandboxd/sandboxd/store"
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
