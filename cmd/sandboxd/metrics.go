package main

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sandboxd/sandboxd/edge"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/task"
	"github.com/sandboxd/sandboxd/wake"
)

// metrics is sandboxd's Prometheus registry (no package globals: one per process, passed
// around) and the collectors the hooks of wake, edge and lifecycle feed.
type metrics struct {
	reg          *prometheus.Registry
	wakes        *prometheus.CounterVec
	wakeSeconds  *prometheus.HistogramVec
	proxied      [6]prometheus.Counter // by status class, 1xx..5xx; [0] other
	reaperStops  *prometheus.CounterVec
	pauses       *prometheus.CounterVec
	opSeconds    *prometheus.HistogramVec
	dockerErrors *prometheus.CounterVec
	tasksEnded   *prometheus.CounterVec
	edgeLimited  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.wakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_wakes_total", Help: "Requests that waited on a sandbox to be running, by outcome (started: a cold start; unpaused: a warm one).",
	}, []string{"outcome"})
	m.wakeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sandboxd_wake_duration_seconds", Help: "How long requests waited on a sandbox, by outcome.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"outcome"})
	proxied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_proxied_requests_total", Help: "Preview requests answered, by status class.",
	}, []string{"class"})
	for i, class := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		m.proxied[i] = proxied.WithLabelValues(class)
	}
	m.reaperStops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_sandbox_stops_total", Help: "Sandboxes stopped, by reason: api, idle, stop_after, pressure, disk_quota.",
	}, []string{"reason"})
	m.pauses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_sandbox_pauses_total", Help: "Sandboxes paused, by reason: api, idle.",
	}, []string{"reason"})
	m.opSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sandboxd_operation_duration_seconds", Help: "Create (to running), start and unpause durations.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30}, // unpauses take milliseconds
	}, []string{"op"})
	m.dockerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_docker_api_errors_total", Help: "Docker Engine API calls that failed (transport error or 5xx), by endpoint.",
	}, []string{"endpoint"})
	m.tasksEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_tasks_total", Help: "Agent tasks ended, by status.",
	}, []string{"status"})
	m.edgeLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandboxd_edge_limited_total",
		Help: "Connections and requests the edge refused or cut, by limit: conns_per_ip, conns, streams_per_ip, backends, body_rate.",
	}, []string{"limit"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sandboxd_build_info", Help: "Always 1; labels say which build runs.",
	}, []string{"version", "go_version"})
	build.WithLabelValues(buildVersion(), runtime.Version()).Set(1)
	m.reg.MustRegister(m.wakes, m.wakeSeconds, proxied, m.reaperStops, m.pauses, m.opSeconds, m.dockerErrors, m.tasksEnded, m.edgeLimited, build,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// wire connects the hooks and the gauges read from live state.
func (m *metrics) wire(mgr *lifecycle.Manager, tasks *task.Runner, w *wake.Waker, e *edge.Server) {
	w.Observe = func(_ string, outcome string, d time.Duration) {
		m.wakes.WithLabelValues(outcome).Inc()
		m.wakeSeconds.WithLabelValues(outcome).Observe(d.Seconds())
	}
	e.OnStatus = func(code int) {
		class := code / 100
		if class < 1 || class > 5 {
			class = 0
		}
		m.proxied[class].Inc()
	}
	e.OnLimit = func(limit string) { m.edgeLimited.WithLabelValues(limit).Inc() }
	mgr.Observe = lifecycle.Observer{
		Stopped: func(reason string) { m.reaperStops.WithLabelValues(reason).Inc() },
		Paused:  func(reason string) { m.pauses.WithLabelValues(reason).Inc() },
		Timed:   func(op string, d time.Duration) { m.opSeconds.WithLabelValues(op).Observe(d.Seconds()) },
	}
	tasks.Ended = func(status string) { m.tasksEnded.WithLabelValues(status).Inc() }
	m.reg.MustRegister(
		&stateCollector{mgr: mgr, desc: prometheus.NewDesc("sandboxd_sandboxes", "Sandboxes by state.", []string{"state"}, nil)},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sandboxd_open_websockets", Help: "WebSockets proxied to sandboxes now."},
			func() float64 { return float64(e.OpenWebSockets()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sandboxd_edge_connections", Help: "Client connections the edge holds now, upgraded ones included."},
			func() float64 { conns, _ := e.OpenConns(); return float64(conns) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sandboxd_tasks_running", Help: "Agent tasks running now."},
			func() float64 { return float64(tasks.Running()) }),
		newDiskCollector(mgr), // issue 12
	)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// stateCollector reads sandboxes by state from the manager's memory at each scrape.
type stateCollector struct {
	mgr  *lifecycle.Manager
	desc *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.mgr.CountByState()
	for _, st := range []string{"creating", "running", "paused", "stopping", "stopped", "error"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

// dockerErrors counts failed Engine API calls at the one place they all pass: the client's
// transport. The endpoint label drops ids so it stays a small set.
type dockerErrors struct {
	base http.RoundTripper
	m    *metrics
}

func (d dockerErrors) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(r)
	if err != nil || resp.StatusCode >= 500 {
		d.m.dockerErrors.WithLabelValues(endpoint(r.Method, r.URL.Path)).Inc()
	}
	return resp, err
}

// endpoint turns "/v1.41/containers/3f2a…/start" into "POST /containers/{id}/start".
func endpoint(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) > 0 && strings.HasPrefix(parts[0], "v1.") {
		parts = parts[1:]
	}
	for i, p := range parts {
		if i > 0 && (len(p) >= 12 || isNumber(p)) {
			parts[i] = "{id}"
		}
	}
	return method + " /" + strings.Join(parts, "/")
}

func isNumber(s string) bool { _, err := strconv.Atoi(s); return err == nil }
