package main

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// BenchmarkCLIExec measures what the CLI adds over curl to run a trivial command: the
// built sandboxd binary (sandboxd exec ID -- true) and curl sending the same streamed
// exec request, run alternately against one sandboxd, each as a fresh process. The
// target (issue 17) is at most 20 ms added at p50; added-p50-ms is the figure to read.
func BenchmarkCLIExec(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		b.Fatal("curl is needed: apt-get install curl")
	}
	_, d := benchDaemon(b)
	mustCreate(b, d, map[string]any{"id": "clibench"})
	bin := dockertest.Binary(b, "./cmd/sandboxd")
	cli := func() *exec.Cmd {
		c := exec.Command(bin, "exec", "clibench", "--", "true")
		c.Env = append(os.Environ(), "SANDBOXD_API="+d.API)
		return c
	}
	curl := func() *exec.Cmd {
		return exec.Command("curl", "-sS", "--fail-with-body", "-o", "/dev/null", "-XPOST", d.API+"/v1/sandboxes/clibench/exec",
			"-H", "Content-Type: application/json", "-H", "Accept: application/x-ndjson", "-d", `{"cmd":["true"]}`)
	}
	timed := func(c *exec.Cmd) time.Duration {
		t0 := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", c.Args, err, out)
		}
		return time.Since(t0)
	}
	timed(cli()) // the first run pages the binary in
	timed(curl())
	const n = 40
	for it := 0; it < b.N; it++ {
		var ours, theirs []time.Duration
		for i := 0; i < n; i++ {
			// Alternate, so both see the same machine.
			ours = append(ours, timed(cli()))
			theirs = append(theirs, timed(curl()))
		}
		added := pct(ours, 0.5) - pct(theirs, 0.5)
		b.ReportMetric(ms(pct(theirs, 0.5)), "curl-p50-ms")
		b.ReportMetric(ms(pct(ours, 0.5)), "cli-p50-ms")
		b.ReportMetric(ms(pct(ours, 0.95)), "cli-p95-ms")
		b.ReportMetric(ms(added), "added-p50-ms")
		if added > 20*time.Millisecond {
			b.Logf("the CLI adds %s over curl at p50: more than the 20 ms of issue 17", added)
		}
	}
}
