// Package testutil holds the helpers that tests of several packages share. It is imported by
// test files only, and depends on the standard library only (sandbox-init's tests use it).
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, and fails the test with what when within passes
// first. It is for waiting on another process or the engine, which send no signal to wait
// on; within the process, wait on a channel, or use testing/synctest for timer logic.
// Polls start 1ms apart and back off to 50ms, so a fast condition costs little latency and
// a slow one little CPU.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(pause) // polling with a deadline, not ordering
		pause = min(2*pause, 50*time.Millisecond)
	}
}
