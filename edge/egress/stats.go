package egress

import (
	"sort"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// Other is the sandbox label of the counters of sandboxes the proxy stopped tracking one
// by one (beyond MaxTracked): /metrics stays a bounded set of series however many
// sandboxes come and go.
const Other = "_other"

// statsTable counts decisions per sandbox and in all, and keeps each sandbox's last few
// denials. Memory only: counters restart with sandboxd, as Prometheus counters may.
type statsTable struct {
	mu      sync.Mutex
	recentN int
	max     int
	by      map[string]*sandboxStats
	other   sandboxStats
	totals  map[decisionKey]uint64
}

type decisionKey struct {
	allowed bool
	reason  string
}

type sandboxStats struct {
	allowed, denied uint64
	last            time.Time
	recent          []netpolicy.Denial // a ring of recentN, oldest at next
	next            int
}

func (s *statsTable) init(recentN, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recentN, s.max = recentN, max
}

// entry returns a sandbox's stats, making room when the table is full. s.mu is held.
func (s *statsTable) entry(id string, now time.Time) *sandboxStats {
	if s.by == nil {
		s.by = map[string]*sandboxStats{}
	}
	e := s.by[id]
	if e == nil {
		if len(s.by) >= max(s.max, 1) {
			s.evict()
		}
		e = &sandboxStats{}
		s.by[id] = e
	}
	e.last = now
	return e
}

// evict folds the least recently active sandbox into Other. It scans: it runs only when
// a new sandbox arrives at a full table.
func (s *statsTable) evict() {
	var oldest string
	var at time.Time
	for id, e := range s.by {
		if oldest == "" || e.last.Before(at) {
			oldest, at = id, e.last
		}
	}
	e := s.by[oldest]
	s.other.allowed += e.allowed
	s.other.denied += e.denied
	delete(s.by, oldest)
}

func (s *statsTable) allow(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entry(id, now).allowed++
	s.count(true, "")
}

func (s *statsTable) deny(id, host, reason string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(id, now)
	e.denied++
	s.count(false, reason)
	d := netpolicy.Denial{At: now, Host: host, Reason: reason}
	if n := max(s.recentN, 1); len(e.recent) < n {
		e.recent = append(e.recent, d)
	} else {
		e.recent[e.next] = d
		e.next = (e.next + 1) % n
	}
}

// total counts a decision that belongs to no sandbox.
func (s *statsTable) total(allowed bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count(allowed, reason)
}

func (s *statsTable) count(allowed bool, reason string) {
	if s.totals == nil {
		s.totals = map[decisionKey]uint64{}
	}
	s.totals[decisionKey{allowed, reason}]++
}

func (s *statsTable) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, id)
}

// DeniedRecent returns a sandbox's last denials, newest first: what
// "network":{"denied_recent":[...]} shows.
func (p *Proxy) DeniedRecent(sandbox string) []netpolicy.Denial {
	s := &p.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.by[sandbox]
	if e == nil {
		return nil
	}
	out := make([]netpolicy.Denial, 0, len(e.recent))
	for i := range e.recent {
		// newest first: the one before next, walking back around the ring
		j := (e.next - 1 - i + 2*len(e.recent)) % len(e.recent)
		out = append(out, e.recent[j])
	}
	return out
}

// Counts calls fn with each tracked sandbox's allowed and denied requests, sorted by id,
// then with Other when sandboxes were folded into it. A request is a tunnel or a
// forwarded request; a denial also counts connections refused for the bounds.
func (p *Proxy) Counts(fn func(sandbox string, allowed, denied uint64)) {
	s := &p.stats
	s.mu.Lock()
	ids := make([]string, 0, len(s.by))
	vals := make(map[string][2]uint64, len(s.by))
	for id, e := range s.by {
		ids = append(ids, id)
		vals[id] = [2]uint64{e.allowed, e.denied}
	}
	other := [2]uint64{s.other.allowed, s.other.denied}
	s.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		fn(id, vals[id][0], vals[id][1])
	}
	if other != [2]uint64{} {
		fn(Other, other[0], other[1])
	}
}

// Decisions calls fn with the count of each decision and reason so far ("" for allowed).
func (p *Proxy) Decisions(fn func(allowed bool, reason string, n uint64)) {
	s := &p.stats
	s.mu.Lock()
	totals := make(map[decisionKey]uint64, len(s.totals))
	for k, v := range s.totals {
		totals[k] = v
	}
	s.mu.Unlock()
	for k, v := range totals {
		fn(k.allowed, k.reason, v)
	}
}
