package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// Issue 11, the slow-body flood scaled to a test: sandboxd may open 1,024 files, and
// clients from six addresses open 1,260 connections to one sandbox's preview: 1,080 POSTs
// announcing a megabyte and sending nothing, and 180 connections that send nothing at all.
// Throughout, /healthz on the admin API and a second sandbox's preview, each on a fresh
// connection from another address, answer within 1s. Every flood connection is closed by
// the daemon: refused at once (429/503) or cut at the deadline (408, or closed for want of
// headers). Afterwards the daemon's descriptors and goroutines are back near where they
// started, and its memory is bounded.
func TestSlowClientFlood(t *testing.T) {
	t.Parallel()
	const (
		nofile         = 1024
		addrs          = 6   // attacking addresses, 127.0.0.2-7
		slowPer        = 180 // slow-body POSTs per address
		idlePer        = 30  // silent connections per address
		window         = 2 * time.Second
		fdSlack        = 16       // descriptors the daemon may keep afterwards (pooled connections)
		goroutineSlack = 16       // goroutines likewise (a pooled connection has two)
		rssSlack       = 32 << 20 // memory it may keep: see the end
		announced      = 1000000  // the Content-Length of the slow POSTs
	)
	raiseOwnFileLimit(t, addrs*(slowPer+idlePer)+512)
	e := newEnv(t)
	e.vars["SANDBOXD_EDGE_BODY_WINDOW"] = window.String()
	e.vars["SANDBOXD_EDGE_HEADER_TIMEOUT"] = window.String()
	e.vars["SANDBOXD_LOG_LEVEL"] = "info" // a debug line per cut connection is not the point
	p := e.startLimited(nofile, nil)      // the binary as shipped, not the race-built test binary: its memory is the one that counts
	mustCreate(t, p.daemon, map[string]any{"id": "target", "ports": []int{3000}})
	mustCreate(t, p.daemon, map[string]any{"id": "other", "ports": []int{3000}})

	victim := newVictim(p.daemon, "other")
	for _, check := range victim.checks { // warm: both answer before the flood
		if err := check(); err != nil {
			t.Fatalf("before the flood: %v", err)
		}
	}
	if resp, body := preview(t, p.daemon, "target", 3000, "POST", "/echo", "warm", nil); resp.StatusCode != 200 || body != "warm" {
		t.Fatalf("target before the flood: %d %q", resp.StatusCode, body)
	}
	pid := p.cmd.Process.Pid
	fdsBefore, rssBefore, goroutinesBefore := openFDsOf(t, pid), rssOf(t, pid), goroutinesOf(t, p.daemon)

	stopVictim := victim.run()
	t.Cleanup(func() { stopVictim() }) // a Fatalf below must not leak the polling goroutine
	began := time.Now()
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	target := "s-target-3000.preview.localhost"
	for i := range addrs {
		src := fmt.Sprintf("127.0.0.%d", i+2)
		for j := range slowPer + idlePer {
			c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).Dial("tcp", p.HTTP)
			if err != nil {
				t.Fatalf("flood connection %d from %s: %v", len(flood)+1, src, err)
			}
			flood = append(flood, c)
			if j < slowPer {
				fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", target, announced)
			}
		}
	}
	opened := time.Since(began)
	fdsPeak, rssPeak := openFDsOf(t, pid), rssOf(t, pid)
	if fdsPeak >= nofile {
		t.Errorf("the daemon holds %d descriptors, at its limit of %d", fdsPeak, nofile)
	}

	// Every flood connection ends, by the deadline at the latest: each was admitted (or
	// refused) while the flood was opened, and its window or header timeout runs from then.
	var refused, cut, closed int
	deadline := began.Add(opened + window + 10*time.Second)
	for i, c := range flood {
		c.SetReadDeadline(deadline)
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("flood connection %d still open %v after the flood began (read %q)", i+1, time.Since(began), b)
		}
		switch s := string(b); {
		case strings.HasPrefix(s, "HTTP/1.1 429 "), strings.HasPrefix(s, "HTTP/1.1 503 "):
			refused++
		case strings.HasPrefix(s, "HTTP/1.1 408 "):
			cut++
		case s == "":
			closed++
		default:
			t.Errorf("flood connection %d got %q", i+1, s)
		}
	}
	victimErrs, rounds := stopVictim()
	t.Logf("%d connections opened in %v: %d refused, %d cut at the body deadline, %d closed without headers; all gone %v after the flood began; the victims answered %d rounds",
		len(flood), opened.Round(time.Millisecond), refused, cut, closed, time.Since(began).Round(time.Millisecond), rounds)
	for _, err := range victimErrs {
		t.Error(err)
	}
	if rounds < 3 {
		t.Errorf("only %d rounds of victim requests during the flood", rounds)
	}
	if refused == 0 || cut == 0 {
		t.Errorf("%d refused and %d cut; the flood should have met both the caps and the body deadline", refused, cut)
	}

	testutil.Eventually(t, 20*time.Second, "the daemon's descriptors back near their start", func() bool {
		return openFDsOf(t, pid) <= fdsBefore+fdSlack
	})
	// Every goroutine a flood connection had is gone. (A fresh connection per victim
	// request leaves none; the pool of the daemon's own backend connections may hold a
	// few more or fewer than before.)
	testutil.Eventually(t, 20*time.Second, "the daemon's goroutines back near their start", func() bool {
		return goroutinesOf(t, p.daemon) <= goroutinesBefore+goroutineSlack
	})
	// Memory freed by the flood is the Go runtime's to give back: it keeps it until its
	// next collection, which an idle daemon runs within two minutes, and returns it to the
	// OS gradually. So RSS is checked to be bounded, not back at its start to the byte.
	rssAfter := rssOf(t, pid)
	t.Logf("descriptors %d before, %d with the flood open, %d after; goroutines %d before, %d after; RSS %d MiB before, %d MiB with the flood open, %d MiB after",
		fdsBefore, fdsPeak, openFDsOf(t, pid), goroutinesBefore, goroutinesOf(t, p.daemon), rssBefore>>20, rssPeak>>20, rssAfter>>20)
	if rssAfter > rssBefore+rssSlack {
		t.Errorf("RSS %d MiB after the flood, %d MiB before; more than %d MiB kept", rssAfter>>20, rssBefore>>20, rssSlack>>20)
	}
	if resp, body := preview(t, p.daemon, "target", 3000, "POST", "/echo", "after", nil); resp.StatusCode != 200 || body != "after" {
		t.Fatalf("target after the flood: %d %q", resp.StatusCode, body)
	}
}

