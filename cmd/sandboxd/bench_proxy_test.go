package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// BenchmarkProxy measures the edge beside nginx, Caddy and a stock httputil.ReverseProxy
// (testdata/bareproxy), all in front of the same devserver in one sandbox container, and
// beside no proxy at all ("direct"), for 100 B and 64 KiB bodies over 1 and 64 keep-alive
// connections (issue 14). The edge runs with everything a preview request meets in
// production: the connection and body-rate limits, the access check, activity counting.
//
// The machine is shared (the load generator, the proxy and the app compete for its cores,
// and on a developer's machine so does everything else), so it reports three things:
//   - edge/<name>: requests per second, the edge's over the other's. Each round loads every
//     contender in turn for benchRound, starting with a different one each round; the
//     ratio is the median over rounds of the two rates in the same round, so a burst of
//     load from elsewhere moves both sides of most ratios. When the load generator's and
//     the app's core is the bottleneck (edge/direct near 1), every proxy gets about the
//     same rate and these ratios say little.
//   - <name>-cpu-µs/req: the CPU time the proxy's processes used per request, over the
//     whole run: what the proxy costs, whatever else the machine was doing.
//   - edge/<name>-per-cpu: the other's CPU time per request over the edge's, which is the
//     edge's rate over the other's when each is held to the same CPU: the steadiest figure
//     on a busy machine.
//
// Every proxy gets the same cores: the upper half of the machine's (split), the load
// generator and the app the lower half. Read the ratios, not the rates.
func BenchmarkProxy(b *testing.B) {
	cores := coreSplit(b)
	e, p := benchProcess(b, map[string]string{"GOMAXPROCS": strconv.Itoa(cores.proxyCPUs)})
	cores.pin(b, p.cmd.Process.Pid, cores.proxy)
	d := p.daemon
	loadProcs := max(1, runtime.NumCPU()-cores.proxyCPUs-1) // a core of the rest is the app's
	sb := mustCreate(b, d, map[string]any{"id": "bench", "ports": []int{3000}})
	upstream := sb.IP + ":3000"
	if cores.rest != "" {
		_, err := e.docker.ContainerUpdate(context.Background(), e.containerName("bench"),
			container.UpdateConfig{Resources: container.Resources{CpusetCpus: cores.rest}})
		if err != nil {
			b.Fatal(err)
		}
		cores.pin(b, os.Getpid(), cores.rest) // the load generator
		b.Cleanup(func() { cores.pin(b, os.Getpid(), fmt.Sprintf("0-%d", runtime.NumCPU()-1)) })
	}
	const host = "s-bench-3000.preview.localhost"
	hammer(b, 1, d.HTTP, host, "/bytes?n=1", 1, 1, time.Millisecond) // the edge waits for the port to open
	var cs []contender
	for _, c := range []contender{
		{name: "direct", addr: upstream},
		{name: "edge", addr: d.HTTP, pid: p.cmd.Process.Pid},
		startBareProxy(b, cores, upstream),
		startCaddy(b, cores, upstream),
		startNginx(b, cores, upstream),
	} {
		if c.addr != "" { // a proxy that is not installed, skipped loudly
			cs = append(cs, c)
		}
	}
	for _, size := range []int{100, 64 << 10} {
		for _, conns := range []int{1, 64} {
			b.Run(fmt.Sprintf("size=%d/conns=%d", size, conns), func(b *testing.B) {
				path := fmt.Sprintf("/bytes?n=%d", size)
				for _, c := range cs { // warm: pools fill, the edge knows the port is open
					hammer(b, loadProcs, c.addr, host, path, conns, size, benchRound/4)
				}
				rates := map[string][]float64{}
				lats := map[string][]time.Duration{}
				ticks := map[string]int64{}
				reqs := map[string]int{}
				for i := 0; i < b.N; i++ {
					for round := range benchRounds {
						for k := range cs {
							c := cs[(k+round)%len(cs)] // rotate who goes first
							var t0 int64
							if c.pid != 0 {
								t0 = cpuTicks(b, c.pid)
							}
							r := hammer(b, loadProcs, c.addr, host, path, conns, size, benchRound)
							if c.pid != 0 {
								ticks[c.name] += cpuTicks(b, c.pid) - t0
							}
							reqs[c.name] += r.n
							rates[c.name] = append(rates[c.name], r.rate)
							lats[c.name] = append(lats[c.name], r.lat...)
						}
					}
				}
				edge := rates["edge"]
				b.ReportMetric(median(edge), "edge-req/s")
				b.ReportMetric(us(pct(lats["edge"], 0.50)), "edge-p50-µs")
				b.ReportMetric(us(pct(lats["edge"], 0.99)), "edge-p99-µs")
				b.ReportMetric(us(pct(lats["edge"], 0.50)-pct(lats["direct"], 0.50)), "added-p50-µs")
				for _, c := range cs {
					if c.name != "edge" {
						b.ReportMetric(medianRatio(edge, rates[c.name]), "edge/"+c.name)
					}
					if c.pid != 0 {
						// A clock tick is 10 ms.
						b.ReportMetric(float64(ticks[c.name])*1e4/float64(reqs[c.name]), c.name+"-cpu-µs/req")
					}
					if c.pid != 0 && c.name != "edge" {
						b.ReportMetric(perRequest(ticks, reqs, c.name)/perRequest(ticks, reqs, "edge"), "edge/"+c.name+"-per-cpu")
					}
				}
			})
		}
	}
}

// The length of one contender's load in a round, and the rounds of a run: many short
// rounds, so that no contender owns a quiet or a busy stretch of the machine.
const (
	benchRound  = 400 * time.Millisecond
	benchRounds = 15
)

// perRequest is name's CPU ticks per request.
func perRequest(ticks map[string]int64, reqs map[string]int, name string) float64 {
	return float64(ticks[name]) / float64(reqs[name])
}

// medianRatio is the median of a[i]/b[i].
func medianRatio(a, b []float64) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return median(r)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
