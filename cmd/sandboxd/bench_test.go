package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// benchDaemon is sandboxd as its own process, as in production: the load generator must
// not share a Go runtime (scheduler, GC) with the edge it measures. It logs at info, as
// production does.
func benchDaemon(b *testing.B) (*env, *daemon) {
	e, p := benchProcess(b, nil)
	return e, p.daemon
}

// benchProcess is benchDaemon with its process, for benchmarks that read its CPU time, and
// extra variables in its environment.
func benchProcess(b *testing.B, extra map[string]string) (*env, *process) {
	e := newEnv(b)
	e.vars["SANDBOXD_LOG_LEVEL"] = "info"
	return e, e.startProcess(extra)
}

// BenchmarkWake measures a sandbox's first byte through the edge after each kind of sleep,
// beside the raw Engine API doing the same wake, n of each, interleaved, in one run:
//   - from stopped: the edge's wake (a start) against ContainerStart plus polling the port
//     until it accepts;
//   - from paused (issue 14): the edge's wake (an unpause) against ContainerUnpause plus a
//     GET straight to the container over a new connection, to its first byte.
func BenchmarkWake(b *testing.B) {
	e, d := benchDaemon(b)
	mustCreate(b, d, map[string]any{"id": "wakebench", "ports": []int{3000}})
	ctx := context.Background()
	info, err := e.docker.ContainerInspect(ctx, e.containerName("wakebench"))
	if err != nil {
		b.Fatal(err)
	}
	direct := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	firstByte := func(client *http.Client, url, host string) time.Duration {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		first := time.Since(t0) // headers are the first byte
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s answered %d", url, resp.StatusCode)
		}
		return first
	}
	const n = 20
	for it := 0; it < b.N; it++ {
		var raw, ours, rawUnpause, unpause []time.Duration
		for i := 0; i < n; i++ {
			// Raw: stop through sandboxd (so its state stays true), start straight on the engine.
			if code := call(b, "POST", d.API+"/v1/sandboxes/wakebench/stop", nil, nil); code != 200 {
				b.Fatalf("stop: %d", code)
			}
			t0 := time.Now()
			if err := e.docker.ContainerStart(ctx, info.ID, container.StartOptions{}); err != nil {
				b.Fatal(err)
			}
			ip := waitIP(b, e, info.ID)
			for {
				c, err := net.DialTimeout("tcp", ip+":3000", time.Second)
				if err == nil {
					c.Close()
					break
				}
				time.Sleep(time.Millisecond) // the raw side polls as finely as it can
			}
			raw = append(raw, time.Since(t0))

			if code := call(b, "POST", d.API+"/v1/sandboxes/wakebench/stop", nil, nil); code != 200 {
				b.Fatalf("stop: %d", code)
			}
			ours = append(ours, firstByte(http.DefaultClient, "http://"+d.HTTP+"/", "s-wakebench-3000.preview.localhost"))

			// Raw warm: pause through sandboxd, unpause straight on the engine, and wait for
			// sandboxd to see it (engine events) before pausing through it again.
			if code := call(b, "POST", d.API+"/v1/sandboxes/wakebench/pause", nil, nil); code != 200 {
				b.Fatalf("pause: %d", code)
			}
			t0 = time.Now()
			if err := e.docker.ContainerUnpause(ctx, info.ID); err != nil {
				b.Fatal(err)
			}
			firstByte(direct, "http://"+ip+":3000/", "")
			rawUnpause = append(rawUnpause, time.Since(t0))
			testutil.Eventually(b, time.Minute, "sandboxd to see the raw unpause", func() bool {
				sb, _ := getSandbox(b, d, "wakebench")
				return sb.Status == "running"
			})

			if code := call(b, "POST", d.API+"/v1/sandboxes/wakebench/pause", nil, nil); code != 200 {
				b.Fatalf("pause: %d", code)
			}
			unpause = append(unpause, firstByte(http.DefaultClient, "http://"+d.HTTP+"/", "s-wakebench-3000.preview.localhost"))
		}
		b.ReportMetric(ms(pct(raw, 0.5)), "raw-p50-ms")
		b.ReportMetric(ms(pct(raw, 0.95)), "raw-p95-ms")
		b.ReportMetric(ms(pct(ours, 0.5)), "wake-p50-ms")
		b.ReportMetric(ms(pct(ours, 0.95)), "wake-p95-ms")
		b.ReportMetric(ms(pct(ours, 0.5)-pct(raw, 0.5)), "added-p50-ms")
		b.ReportMetric(ms(pct(rawUnpause, 0.5)), "raw-unpause-p50-ms")
		b.ReportMetric(ms(pct(unpause, 0.5)), "unpause-wake-p50-ms")
		b.ReportMetric(ms(pct(unpause, 0.95)), "unpause-wake-p95-ms")
		b.ReportMetric(ms(pct(unpause, 0.5)-pct(rawUnpause, 0.5)), "unpause-added-p50-ms")
		b.ReportMetric(float64(pct(ours, 0.5))/float64(pct(unpause, 0.5)), "stopped/paused-p50")
	}
}

func waitIP(b *testing.B, e *env, cid string) string {
	for deadline := time.Now().Add(time.Minute); ; {
		if time.Now().After(deadline) {
			b.Fatalf("container %s has no IP after a minute", cid)
		}
		info, err := e.docker.ContainerInspect(context.Background(), cid)
		if err != nil {
			b.Fatal(err)
		}
		for _, ep := range info.NetworkSettings.Networks {
			if ep.IPAddress != "" {
				return ep.IPAddress
			}
		}
	}
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
