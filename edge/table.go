package edge

import (
	"bytes"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/wake"
)

// State is what the edge does with a sandbox's requests.
type State uint8

const (
	// Asleep covers stopped and stopping: a request the route's WakeOn
	// allows wakes the sandbox and waits for it; others get 503 at once.
	// It is the zero State.
	Asleep State = iota
	// Running: requests go straight to Route.Addr once a port is known open.
	Running
	// Broken: the sandbox is in error; requests get 503 with Route.Message.
	Broken
	// Paused: frozen, memory kept (issue 14). Asleep as far as requests go;
	// a wake unpauses it.
	Paused
	// Starting: being created. Requests wait for it, whoever sent them: it
	// is not asleep.
	Starting
)

// Sleeping reports a state whose wake depends on who asks (Route.WakeOn).
func (s State) Sleeping() bool { return s == Asleep || s == Paused }

func (s State) String() string {
	switch s {
	case Asleep:
		return "asleep"
	case Running:
		return "running"
	case Broken:
		return "broken"
	case Paused:
		return "paused"
	case Starting:
		return "starting"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Route is how the edge reaches one sandbox.
type Route struct {
	// ID is the sandbox id, as in its preview host.
	ID string
	// State is the sandbox's state as the edge sees it.
	State State
	// Addr is the container IP; valid when State is Running.
	Addr netip.Addr
	// Ports are the declared ports; requests to others get 404. Set keeps
	// its own copy; the slice Get returns must not be modified.
	Ports []int
	// HostHeader chooses the Host the app sees. "" (the default) keeps the
	// preview host; "localhost" sends "localhost:<port>", for dev servers
	// that refuse unknown hosts. Any other value is sent verbatim. The
	// preview host stays in X-Forwarded-Host either way.
	HostHeader string
	// Bytes is the sandbox's activity counter, owned by the lifecycle
	// manager: the edge adds every byte read from or written to a backend
	// connection, WebSocket frames included. Nil means not counted.
	Bytes *atomic.Int64
	// Message says why a Broken sandbox is broken; preview visitors see it.
	Message string

	// Issue 13: preview access (access.go).

	// Private makes the sandbox's ports answer only requests that carry a
	// preview token for their port signed with Key; PortPrivate overrides
	// it for single ports (true: private, false: public).
	Private     bool
	PortPrivate map[int]bool
	// Key verifies the sandbox's preview tokens; nil lets no token in, so
	// its private ports answer 401 to everyone. Replacing it revokes every
	// token signed with the old one, and closes the WebSockets proxied to
	// its private ports. Set keeps its own copy of Key and PortPrivate.
	Key []byte

	// WakeOn says which requests may wake the sandbox while it sleeps; the
	// zero value wakes it for navigations and programs only (issue 14).
	WakeOn wake.Policy
}

// private reports whether port needs a preview token.
func (r *Route) private(port int) bool {
	if p, ok := r.PortPrivate[port]; ok {
		return p
	}
	return r.Private
}

// Table is the in-memory route table: one Route per sandbox id. Reads are
// lock-free; writes are serialized. The zero Table is not usable: call
// NewTable.
type Table struct {
	routes sync.Map // id → *entry
	n      atomic.Int64

	mu  sync.Mutex // serializes Set and Delete
	gen uint64     // last entry generation handed out; guarded by mu

	// revoked are told, after Set returns to them, which ports of a route
	// got stricter (tightened). Guarded by mu.
	revoked []func(id string, tightened func(port int) bool)
}

// entry is a Route plus what the edge learned about it. An entry is
// replaced, never changed, when its route's state or address changes, so
// that knowledge never outlives the container it was learned from.
type entry struct {
	route Route
	// gen names the backend (state, address) the entry stands for. It keys
	// the connection pool: connections to an earlier generation are never
	// handed to a later one, even when a new container reuses the IP.
	gen uint64
	// open[i] is set once Ports[i] accepted a connection since the entry
	// was made, cleared on a dial error.
	open []atomic.Bool
	// targets[i] is the proxy URL of Ports[i] when Running; its host is
	// a pool key, not a name (the dialer goes to route.Addr).
	targets []*url.URL
	// privates[i] says whether Ports[i] needs a preview token: the hot
	// path reads one bool.
	privates []bool
}

// NewTable returns an empty Table.
func NewTable() *Table { return &Table{} }

// Set adds or replaces id's route. Replacing it with the same state,
// address and ports keeps what the edge learned about open ports.
func (t *Table) Set(r Route) {
	r.Ports = slices.Clone(r.Ports)
	r.PortPrivate, r.Key = maps.Clone(r.PortPrivate), bytes.Clone(r.Key)
	t.mu.Lock()
	defer t.mu.Unlock()

	e := &entry{route: r, open: make([]atomic.Bool, len(r.Ports)), privates: make([]bool, len(r.Ports))}
	for i, p := range r.Ports {
		e.privates[i] = r.private(p)
	}
	v, existed := t.routes.Load(r.ID)
	old, _ := v.(*entry)
	if old != nil && stricter(&old.route, &r) {
		// Told under mu, so that two Sets of one id are told in order.
		prev := old.route
		defer func() {
			for _, f := range t.revoked {
				f(r.ID, func(port int) bool { return tightened(&prev, &r, port) })
			}
		}()
	}
	if old != nil && old.route.State == r.State && old.route.Addr == r.Addr {
		e.gen = old.gen
		for i, p := range r.Ports {
			if j := old.portIndex(p); j >= 0 {
				e.open[i].Store(old.open[j].Load())
			}
		}
	} else {
		t.gen++
		e.gen = t.gen
	}
	if r.State == Running {
		e.targets = make([]*url.URL, len(r.Ports))
		for i, p := range r.Ports {
			e.targets[i] = &url.URL{
				Scheme: "http",
				Host:   r.ID + ".g" + strconv.FormatUint(e.gen, 10) + ".sandbox:" + strconv.Itoa(p),
			}
		}
	}
	t.routes.Store(r.ID, e)
	if !existed {
		t.n.Add(1)
	}
}

// stricter reports whether next lets in fewer requests than prev on some
// declared port.
func stricter(prev, next *Route) bool {
	return slices.ContainsFunc(next.Ports, func(p int) bool { return tightened(prev, next, p) })
}

// tightened reports whether next lets in fewer requests than prev on port:
// the port turned private, or it is private under a new key (its tokens and
// cookies no longer verify). A port private before and after under the same
// key is not: its sessions stay.
func tightened(prev, next *Route, port int) bool {
	return next.private(port) && (!prev.private(port) || !bytes.Equal(prev.Key, next.Key))
}

// onRevoke registers f to be told which ports of a route got stricter.
func (t *Table) onRevoke(f func(id string, tightened func(port int) bool)) {
	t.mu.Lock()
	t.revoked = append(t.revoked, f)
	t.mu.Unlock()
}

// Delete removes id's route. Requests for it get 404 from then on.
func (t *Table) Delete(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, existed := t.routes.LoadAndDelete(id); existed {
		t.n.Add(-1)
	}
}

// Get returns id's route.
func (t *Table) Get(id string) (Route, bool) {
	e := t.lookup(id)
	if e == nil {
		return Route{}, false
	}
	return e.route, true
}

// Len returns the number of routes.
func (t *Table) Len() int { return int(t.n.Load()) }

func (t *Table) lookup(id string) *entry {
	v, ok := t.routes.Load(id)
	if !ok {
		return nil
	}
	return v.(*entry)
}

// private reports whether the port at index i (-1: undeclared) needs a
// preview token.
func (e *entry) private(i, port int) bool {
	if i >= 0 {
		return e.privates[i]
	}
	return e.route.private(port)
}

// portIndex returns the index of port in the declared ports, or -1.
func (e *entry) portIndex(port int) int {
	for i, p := range e.route.Ports {
		if p == port {
			return i
		}
	}
	return -1
}
