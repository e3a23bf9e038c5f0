package main

import (
	"math"
	"runtime/debug"
)

// Issue 14: the collector's settings are sandboxd's configuration, in its env file like
// the rest, checked at start with an error naming the variable. The default stays Go's
// (GOGC=100, no memory limit), and that is measured, not assumed: the edge allocates a
// few kilobytes per proxied request, almost none of which outlives it, and its live heap
// is small, so collections are cheap; in BenchmarkProxy the edge's CPU time per request
// (100 B bodies, 64 connections) was the same with GOGC=400 as with 100, within the run's
// noise, while 400 lets the heap peak at five times what is live instead of twice. Where
// CPU is scarcer than memory, raise SANDBOXD_GOGC; where memory is tight, set
// SANDBOXD_GOMEMLIMIT, and near it the collector runs as often as it must. Go's own GOGC
// and GOMEMLIMIT still work when the SANDBOXD_ variable is not set.

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
