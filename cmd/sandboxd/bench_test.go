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

// BenchmarkWake measures a stopped sandbox's first byte through the edge beside the raw
// Engine API start of the same container plus polling its port until it accepts, 20 of
// each, interleaved.
func BenchmarkWake(b *testing.B) {
	e, d := benchDaemon(b)
	mustCreate(b, d, map[string]any{"id": "wakebench", "ports": []int{3000}})
	ctx := context.Background()
	info, err := e.docker.ContainerInspect(ctx, e.containerName("wakebench"))
	if err != nil {
		b.Fatal(err)
	}
	const n = 20
	for it := 0; it < b.N; it++ {
		var raw, ours []time.Duration
		for i := 0; i < n; i++ {
			// Raw: stop through sandboxd (so its state stays true), start straight on the engine.
			call(b, "POST", d.API+"/v1/sandboxes/wakebench/stop", nil, nil)
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

			call(b, "POST", d.API+"/v1/sandboxes/wakebench/stop", nil, nil)
			req, _ := http.NewRequest("GET", "http://"+d.HTTP+"/", nil)
			req.Host = "s-wakebench-3000.preview.localhost"
			t0 = time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			first := time.Since(t0) // headers are the first byte
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("wake answered %d", resp.StatusCode)
			}
			ours = append(ours, first)
		}
		b.ReportMetric(ms(pct(raw, 0.5)), "raw-p50-ms")
		b.ReportMetric(ms(pct(raw, 0.95)), "raw-p95-ms")
		b.ReportMetric(ms(pct(ours, 0.5)), "wake-p50-ms")
		b.ReportMetric(ms(pct(ours, 0.95)), "wake-p95-ms")
		b.ReportMetric(ms(pct(ours, 0.5)-pct(raw, 0.5)), "added-p50-ms")
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
