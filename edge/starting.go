package edge

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/wake"
)

// Issue 14: a navigation to an app still booting (a dev server running npm install, say)
// was held for the waker's whole probe window, then got "port closed" with no hint and no
// retry. Now a navigation gets the starting page once StartingAfter has passed without the
// port answering; everything else is held as before, and a request to a running sandbox
// whose service is still starting is held until WakeTimeout after it came rather than
// only the probe window. A port that stays closed gets a 502 naming the service that
// declares it and where its log is.

// wantsStartingPage reports a request that gets the starting page instead of being held:
// a person opening the page in a browser, in a tab or a frame. That is a GET navigation by
// its fetch metadata (requestKind, which the wake policy sorts by too), or, from a browser
// too old to send fetch metadata, a GET whose Accept names HTML. A prefetch is not (a
// cached starting page would be shown later), nor a WebSocket handshake, nor a program:
// those wait for the app.
func wantsStartingPage(r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" {
		return false
	}
	switch requestKind(r) {
	case wake.Navigation:
		return true
	case wake.Program: // no fetch metadata at all
		return strings.HasPrefix(r.Header.Get("User-Agent"), "Mozilla/") && acceptsHTML(r)
	}
	return false
}

func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}

// wakeFor holds r until id's port answers and returns its address, or answers r itself
// and returns ok false. woke reports that the sandbox was not running when r came.
func (s *Server) wakeFor(w http.ResponseWriter, r *http.Request, id string, port int, woke bool) (netip.AddrPort, bool) {
	ctx := r.Context()
	// The longest hold, counted from now; a waking sandbox's is the waker's own.
	hold, cancel := context.WithTimeout(ctx, s.wakeTimeout())
	defer cancel()
	var addr netip.AddrPort
	var err error
	if s.Services != nil && wantsStartingPage(r) {
		var over bool
		addr, over, err = s.wakeWithin(ctx, id, port, woke)
		if over && ctx.Err() == nil {
			if v := s.serviceView(id, port); woke || s.starting(v) {
				if _, ok := s.stillAdmitted(w, r, id, port); ok {
					s.writeStarting(w, r, id, port, v)
				}
				return netip.AddrPort{}, false
			}
			addr, err = s.waker.Wake(ctx, id, port) // a port closed while running: held for the 502
		}
	} else {
		addr, err = s.waker.Wake(ctx, id, port)
	}
	var pe *wake.PortClosedError
	for err != nil && errors.As(err, &pe) && hold.Err() == nil && s.Services != nil {
		// The waker gave up after its probe window; a service that sandbox-init says is
		// still starting gets until the hold's end. The image's command that merely
		// started lately is no such sign for a program: it may serve another port, or
		// none, and SANDBOXD_PROBE_WINDOW is how long a program waits for a closed port.
		if v := s.serviceView(id, port); !s.booting(v) || cannotStart(v) {
			break
		}
		addr, err = s.waker.Wake(hold, id, port)
	}
	if err == nil {
		return addr, true
	}
	if ctx.Err() != nil {
		return netip.AddrPort{}, false // the client left; nobody to answer
	}
	if errors.As(err, &pe) {
		s.answer(w, r, s.portClosed(id, pe.Port))
	} else {
		s.answer(w, r, wakeAnswer(id, port, err))
	}
	return netip.AddrPort{}, false
}

