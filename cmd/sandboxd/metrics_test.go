package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// scrape returns the value of one sample of /metrics, or -1.
func scrape(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	resp, err := http.Get(d.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// A scrape after a wake shows the wake counted and timed, beside the other families.
func TestMetricsAfterWake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "met", "ports": []int{3000}})
	if code := call(t, "POST", d.API+"/v1/sandboxes/met/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	mustPreview(t, d, "met", 3000, "/", "hello from met")
	// A warm wake is counted apart from a cold one (issue 14).
	mustPost(t, d, "/v1/sandboxes/met/pause", "paused")
	if v := scrape(t, d, `sandboxd_sandboxes{state="paused"}`); v != 1 {
		t.Errorf(`sandboxd_sandboxes{state="paused"} = %v while paused, want 1`, v)
	}
	mustPreview(t, d, "met", 3000, "/", "hello from met")
	checks := []struct {
		series string
		min    float64
	}{
		{`sandboxd_wakes_total{outcome="started"}`, 1},
		{`sandboxd_wake_duration_seconds_count{outcome="started"}`, 1},
		{`sandboxd_sandboxes{state="running"}`, 1},
		{`sandboxd_proxied_requests_total{class="2xx"}`, 1},
		{`sandboxd_sandbox_stops_total{reason="api"}`, 1},
		{`sandboxd_operation_duration_seconds_count{op="create"}`, 1},
		{`sandboxd_operation_duration_seconds_count{op="start"}`, 1},
		{`sandboxd_wakes_total{outcome="unpaused"}`, 1},
		{`sandboxd_sandbox_pauses_total{reason="api"}`, 1},
		{`sandboxd_operation_duration_seconds_count{op="unpause"}`, 1},
		{`sandboxd_sandboxes{state="paused"}`, 0},
		{`sandboxd_open_websockets`, 0},
		{`sandboxd_tasks_running`, 0},
	}
	for _, c := range checks {
		if v := scrape(t, d, c.series); v < c.min {
			t.Errorf("%s = %v, want ≥ %v", c.series, v, c.min)
		}
	}
	if v := scrape(t, d, `sandboxd_wake_duration_seconds_sum{outcome="started"}`); v <= 0 {
		t.Errorf("the wake was not timed: sum %v", v)
	}
}

func TestDockerEndpointLabel(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"/v1.41/containers/3f2a9c1b7d8e9f00aa/start": "POST /containers/{id}/start",
		"/v1.41/exec/0123456789abcdef0123/json":      "POST /exec/{id}/json",
		"/v1.41/containers/json":                     "POST /containers/json",
		"/_ping":                                     "POST /_ping",
		"/v1.41/containers/sandboxd-abc123-web/kill": "POST /containers/{id}/kill",
		"/v1.41/images/sandboxd/testkit:latest/json": "POST /images/sandboxd/{id}/json",
	}
	for path, want := range cases {
		if got := endpoint("POST", path); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", path, got, want)
		}
	}
}
