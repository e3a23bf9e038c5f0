package lifecycle

import (
	"context"
	"encoding/json"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Stats is a running sandbox's resource use, sampled by the engine.
type Stats struct {
	At         time.Time
	CPUs       float64 // the sandbox's CPU limit, in CPUs
	CPUPercent float64 // use over the engine's sampling interval, of CPUs (0 to 100)
	MemUsed    uint64  // bytes, page cache excluded
	MemCache   uint64  // bytes of page cache
	MemLimit   uint64
}

// Stats samples a running sandbox's CPU and memory through the Engine API. It takes about
// a second: the engine measures CPU use between two readings.
func (m *Manager) Stats(ctx context.Context, id string) (Stats, error) {
	sb, err := m.runningSandbox(id)
	if err != nil {
		return Stats{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	resp, err := m.docker.ContainerStats(cctx, sb.ContainerID, false)
	if err != nil {
		return Stats{}, internal(err, "read stats of %s", id)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return Stats{}, internal(err, "decode stats of %s", id)
	}
	out := Stats{At: s.Read, CPUs: float64(sb.NanoCPUs) / 1e9, MemLimit: s.MemoryStats.Limit}
	// Page cache: "cache" under cgroup v1, "inactive_file" under v2 (what docker stats
	// subtracts).
	cache := s.MemoryStats.Stats["cache"]
	if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && cache == 0 {
		cache = v
	}
	out.MemCache = min(cache, s.MemoryStats.Usage)
	out.MemUsed = s.MemoryStats.Usage - out.MemCache
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	system := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpu > 0 && system > 0 && out.CPUs > 0 {
		// The share of the host's CPU time, as a share of the sandbox's limit.
		out.CPUPercent = min(cpu/system*online/out.CPUs*100, 100)
	}
	return out, nil
}
