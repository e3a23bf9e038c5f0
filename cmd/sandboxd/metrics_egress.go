package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sandboxd/sandboxd/edge/egress"
)

// Issue 15: the egress proxy's decisions, read from its memory at each scrape. The
// per-sandbox series are bounded: the proxy tracks at most egress.Proxy.MaxTracked
// sandboxes (1024) and folds the least recently active others into sandbox="_other", and
// forgets a sandbox when it is deleted.
func (m *metrics) wireEgress(p *egress.Proxy) {
	m.reg.MustRegister(&egressCollector{p: p,
		total: prometheus.NewDesc("sandboxd_egress_requests_total",
			"Requests to the egress proxy (tunnels and forwarded requests), by decision and, for denials, reason.",
			[]string{"decision", "reason"}, nil),
		perSandbox: prometheus.NewDesc("sandboxd_egress_sandbox_requests_total",
			"Requests to the egress proxy by sandbox and decision (at most 1024 sandboxes; the rest as _other).",
			[]string{"sandbox", "decision"}, nil),
	})
}

type egressCollector struct {
	p                 *egress.Proxy
	total, perSandbox *prometheus.Desc
}

func (c *egressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.perSandbox
}

func (c *egressCollector) Collect(ch chan<- prometheus.Metric) {
	c.p.Decisions(func(allowed bool, reason string, n uint64) {
		decision := "denied"
		if allowed {
			decision = "allowed"
		}
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(n), decision, reason)
	})
	c.p.Counts(func(id string, allowed, denied uint64) {
		ch <- prometheus.MustNewConstMetric(c.perSandbox, prometheus.CounterValue, float64(allowed), id, "allowed")
		ch <- prometheus.MustNewConstMetric(c.perSandbox, prometheus.CounterValue, float64(denied), id, "denied")
	})
}
