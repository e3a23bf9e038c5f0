package admin

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Sandboxes is what the sandbox routes need from the lifecycle manager. Every route that
// names a sandbox also asks Get whether it exists before it wakes it or acts on it.
type Sandboxes interface {
	Create(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error)
	Get(ctx context.Context, id string) (store.Sandbox, error)
	List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error)
	Stop(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
	Purge(ctx context.Context, id string) error
	Keepalive(ctx context.Context, id string, until time.Time) (store.Sandbox, error)
	// Pause freezes a running sandbox (issue 14); the waker's wake unpauses it.
	Pause(ctx context.Context, id string) error
	// Images answers GET /v1/images (tasks.go).
	Images(ctx context.Context) ([]lifecycle.ImageInfo, error)
}

// pathID is the {id} of the route, refused unless it is a well-formed sandbox id. The
// router matched on the raw path, so "..%2F" arrives as it was sent and fails here.
func pathID(r *http.Request) (string, error) {
	id := mux.Vars(r)["id"]
	if !lifecycle.ValidID(id) {
		return "", badRequest("sandbox id %q is invalid: use 1-40 lowercase letters, digits and inner dashes", id)
	}
	return id, nil
}

type createBody struct {
	ID          string            `json:"id"`
	Image       string            `json:"image"`
	Ports       []int             `json:"ports"`
	Env         map[string]string `json:"env"`
	Labels      map[string]string `json:"labels"`
	Memory      size              `json:"memory"`
	CPUs        float64           `json:"cpus"`
	IdleTimeout duration          `json:"idle_timeout"`
	IdlePolicy  string            `json:"idle_policy"`
	HostHeader  string            `json:"host_header"`
	Services    []store.Service   `json:"services"`
	Network     *networkBody      `json:"network"` // issue 15

	// Issue 13: the tenant the sandbox belongs to. Only an admin token may name one; a
	// tenant token's sandboxes are its tenant's.
	Tenant string `json:"tenant"`
	// Issue 13: who may open its previews.
	Previews *previewsBody `json:"previews"`
	// Issue 12: the disk quota, "2G" or bytes.
	Disk size `json:"disk"`

	// Issue 14: tiered sleep and the wake policy.
	WakeOn    string   `json:"wake_on"`
	StopAfter duration `json:"stop_after"`

	// Accepted from the prior system's create body.
	MemoryHigh size   `json:"memory_high"`
	Visibility string `json:"visibility"`
	External   *struct {
		UserID      string `json:"user_id"`
		ProjectID   string `json:"project_id"`
		WorkspaceID string `json:"workspace_id"`
	} `json:"external"`
}

// maxCPUs is the most cpus a create may name before it is converted.
const maxCPUs = 1 << 20

func (s *Server) create(w http.ResponseWriter, r *http.Request) (err error) {
	var b createBody
	if err := decode(w, r, &b, true); err != nil {
		return err
	}
	previews, err := createPreviews(b)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"memory", float64(b.Memory)}, {"memory_high", float64(b.MemoryHigh)}, {"cpus", b.CPUs}, {"disk", float64(b.Disk)}} {
		if f.v < 0 {
			return badRequest("%s must be positive; got %v", f.name, f.v)
		}
	}
	// cpus becomes nanoseconds of CPU: a value past what int64 holds would wrap around
	// (issue 11). Far above any limit, so the lifecycle's range check names the bound.
	if b.CPUs > maxCPUs {
		return badRequest("cpus must be at most %d; got %v", maxCPUs, b.CPUs)
	}
	req := lifecycle.CreateRequest{
		ID: b.ID, Image: b.Image, Ports: b.Ports, Env: b.Env, Labels: b.Labels,
		MemoryBytes: int64(b.Memory), NanoCPUs: int64(b.CPUs * 1e9), IdleTimeout: time.Duration(b.IdleTimeout),
		IdlePolicy: b.IdlePolicy, HostHeader: b.HostHeader, Services: b.Services,
		DiskBytes: int64(b.Disk), // issue 12
		Previews:  previews,
		WakeOn:    b.WakeOn, StopAfter: time.Duration(b.StopAfter), // issue 14
	}
	if req.Tenant, err = createTenant(r, b.Tenant); err != nil {
		return err
	}
	if req.MemoryBytes == 0 {
		req.MemoryBytes = int64(b.MemoryHigh)
	}
	if b.Network != nil { // issue 15
		req.Egress, req.Allow = b.Network.Egress, b.Network.Allow
	}
	if b.External != nil {
		if req.Labels == nil {
			req.Labels = map[string]string{}
		}
		for k, v := range map[string]string{"user_id": b.External.UserID, "project_id": b.External.ProjectID, "workspace_id": b.External.WorkspaceID} {
			if v != "" {
				req.Labels[k] = v
			}
		}
	}
	s.record(r, "sandbox.create", req.ID, req.Image) // a refused create is audited with the id asked for
	sb, err := s.sandboxes.Create(r.Context(), req)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.create", sb.ID, sb.Image)
	writeJSON(w, http.StatusCreated, s.view(sb))
	return nil
}

