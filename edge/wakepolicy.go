package edge

import (
	"net/http"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/wake"
)

// Issue 14: a page left open kept its sandbox awake for good, because the page's
// live-reload client reconnected the moment the sandbox stopped, and the reconnect woke
// it. Browsers label every request with fetch metadata (Sec-Fetch-*): a person opening a
// page is a navigation, and everything the page does on its own (fetch/XHR, subresources,
// WebSocket connects) is not. Programs send no such headers. The edge sorts requests to a
// sleeping sandbox by these headers; the route's wake.Policy says which sorts wake it.

// sleepingRetryAfter is the Retry-After of the answer to a request that did not wake its
// sandbox. Clients of live-reload servers retry on their own schedule anyway; this is for
// the ones that read it.
const sleepingRetryAfter = 5 * time.Second

// requestKind tells who sent r from its fetch metadata.
func requestKind(r *http.Request) wake.Kind {
	h := r.Header
	// A speculative load (prefetch, prerender) is the browser guessing, not a person
	// opening the page, even when it is labelled a navigation.
	if strings.Contains(h.Get("Sec-Purpose"), "prefetch") || h.Get("Purpose") == "prefetch" {
		return wake.Background
	}
	switch h.Get("Sec-Fetch-Mode") {
	case "navigate", "nested-navigate": // nested-navigate: frames, in early Chromes
		return wake.Navigation // a page or a frame (Sec-Fetch-Dest: document or iframe)
	}
	for k := range h {
		if strings.HasPrefix(k, "Sec-Fetch-") {
			return wake.Background
		}
	}
	return wake.Program
}

// sleeping answers a request that may not wake its sandbox: 503, quickly, saying so in a
// header programs can read and in words people can.
func sleeping(id string) answer {
	return answer{status: http.StatusServiceUnavailable, code: "sandbox_sleeping", state: "sleeping",
		retryAfter: sleepingRetryAfter,
		message: "sandbox " + id + " is asleep, and a page's background request does not wake it: " +
			"open the page in a browser tab, or call it without browser headers, to wake it"}
}
