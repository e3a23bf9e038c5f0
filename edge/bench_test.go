package edge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// BenchmarkProxy and BenchmarkDirect GET the same loopback app, through the
// edge and straight, over keep-alive connections; the difference is what
// the edge adds. Latency percentiles are reported next to ns/op (which,
// with 64 connections, is throughput, not latency).
func BenchmarkProxy(b *testing.B)  { benchmarkGET(b, true) }
func BenchmarkDirect(b *testing.B) { benchmarkGET(b, false) }

func benchmarkGET(b *testing.B, viaEdge bool) {
	for _, size := range []int{100, 64 << 10} {
		for _, conns := range []int{1, 64} {
			b.Run(fmt.Sprintf("body=%d/conns=%d", size, conns), func(b *testing.B) {
				body := make([]byte, size)
				app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.Write(body)
				}))
				defer app.Close()
				port := app.Listener.Addr().(*net.TCPAddr).Port

				target, url := app.Listener.Addr().String(), app.URL+"/"
				if viaEdge {
					h := newHarness(b)
					h.route("sb1", Running, port)
					target, url = h.addr, previewURL("sb1", port, "/")
				}
				tr := &http.Transport{
					DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
						return (&net.Dialer{}).DialContext(ctx, "tcp", target)
					},
					MaxIdleConnsPerHost: conns,
					MaxConnsPerHost:     conns,
					DisableCompression:  true,
				}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr}
				get := func() {
					res, err := client.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 || int(n) != size {
						b.Fatalf("status %d, %d bytes", res.StatusCode, n)
					}
				}
				get() // warm: the edge learns the port is open, pools fill

				var mu sync.Mutex
				var lat []time.Duration
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				if conns == 1 {
					lat = make([]time.Duration, 0, b.N)
					for b.Loop() {
						t0 := time.Now()
						get()
						lat = append(lat, time.Since(t0))
					}
				} else {
					b.SetParallelism((conns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						var mine []time.Duration
						for pb.Next() {
							t0 := time.Now()
							get()
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				b.StopTimer()
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}

// memSample is the process's memory at one moment.
type memSample struct {
	heap, stack, total uint64 // HeapInuse, StackInuse, runtime total minus released
	goroutines         int
}

func sampleMemory() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(m)
	return memSample{
		heap:       ms.HeapInuse,
		stack:      ms.StackInuse,
		total:      m[0].Value.Uint64() - m[1].Value.Uint64(),
		goroutines: runtime.NumGoroutine(),
	}
}

// perConn is (after-before)/n for each measure, as float64s.
func perConn(before, after memSample, n int) (heap, stack, total, goroutines float64) {
	d := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return d(after.heap, before.heap), d(after.stack, before.stack), d(after.total, before.total),
		float64(after.goroutines-before.goroutines) / float64(n)
}

// BenchmarkWebSocketMemory opens 1,000 WebSockets straight to an echo app,
// then 1,000 through the edge, each after one echo, and reports memory per
// connection: the whole process (client and app included) and the edge's
// share (proxied minus direct).
func BenchmarkWebSocketMemory(b *testing.B) {
	const n = 1000
	raiseFileLimit(b, 4*n)
	// One client address opens all n: the per-client cap (256 by default) is raised to let it.
	h := newHarness(b, func(s *Server) { s.MaxConnsPerIP = 2 * n })
	app := httptest.NewServer(echoWS(b))
	defer app.Close()
	port := app.Listener.Addr().(*net.TCPAddr).Port
	h.route("sb1", Running, port)

	open := func(dialer *websocket.Dialer, url string) []*websocket.Conn {
		conns := make([]*websocket.Conn, 0, n)
		for range n {
			c, _, err := dialer.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			c.WriteMessage(websocket.TextMessage, []byte("hello"))
			if _, _, err := c.ReadMessage(); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		return conns
	}
	closeAll := func(conns []*websocket.Conn) {
		for _, c := range conns {
			c.Close()
		}
		testutil.Eventually(b, 10*time.Second, "no open WebSocket", func() bool { return h.edge.OpenWebSockets() == 0 })
	}
	measure := func(dialer *websocket.Dialer, url string) (heap, stack, total, goroutines float64) {
		before := sampleMemory()
		conns := open(dialer, url)
		after := sampleMemory()
		heap, stack, total, goroutines = perConn(before, after, n)
		closeAll(conns)
		return
	}
	direct := &websocket.Dialer{}
	for b.Loop() {
		dh, ds, dt, dg := measure(direct, "ws"+app.URL[len("http"):]+"/ws")
		ph, ps, pt, pg := measure(h.wsDialer(), "ws://"+previewHost("sb1", port)+"/ws")
		b.ReportMetric(pt, "total-B/conn")
		b.ReportMetric(pt-dt, "edge-total-B/conn")
		b.ReportMetric(ph-dh, "edge-heap-B/conn")
		b.ReportMetric(ps-ds, "edge-stack-B/conn")
		b.ReportMetric(pg-dg, "edge-goroutines/conn")
	}
}

// BenchmarkPreviewAccess measures what the access check of a private port adds (issue 13:
// at most 2 µs at p50, no database). One edge serves the same app as a public sandbox and
// as a private one; each iteration sends one GET to each, in rotating order, over keep-alive
// connections, so both see the same machine at the same moments. It reports each p50 and
// the differences: a token in the header, and in a cookie among the app's own.
func BenchmarkPreviewAccess(b *testing.B) {
	h := newHarness(b)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	port := app.Listener.Addr().(*net.TCPAddr).Port
	key := newKey(b)
	h.route("pub", Running, port)
	h.private("priv", Running, key, port)
	tok := sign(key, "priv", port, time.Now().Add(time.Hour), false)

	type variant struct {
		name string
		req  *http.Request
		lat  []time.Duration
	}
	mk := func(name, id string, hdr http.Header) *variant {
		req, _ := http.NewRequest("GET", previewURL(id, port, "/"), nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		return &variant{name: name, req: req}
	}
	variants := []*variant{
		mk("public", "pub", http.Header{"Cookie": {"app=1; theme=dark"}}),
		mk("header", "priv", http.Header{"Cookie": {"app=1; theme=dark"}, TokenHeader: {tok}}),
		mk("cookie", "priv", http.Header{"Cookie": {"app=1; " + cookieName + "=" + tok + "; theme=dark"}}),
	}
	client := &http.Client{Transport: h.clientTransport()}
	defer client.CloseIdleConnections()
	get := func(v *variant) {
		res, err := client.Do(v.req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%s: status %d", v.name, res.StatusCode)
		}
	}
	for _, v := range variants {
		get(v) // warm: ports known open, pools filled
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		for k := range variants { // each goes first in turn: none always follows another
			v := variants[(n+k)%len(variants)]
			t0 := time.Now()
			get(v)
			v.lat = append(v.lat, time.Since(t0))
		}
	}
	b.StopTimer()
	p50 := func(l []time.Duration) float64 {
		slices.Sort(l)
		return float64(l[len(l)/2].Nanoseconds()) / 1e3
	}
	pub := p50(variants[0].lat)
	b.ReportMetric(pub, "public-p50-µs")
	for _, v := range variants[1:] {
		p := p50(v.lat)
		b.ReportMetric(p, v.name+"-p50-µs")
		b.ReportMetric(p-pub, v.name+"-added-µs")
	}
}

// BenchmarkAccessCheck is the check alone, as the edge runs it on a request to a private
// port: find the token (header or cookie) and verify it.
func BenchmarkAccessCheck(b *testing.B) {
	srv := NewServer(testDomain, NewTable(), nil, nil)
	key := newKey(b)
	srv.table.Set(Route{ID: "01jcq7v2k3m4n5p6q7r8s9t0vw", State: Running, Addr: loopback, Ports: []int{3000}, Private: true, Key: key})
	e := srv.table.lookup("01jcq7v2k3m4n5p6q7r8s9t0vw")
	tok := sign(key, "01jcq7v2k3m4n5p6q7r8s9t0vw", 3000, time.Now().Add(time.Hour), false)
	for _, c := range []struct {
		name string
		hdr  http.Header
	}{
		{"header", http.Header{TokenHeader: {tok}}},
		{"cookie", http.Header{"Cookie": {"app=1; " + cookieName + "=" + tok + "; theme=dark"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "http://s-01jcq7v2k3m4n5p6q7r8s9t0vw-3000.preview."+testDomain+"/", nil)
			req.Header = c.hdr
			b.ReportAllocs()
			for b.Loop() {
				if !srv.verified(req, e, 3000) {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkLimits measures what the limits of issue 11 cost: the same requests through two
// edges, one with the limits at their defaults (connection caps, a client's share, the
// backend cap, the body pace) and one with them all off, interleaved request by request so
// that drift and noise on a shared machine fall on both alike. It reports each side's
// mean latency and the ratios on/off of the mean (throughput: every request is one of
// conns in flight), p50 and p99; the target is within 1.03. The means leave out each
// side's slowest 1%: on a shared 2-core machine those are the scheduler's hiccups, which
// land on either side by chance and swing a full mean by several percent from run to run
// (p99 shows them). POST sends a 4 KiB body, the only kind the pace rule wraps.
func BenchmarkLimits(b *testing.B) {
	for _, method := range []string{"GET", "POST"} {
		for _, conns := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/conns=%d", method, conns), func(b *testing.B) {
				sides := [2]*benchSide{newBenchSide(b, false, method, conns), newBenchSide(b, true, method, conns)}
				var mu sync.Mutex
				var lat [2][]time.Duration
				round := func(mine *[2][]time.Duration, first int) {
					for k := range 2 {
						s := (first + k) % 2
						t0 := time.Now()
						sides[s].do(b)
						mine[s] = append(mine[s], time.Since(t0))
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				if conns == 1 {
					i := 0
					for b.Loop() {
						round(&lat, i%2)
						i++
					}
				} else {
					b.SetParallelism((conns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						var mine [2][]time.Duration
						for i := 0; pb.Next(); i++ {
							round(&mine, i%2)
						}
						mu.Lock()
						lat[0], lat[1] = append(lat[0], mine[0]...), append(lat[1], mine[1]...)
						mu.Unlock()
					})
				}
				b.StopTimer()
				if len(lat[0]) == 0 {
					return
				}
				var mean [2]float64
				var p50, p99 [2]float64
				for s := range 2 {
					slices.Sort(lat[s])
					fastest := lat[s][:max(1, len(lat[s])*99/100)]
					var sum time.Duration
					for _, d := range fastest {
						sum += d
					}
					mean[s] = float64(sum) / float64(len(fastest))
					p50[s] = float64(lat[s][len(lat[s])/2])
					p99[s] = float64(lat[s][len(lat[s])*99/100])
				}
				b.ReportMetric(mean[0]/1e3, "off-mean-µs")
				b.ReportMetric(mean[1]/1e3, "on-mean-µs")
				b.ReportMetric(mean[1]/mean[0], "on/off-mean")
				b.ReportMetric(p50[1]/p50[0], "on/off-p50")
				b.ReportMetric(p99[1]/p99[0], "on/off-p99")
			})
		}
	}
}

// benchSide is one edge of BenchmarkLimits with its app and client.
type benchSide struct {
	client *http.Client
	url    string
	method string
	body   []byte
}

func newBenchSide(b *testing.B, limits bool, method string, conns int) *benchSide {
	reply := make([]byte, 100)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
		w.Write(reply)
	}))
	b.Cleanup(app.Close)
	port := app.Listener.Addr().(*net.TCPAddr).Port
	h := newHarness(b, func(s *Server) {
		if !limits {
			s.MaxConns, s.MaxConnsPerIP, s.BodyMinRate = -1, -1, -1
		}
	})
	h.route("sb1", Running, port)
	tr := &http.Transport{
		DialContext:         h.dialEdge,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	b.Cleanup(tr.CloseIdleConnections)
	s := &benchSide{client: &http.Client{Transport: tr}, url: previewURL("sb1", port, "/"), method: method}
	if method == "POST" {
		s.body = make([]byte, 4<<10)
	}
	s.do(b) // warm: the edge learns the port is open
	return s
}

func (s *benchSide) do(b *testing.B) {
	var body io.Reader
	if s.body != nil {
		body = bytes.NewReader(s.body)
	}
	req, err := http.NewRequest(s.method, s.url, body)
	if err != nil {
		b.Fatal(err)
	}
	res, err := s.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || n != 100 {
		b.Fatalf("status %d, %d bytes", res.StatusCode, n)
	}
}

// BenchmarkBodyPace is the pace rule's own cost, without the network or the proxy around
// it: reading a 4 KiB body from memory as it is (raw) and through the rule (paced), whose
// deadlines are set on a real loopback TCP connection as in the edge. The difference is
// the CPU the rule adds to a request with a body; BenchmarkLimits shows it against whole
// proxied requests.
func BenchmarkBodyPace(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	piece := make([]byte, 4<<10)
	buf := make([]byte, 32<<10)
	for _, paced := range []bool{false, true} {
		b.Run(map[bool]string{false: "raw", true: "paced"}[paced], func(b *testing.B) {
			b.SetBytes(int64(len(piece)))
			b.ReportAllocs()
			for b.Loop() {
				var body io.Reader = bytes.NewReader(piece)
				var rb *rateBody
				if paced {
					rb = newRateBody(io.NopCloser(body), c, defaultBodyMinRate, defaultBodyWindow, nil)
					body = rb
				}
				for {
					if _, err := body.Read(buf); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				if rb != nil {
					rb.finish()
				}
			}
		})
	}
}
