package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// benchDaemon is sandboxd as its own process, as in production: the load generator must
// not share a Go runtime (scheduler, GC) with the edge it measures.
func benchDaemon(b *testing.B) (*env, *daemon) {
	e := newEnv(b)
	return e, e.startProcess(nil).daemon
}

// BenchmarkProxy measures requests through the edge beside requests straight to the same
// container, for 100 B and 64 KiB responses over 1 and 64 keep-alive connections. Both run
// in the same process and the same minute, so their ratio is what to read.
func BenchmarkProxy(b *testing.B) {
	_, d := benchDaemon(b)
	sb := mustCreate(b, d, map[string]any{"id": "bench", "ports": []int{3000}})
	direct := sb.IP + ":3000"
	load(b, d.HTTP, "s-bench-3000.preview.localhost", "/", 1, 1) // the edge waits for the port to open
	bare := startBareProxy(b, "http://"+direct)
	for _, size := range []int{100, 64 << 10} {
		for _, conns := range []int{1, 64} {
			b.Run(fmt.Sprintf("size=%d/conns=%d", size, conns), func(b *testing.B) {
				path := fmt.Sprintf("/bytes?n=%d", size)
				perConn := 3000 / conns * 2
				if perConn < 50 {
					perConn = 50
				}
				var edgeLat, directLat, bareLat []time.Duration
				var edgeRate, directRate, bareRate float64
				host := "s-bench-3000.preview.localhost"
				for i := 0; i < b.N; i++ {
					// Alternate so all three see the same machine.
					l, r := load(b, direct, "", path, conns, perConn)
					directLat, directRate = append(directLat, l...), r
					l, r = load(b, bare, host, path, conns, perConn)
					bareLat, bareRate = append(bareLat, l...), r
					l, r = load(b, d.HTTP, host, path, conns, perConn)
					edgeLat, edgeRate = append(edgeLat, l...), r
				}
				dp50, dp99 := pct(directLat, 0.50), pct(directLat, 0.99)
				bp50 := pct(bareLat, 0.50)
				ep50, ep99 := pct(edgeLat, 0.50), pct(edgeLat, 0.99)
				b.ReportMetric(directRate, "direct-req/s")
				b.ReportMetric(edgeRate, "edge-req/s")
				b.ReportMetric(us(dp50), "direct-p50-µs")
				b.ReportMetric(us(dp99), "direct-p99-µs")
				b.ReportMetric(us(ep50), "edge-p50-µs")
				b.ReportMetric(us(ep99), "edge-p99-µs")
				b.ReportMetric(us(ep50-dp50), "added-p50-µs")
				b.ReportMetric(us(bp50-dp50), "bare-proxy-added-p50-µs")
				b.ReportMetric(edgeRate/directRate, "rate-ratio")
				b.ReportMetric(edgeRate/bareRate, "rate-vs-bare")
			})
		}
	}
}

// startBareProxy runs testdata/bareproxy in front of target and returns its address.
func startBareProxy(b *testing.B, target string) string {
	bin := dockertest.Binary(b, "./cmd/sandboxd/testdata/bareproxy")
	cmd := exec.Command(bin, target)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// load sends perConn requests on each of conns keep-alive connections and returns every
// latency and the overall rate.
func load(b *testing.B, addr, host, path string, conns, perConn int) ([]time.Duration, float64) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perConn; i++ {
				req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
				if host != "" {
					req.Host = host
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all, float64(len(all)) / elapsed.Seconds()
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
			ours = append(ours, firstByte(http.DefaultClient, "http://"+d.HTTP+"/", "s-wakebench-3000.preview.localhost"))

			// Raw warm: pause through sandboxd, unpause straight on the engine, and wait for
			// sandboxd to see it (engine events) before pausing through it again.
			call(b, "POST", d.API+"/v1/sandboxes/wakebench/pause", nil, nil)
			t0 = time.Now()
			if err := e.docker.ContainerUnpause(ctx, info.ID); err != nil {
				b.Fatal(err)
			}
			firstByte(direct, "http://"+ip+":3000/", "")
			rawUnpause = append(rawUnpause, time.Since(t0))
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
				if sb, _ := getSandbox(b, d, "wakebench"); sb.Status == "running" {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("sandboxd did not see the raw unpause within a minute")
				}
			}

			call(b, "POST", d.API+"/v1/sandboxes/wakebench/pause", nil, nil)
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
