package main

import (
	"math"
	"runtime/debug"
)

// Issue 14: the edge allocates a few kilobytes per proxied request (net/http's request and
// response, headers, contexts), almost none of which outlives it, while what sandboxd
// keeps (routes, WebSockets, caches) is small and steady. Go's default GOGC=100 then
// collects every few megabytes of traffic; GOGC=400 collects a quarter as often, which cut
// the CPU time of the edge's in-process benchmark (100-byte bodies, 64 connections) by
// about a tenth, for a heap that peaks at five times what is live instead of twice.
// SANDBOXD_GOMEMLIMIT bounds that peak where memory is tight: near the limit the collector
// runs as often as it must. Go's own GOGC and GOMEMLIMIT still work when the SANDBOXD_
// variable is not set.

// applyGC sets the collector from cfg.
func applyGC(cfg *config) {
	if cfg.GCPercentSet {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if cfg.MemoryLimitSet {
		limit := cfg.MemoryLimit
		if limit == 0 {
			limit = math.MaxInt64 // off
		}
		debug.SetMemoryLimit(limit)
	}
}