// createPreviews reads "previews", or the prior system's "visibility" (public or private),
// which is its access.
func createPreviews(b createBody) (store.Previews, error) {
	var p store.Previews
	if b.Previews != nil {
		var err error
		if p, err = b.Previews.toStore(); err != nil {
			return p, err
		}
	}
	switch {
	case b.Visibility == "":
	case b.Visibility != store.AccessPublic && b.Visibility != store.AccessPrivate:
		return p, badRequest(`visibility must be "public" or "private"; got %q`, b.Visibility)
	case p.Access != "" && p.Access != b.Visibility:
		return p, badRequest("visibility %q and previews.access %q disagree: give one", b.Visibility, p.Access)
	default:
		p.Access = b.Visibility
	}
	return p, nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	sb, err := s.sandboxes.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}

// callerTenant is the tenant of the request's token; "" for an admin. Every route but the
// open ones has a principal by then (scope.go refuses the rest).
func callerTenant(r *http.Request) string {
	p, _ := principalOf(r)
	return p.Tenant
}

// createTenant is the tenant a create is for: the one the body names, which only an
// admin may choose, or the caller's.
func createTenant(r *http.Request, asked string) (string, error) {
	own := callerTenant(r)
	switch {
	case own == "":
		return asked, nil // lifecycle checks the name
	case asked != "" && asked != own:
		return "", badRequest("tenant %q is not yours: a tenant token creates sandboxes of its own tenant, %s", asked, own)
	}
	return own, nil
}

// sandboxStates are the states ?status= filters on.
var sandboxStates = []string{store.StatusCreating, store.StatusRunning, store.StatusPaused, store.StatusStopping, store.StatusStopped, store.StatusError}

// listOptions reads ?status=&label=k=v&limit=&cursor=&tenant=, and the prior system's
// ?external_user_id=&external_project_id=.
func listOptions(r *http.Request) (store.ListOptions, error) {
	q := r.URL.Query()
	o := store.ListOptions{Status: q.Get("status"), After: q.Get("cursor"), Labels: map[string]string{}, Limit: 100}
	// Issue 13: a tenant lists its own sandboxes; an admin every one, or a tenant's.
	o.Tenant = q.Get("tenant")
	if o.Tenant != "" && !lifecycle.ValidTenant(o.Tenant) {
		return o, badRequest("tenant %q is not a tenant name", o.Tenant)
	}
	if own := callerTenant(r); own != "" {
		if o.Tenant != "" && o.Tenant != own {
			return o, badRequest("tenant %q is not yours: a tenant token lists its own tenant's sandboxes", o.Tenant)
		}
		o.Tenant = own
	}
	if o.Status != "" && !slices.Contains(sandboxStates, o.Status) {
		return o, badRequest("status %q is not a sandbox state: use %s or %s", o.Status,
			strings.Join(sandboxStates[:len(sandboxStates)-1], ", "), sandboxStates[len(sandboxStates)-1])
	}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return o, badRequest("label filter %q must be key=value", l)
		}
		o.Labels[k] = v
	}
	if v := q.Get("external_user_id"); v != "" {
		o.Labels["user_id"] = v
	}
	if v := q.Get("external_project_id"); v != "" {
		o.Labels["project_id"] = v
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return o, badRequest("limit must be 1-1000")
		}
		o.Limit = n
	}
	return o, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	o.Limit++ // one more tells whether there is a next page
	list, err := s.sandboxes.List(r.Context(), o)
	if err != nil {
		return err
	}
	next := ""
	if len(list) == o.Limit {
		list = list[:o.Limit-1]
		next = list[len(list)-1].ID
	}
	views := make([]sandboxView, len(list))
	for i, sb := range list {
		views[i] = s.view(sb)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sandboxes": views, "next_cursor": next})
	return nil
}