// victim is what must keep answering during a flood: the admin API's /healthz and another
// sandbox's preview, each asked on a fresh connection from 127.0.0.1 with a deadline.
type victim struct {
	checks []func() error
}

func newVictim(d *daemon, id string) *victim {
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(url, host, want string) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			if host != "" {
				req.Host = host
			}
			began := time.Now()
			resp, err := fresh.Do(req)
			if err != nil {
				return fmt.Errorf("%s%s after %v: %w", req.Host, req.URL.Path, time.Since(began).Round(time.Millisecond), err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
				return fmt.Errorf("%s%s: %d %q", req.Host, req.URL.Path, resp.StatusCode, b)
			}
			return nil
		}
	}
	return &victim{checks: []func() error{
		get(d.API+"/healthz", "", ""),
		get("http://"+d.HTTP+"/", "s-"+id+"-3000.preview.localhost", "hello from "+id),
	}}
}

// run asks the checks in rounds, paced by a ticker, until the returned stop is called;
// stop returns the failures and the number of rounds, and may be called more than once.
func (v *victim) run() (stop func() ([]error, int)) {
	done := make(chan struct{})
	var errs []error
	var rounds int
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, check := range v.checks {
				if err := check(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
			mu.Lock()
			rounds++
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return sync.OnceValues(func() ([]error, int) {
		close(done)
		wg.Wait()
		return errs, rounds
	})
}

func openFDsOf(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("descriptors of %d: %v", pid, err)
	}
	return len(ents)
}

// goroutinesOf reads the daemon's go_goroutines from its /metrics.
func goroutinesOf(t testing.TB, d *daemon) int {
	t.Helper()
	resp, err := http.Get(d.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// rssOf is the resident memory of pid in bytes (VmRSS).
func rssOf(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("status of %d: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// raiseOwnFileLimit makes room in this test process for n more descriptors.
func raiseOwnFileLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	want := uint64(len(ents)) + n
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		t.Fatalf("RLIMIT_NOFILE hard limit %d < %d: the flood needs that many descriptors", lim.Max, want)
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}
