package edge

import (
	"sync"
	"time"
)

// Services tells the edge about the service behind a sandbox's port, for the pages of a
// port that does not answer: the starting page and the 502 "port closed" (issue 14). The
// lifecycle manager implements it (through cmd/sandboxd) by reading files only, sandbox-init's
// state file, the service's log and the sandbox's config, never SQLite or Docker; the edge
// calls it only on those slow paths, never for a port that answers, and at most once a
// second per port (serviceCache). Implementations are safe for concurrent use.
type Services interface {
	// ServiceStatus describes the service that serves port of sandbox id, with at most
	// tailBytes of the end of its log.
	ServiceStatus(id string, port, tailBytes int) (ServiceInfo, error)
}

// ServiceInfo is a service as Services reports it.
type ServiceInfo struct {
	// Name is the service that declares the port; when none does, "main", the image's
	// own command, if it runs; "" when neither is known.
	Name string
	// Declared reports that Name declares the port (false for "main").
	Declared bool
	// State is the service's state as sandbox-init last reported it: "starting" (its
	// process is up, its port not listening yet), "running", "backoff" (exited, restart
	// pending) or "stopped"; "" when it reported none.
	State     string
	StartedAt time.Time // when its process last started; zero when unknown
	Restarts  int
	LastExit  string // how its process last ended, "code 1" or "killed by signal 9"; "" when it has not
	Error     string // why its last start failed (a missing command, say)

	// Log is the path of its log in the sandbox, relative to the home
	// (".sandboxd/logs/web.log"); "" when there is no service.
	Log string
	// Tail is the end of the log, at most the bytes asked for; TailCut reports that it
	// starts inside the log, so its first line may be partial.
	Tail    []byte
	TailCut bool
	// Secrets are values the page must never show: the env values of the sandbox and of
	// its services. A Services that cannot tell them returns no Tail.
	Secrets []string
}

// serviceView is what the pages show of a ServiceInfo: the log is cleaned and redacted
// (logTail), and the secrets are gone, so a cached view holds none.
type serviceView struct {
	ServiceInfo
	lines []string
}

// serviceTTL is how long a view is reused: the starting page reloads about once a second,
// and a burst of navigations to a port that does not answer reads the files once.
const serviceTTL = time.Second

// serviceCacheMax bounds the views kept, and so their memory: a view holds at most
// logTailLines lines of logTailBytes in all, about 12 KiB, so 12 MiB together. Past it,
// the expired ones are dropped, and if none is, every one that is not being read.
const serviceCacheMax = 1024

// serviceCache keeps each port's view for serviceTTL and lets one caller at a time read
// it, the others waiting for its result.
type serviceCache struct {
	mu sync.Mutex
	m  map[serviceKey]*serviceFlight
}

type serviceKey struct {
	id   string
	port int
}

type serviceFlight struct {
	done chan struct{} // closed once view is set
	at   time.Time
	view serviceView
}

// view returns the view of id's port, read through fetch unless a fresh one is kept.
func (c *serviceCache) view(id string, port int, now time.Time, fetch func() serviceView) serviceView {
	k := serviceKey{id, port}
	c.mu.Lock()
	if f := c.m[k]; f != nil && (f.at.IsZero() || now.Sub(f.at) < serviceTTL) {
		c.mu.Unlock()
		<-f.done
		return f.view
	}
	if c.m == nil {
		c.m = make(map[serviceKey]*serviceFlight)
	}
	if len(c.m) >= serviceCacheMax {
		c.prune(now)
	}
	f := &serviceFlight{done: make(chan struct{})}
	c.m[k] = f
	c.mu.Unlock()

	v := fetch()
	c.mu.Lock()
	f.view, f.at = v, now
	c.mu.Unlock()
	close(f.done)
	return v
}

// prune drops the expired views, or every finished one if none has expired. c.mu is held.
func (c *serviceCache) prune(now time.Time) {
	for k, f := range c.m {
		if !f.at.IsZero() && now.Sub(f.at) >= serviceTTL {
			delete(c.m, k)
		}
	}
	if len(c.m) < serviceCacheMax {
		return
	}
	for k, f := range c.m {
		if !f.at.IsZero() {
			delete(c.m, k)
		}
	}
}
