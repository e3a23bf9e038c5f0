package main

import (
	"os"
	"syscall"
	"time"
)

// holdPollInterval is how often the hold file is looked for while it is there: a fork's
// services start at most this long after sandboxd lifts the hold.
const holdPollInterval = 5 * time.Millisecond

// awaitHold waits while the hold file exists (initproto.HoldFile): sandboxd is still giving
// the workspace to this sandbox's uid while the container starts (issue 18), and a service
// started meanwhile would meet files it cannot write. No service, relay or state write
// starts before it returns. It returns false when SIGTERM or SIGINT came first: there is
// nothing to stop, and the supervisor exits. Other signals have no service to go to yet.
func (s *supervisor) awaitHold(sigc <-chan os.Signal) bool {
	if s.opt.HoldPath == "" || !fileExists(s.opt.HoldPath) {
		return true
	}
	s.log.Printf("waiting for sandboxd to make the workspace ready (%s)", s.opt.HoldPath)
	tick := time.NewTicker(holdPollInterval)
	defer tick.Stop()
	for fileExists(s.opt.HoldPath) {
		select {
		case sig := <-sigc:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				return false
			}
		case <-tick.C:
		}
	}
	s.log.Printf("workspace ready")
	return true
}