// wakeWithin is Wake for a navigation that gets the starting page once StartingAfter has
// passed (over reports that). A sandbox the request found asleep keeps waking after that:
// the call goes on detached, for WakeTimeout at most, so a start that waits for a start
// slot is not given up with the page (wake abandons a queued start its last caller left),
// and the page's reload finds it started. wake's queue bounds these calls per sandbox and
// in all. A running sandbox's port is only probed: that ends with the page.
func (s *Server) wakeWithin(ctx context.Context, id string, port int, woke bool) (addr netip.AddrPort, over bool, err error) {
	if !woke {
		grace, cancel := context.WithTimeout(ctx, s.startingAfter())
		defer cancel()
		addr, err = s.waker.Wake(grace, id, port)
		return addr, err != nil && grace.Err() == context.DeadlineExceeded, err
	}
	type result struct {
		addr netip.AddrPort
		err  error
	}
	done := make(chan result, 1)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.wakeTimeout())
	go func() {
		defer cancel()
		addr, err := s.waker.Wake(wctx, id, port)
		done <- result{addr, err}
	}()
	grace := time.NewTimer(s.startingAfter())
	defer grace.Stop()
	select {
	case res := <-done:
		return res.addr, false, res.err
	case <-grace.C:
		return netip.AddrPort{}, true, context.DeadlineExceeded
	case <-ctx.Done():
		return netip.AddrPort{}, false, ctx.Err() // the client left; the start goes on
	}
}

// stillAdmitted re-checks a request after a wait and returns its sandbox's entry: the
// sandbox may have been deleted meanwhile (404), or its port's token revoked or the port
// made private (401); it answers r itself when not.
func (s *Server) stillAdmitted(w http.ResponseWriter, r *http.Request, id string, port int) (*entry, bool) {
	e := s.table.lookup(id)
	if e == nil {
		s.answer(w, r, notFound(id))
		return nil, false
	}
	if e.private(e.portIndex(port), port) && !s.verified(r, e, port) {
		s.answer(w, r, unauthorized())
		return nil, false
	}
	return e, true
}

// starting reports whether a navigation to a port that does not answer gets the starting
// page: its service is booting, or the image's command, which declares no port for
// sandbox-init to watch, shows "running" but started less than WakeTimeout ago (the page
// reloads itself, so a wrong guess costs a person nothing).
func (s *Server) starting(v serviceView) bool {
	if s.booting(v) {
		return true
	}
	return v.State == "running" && !v.StartedAt.IsZero() && s.now().Sub(v.StartedAt) < s.wakeTimeout()
}

// booting reports what sandbox-init knows of a port that does not answer: its service's
// process is up and the port not listening yet, or the service is being restarted.
func (s *Server) booting(v serviceView) bool {
	return v.State == "starting" || v.State == "backoff"
}

// cannotStart reports a service whose last start failed before its process ran (a
// missing command or cwd): it restarts in vain until something changes, so a program is
// not held for it. A navigation still gets the starting page, which reloads itself.
func cannotStart(v serviceView) bool {
	return v.State == "backoff" && v.Error != ""
}

// serviceView returns what the pages show of the service behind id's port: read through
// Services at most once per serviceTTL, cleaned and redacted, without the secrets.
func (s *Server) serviceView(id string, port int) serviceView {
	if s.Services == nil {
		return serviceView{}
	}
	return s.services.view(id, port, s.now(), func() serviceView {
		info, err := s.Services.ServiceStatus(id, port, logTailBytes)
		if err != nil {
			s.log.Debug("service status", "id", id, "port", port, "err", err)
			return serviceView{}
		}
		v := serviceView{ServiceInfo: info, lines: logTail(info.Tail, info.TailCut, info.Secrets)}
		v.Tail, v.Secrets = nil, nil
		return v
	})
}

// portClosed is the 502 of a port nothing listens on, naming the service that declares
// it, its state, and where its log is.
func (s *Server) portClosed(id string, port int) answer {
	a := portClosed(port)
	if s.Services == nil {
		return a
	}
	v := s.serviceView(id, port)
	switch {
	case v.Name == "":
		a.message += ": no service of sandbox " + id + " declares it"
		return a
	case v.Declared:
		a.message += ": service " + v.Name + " declares it"
	default:
		a.message += ": no service declares it; the image's command runs as service " + v.Name
	}
	if st := stateLine(v.ServiceInfo, s.now()); st != "" {
		a.message += " (" + st + ")"
	}
	a.message += "; its log is ~/" + v.Log + " in the sandbox"
	return a
}

func (s *Server) startingAfter() time.Duration { return orDefault(s.StartingAfter, time.Second) }
func (s *Server) wakeTimeout() time.Duration   { return orDefault(s.WakeTimeout, 60*time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