// listLegacy is the prior system's GET /sandboxes: a bare array, every sandbox.
func (s *Server) listLegacy(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("limit") == "" {
		o.Limit = 0
	}
	list, err := s.sandboxes.List(r.Context(), o)
	if err != nil {
		return err
	}
	views := make([]sandboxView, len(list))
	for i, sb := range list {
		views[i] = s.view(sb)
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	started := s.now()
	if _, err := s.waker.Wake(r.Context(), id, 0); err != nil {
		return err
	}
	s.record(r, "sandbox.start", id, "")
	wakeMS := s.now().Sub(started).Milliseconds()
	sb, err := s.sandboxes.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		WakeMS int64 `json:"wake_duration_ms"`
		sandboxView
	}{wakeMS, s.view(sb)})
	return nil
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) error {
	return s.mutate(w, r, "sandbox.stop", s.sandboxes.Stop, true)
}

// pause freezes a running sandbox (issue 14): its processes keep their memory and sockets
// and use no CPU. Any wake resumes it: a preview navigation, exec, terminal, task,
// keepalive, start or resume. The answer is the sandbox, paused.
func (s *Server) pause(w http.ResponseWriter, r *http.Request) error {
	return s.mutate(w, r, "sandbox.pause", s.sandboxes.Pause, true)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) error {
	return s.mutate(w, r, "sandbox.delete", s.sandboxes.Delete, false)
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) error {
	return s.mutate(w, r, "sandbox.purge", s.sandboxes.Purge, false)
}

// mutate runs op on the path's sandbox; the answer is the sandbox afterwards (show) or
// {"id","deleted"|"purged":true}.
func (s *Server) mutate(w http.ResponseWriter, r *http.Request, action string, op func(context.Context, string) error, show bool) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := op(r.Context(), id); err != nil {
		return err
	}
	s.record(r, action, id, "")
	if show {
		sb, err := s.sandboxes.Get(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.view(sb))
		return nil
	}
	verb := strings.TrimPrefix(action, "sandbox.") + "d"
	writeJSON(w, http.StatusOK, map[string]any{verb: true, "id": id})
	return nil
}

type keepaliveBody struct {
	Until    *timestamp `json:"until"`
	Duration duration   `json:"duration"`
	Seconds  float64    `json:"seconds"`
}

// maxKeepalive caps how far ahead a keepalive may reach.
const maxKeepalive = 24 * time.Hour

// keepalive keeps the sandbox awake: it marks it active now and, with {"until"},
// {"duration"} or {"seconds"}, keeps it up until then (at most 24h ahead; a later one is
// cut to 24h). The body is optional. A stopped sandbox is woken first, through the same
// waker as exec: keeping a sandbox awake once answered 200 and left it asleep (issue 10).
// The answer is the sandbox, running, with the keepalive in force.
func (s *Server) keepalive(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b keepaliveBody
	if err := decode(w, r, &b, true); err != nil {
		return err
	}
	now := s.now()
	until, err := keepaliveUntil(b, now)
	if err != nil {
		return err
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	if _, err := s.waker.Wake(r.Context(), id, 0); err != nil {
		return err
	}
	sb, err := s.sandboxes.Keepalive(r.Context(), id, until)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}

// keepaliveUntil is the time a keepalive body asks for, capped at now+maxKeepalive; zero
// when it asks for none. Every field given must make sense, even one another overrides:
// a bad body changes nothing.
func keepaliveUntil(b keepaliveBody, now time.Time) (time.Time, error) {
	if b.Until != nil && !time.Time(*b.Until).After(now) {
		return time.Time{}, badRequest("until must be a time after now; got %s, which has passed",
			time.Time(*b.Until).UTC().Format(time.RFC3339))
	}
	if b.Duration < 0 {
		return time.Time{}, badRequest("duration must be positive, like \"1h\"; got %s", time.Duration(b.Duration))
	}
	// A float64 of seconds past what a Duration holds wraps around: {"seconds":1e300} once
	// answered 200 with a keepalive_until in 1970.
	if b.Seconds < 0 || b.Seconds >= math.MaxInt64/float64(time.Second) {
		return time.Time{}, badRequest("seconds must be a positive number of seconds, like 3600 (at most %d are kept); got %v",
			int(maxKeepalive/time.Second), b.Seconds)
	}
	var until time.Time
	switch {
	case b.Until != nil:
		until = time.Time(*b.Until)
	case b.Duration > 0:
		until = now.Add(time.Duration(b.Duration))
	case b.Seconds > 0:
		until = now.Add(time.Duration(b.Seconds * float64(time.Second)))
	}
	if until.After(now.Add(maxKeepalive)) {
		until = now.Add(maxKeepalive)
	}
	return until, nil
}
