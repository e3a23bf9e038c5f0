package lifecycle

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// Loops is the cadence of Run's background work. Zero fields take the stated defaults.
type Loops struct {
	Sweep    time.Duration // full reconcile; default 1m
	Activity time.Duration // activity sample, flush and idle reaper; default 10s
	Pressure time.Duration // memory-pressure check; default 5s
	Disk     time.Duration // quota scan; default Config.DiskScanEvery (disk.go)
}

// Run follows Docker events and runs the periodic reconcile, activity flush and reapers
// until ctx ends. It flushes activity once more before returning.
func (m *Manager) Run(ctx context.Context, loops Loops) error {
	if loops.Sweep == 0 {
		loops.Sweep = time.Minute
	}
	if loops.Activity == 0 {
		loops.Activity = 10 * time.Second
	}
	if loops.Pressure == 0 {
		loops.Pressure = 5 * time.Second
	}
	if loops.Disk == 0 {
		loops.Disk = m.diskEvery()
	}
	defer func() {
		// Detached-exec watchers stop watching (their processes go on in the containers)
		// and are joined.
		m.cancelBase()
		m.detachedExecs.wg.Wait()
	}()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.watchEvents(ctx) })
	g.Go(func() error {
		return every(ctx, loops.Sweep, func() {
			if err := m.reconcileAll(ctx, false); err != nil && ctx.Err() == nil {
				m.log.Warn("periodic reconcile", "err", err)
			}
		})
	})
	g.Go(func() error {
		defer func() {
			if err := m.flushActivity(context.WithoutCancel(ctx)); err != nil {
				m.log.Error("final activity flush", "err", err)
			}
		}()
		return every(ctx, loops.Activity, func() {
			m.IdleSweep(ctx, m.now())
			if err := m.flushActivity(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("activity flush", "err", err)
			}
		})
	})
	g.Go(func() error {
		return every(ctx, loops.Pressure, func() { m.PressureSweep(ctx, m.now()) })
	})
	g.Go(func() error { return m.diskLoop(ctx, loops.Disk) })
	return g.Wait()
}

func every(ctx context.Context, d time.Duration, fn func()) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			fn()
		case <-ctx.Done():
			return nil
		}
	}
}
