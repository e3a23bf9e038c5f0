package wake

import "fmt"

// Issue 14: a page left open in a tab kept its sandbox awake for good. When the sandbox
// stopped, the page's live-reload WebSocket closed, reconnected at once, and the reconnect
// woke the sandbox. So whether a request may wake a sleeping (paused or stopped) sandbox
// depends on who sent it; the edge tells the Kind from the request's fetch metadata, and
// the sandbox's Policy decides.

// Kind is who sent a request to a sleeping sandbox.
type Kind uint8

const (
	// Program: a client that sends no fetch metadata (Sec-Fetch-*): curl, SDKs, webhooks,
	// and browsers too old to send it.
	Program Kind = iota
	// Navigation: a person opening a page, in a tab or a frame.
	Navigation
	// Background: a request a page makes on its own: fetch/XHR, subresources, WebSocket
	// (re)connects, prefetches.
	Background
)

func (k Kind) String() string {
	switch k {
	case Program:
		return "program"
	case Navigation:
		return "navigation"
	case Background:
		return "background"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Policy is a sandbox's wake_on: which kinds of request wake it. The zero Policy is the
// default, OnNavigation.
type Policy uint8

const (
	// OnNavigation: navigations and programs wake the sandbox; background requests get a
	// quick refusal and leave it asleep.
	OnNavigation Policy = iota
	// OnAny: every request wakes it (before issue 14, every sandbox behaved so).
	OnAny
)

// Wakes reports whether a request of kind k may wake a sandbox with policy p.
func (p Policy) Wakes(k Kind) bool { return p == OnAny || k != Background }

func (p Policy) String() string {
	switch p {
	case OnNavigation:
		return "navigation"
	case OnAny:
		return "any"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy reads a wake_on value: "navigation" (or "", the default) or "any".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "navigation":
		return OnNavigation, nil
	case "any":
		return OnAny, nil
	}
	return OnNavigation, fmt.Errorf(`wake_on %q is not a wake policy: use "navigation" or "any"`, s)
}
