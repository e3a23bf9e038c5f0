package lifecycle

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/sandboxd/sandboxd/store"
)

// Tenants (issue 13). A tenant's sandbox ids live in a namespace of their own: they start
// with "<tenant>--", and only a tenant's ids hold "--". So a tenant asking for an id can
// only ever collide with its own sandboxes: the 409 it may get says nothing about anyone
// else, and an id freed by one tenant is never reused by another, whose sandbox would
// otherwise inherit the first one's workspace (DELETE keeps it) and task history.

// TenantSep separates a tenant from the rest of its sandboxes' ids.
const TenantSep = "--"

// maxTenantLen keeps "<tenant>--" plus 18 characters (16 random ones of a ULID: 80 bits)
// within the 40 of an id.
const maxTenantLen = 20

var tenantPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ValidTenant reports whether t is a well-formed tenant name: 1-20 lowercase letters and
// digits in groups joined by single dashes. No "--": a tenant name never holds the
// separator, so "a--b--c" belongs to tenant "a" and nobody else.
func ValidTenant(t string) bool { return len(t) <= maxTenantLen && tenantPattern.MatchString(t) }

// TenantIDPrefix is what the ids of tenant's sandboxes start with.
func TenantIDPrefix(tenant string) string { return tenant + TenantSep }

// checkTenantID refuses an id outside req.Tenant's namespace, and a tenant that is not one.
func checkTenantID(req *CreateRequest) error {
	if req.Tenant == "" {
		if strings.Contains(req.ID, TenantSep) {
			return errorf(CodeInvalid, `id %q holds "--", which only tenants' sandbox ids do (the part before it names the tenant): set tenant, or choose an id without "--"`, req.ID)
		}
		return nil
	}
	if !ValidTenant(req.Tenant) {
		return errorf(CodeInvalid, "tenant %q is invalid: use 1-%d lowercase letters and digits, in groups joined by single dashes", req.Tenant, maxTenantLen)
	}
	prefix := TenantIDPrefix(req.Tenant)
	if req.ID != "" && (!strings.HasPrefix(req.ID, prefix) || len(req.ID) == len(prefix)) {
		return errorf(CodeInvalid, "id %q is outside tenant %s: its sandbox ids start with %q, like %q; or leave id out and one is made",
			req.ID, req.Tenant, prefix, prefix+"app")
	}
	return nil
}

// newID makes a sandbox id: a lowercase ULID, after "<tenant>--" for a tenant's sandbox
// unless bare, cut from the front (the time part) to fit; at least its 16 random
// characters stay.
func newID(tenant string, bare bool) string {
	u := strings.ToLower(ulid.Make().String())
	if tenant == "" || bare {
		return u
	}
	prefix := TenantIDPrefix(tenant)
	if room := 40 - len(prefix); room < len(u) {
		u = u[len(u)-room:]
	}
	return prefix + u
}

// tenantStarts are the starts in flight per tenant, for the running limit: a sandbox
// counts from the moment its start is admitted, before the engine reports it running, so
// racing starts cannot all see room for one more.
type tenantStarts struct {
	mu       sync.Mutex
	byTenant map[string]map[string]bool // tenant → ids starting
}

// occupies reports whether a sandbox in status holds a running slot of its tenant: it
// runs, or is on its way up or down, or is paused (issue 14: its memory is held, and its
// unpause needs no admission).
func occupies(status string) bool {
	return status != store.StatusStopped && status != store.StatusError
}

// admitRunning reserves a running slot of tenant for a start of sandbox id, or refuses
// with CodeLimit when the tenant runs as many as SANDBOXD_TENANT_MAX_RUNNING allows.
// release frees the reservation once the start is over; by then the sandbox counts by its
// status. The operator's sandboxes (tenant "") are never limited.
func (m *Manager) admitRunning(id, tenant string) (release func(), err error) {
	limit := m.cfg.TenantMaxRunning
	if tenant == "" || limit <= 0 {
		return func() {}, nil
	}
	ts := &m.tenantStarts
	ts.mu.Lock()
	defer ts.mu.Unlock()
	starting := ts.byTenant[tenant]
	n := len(starting)
	m.mu.RLock()
	for lid, l := range m.sandboxes {
		if l.sb.Tenant == tenant && lid != id && !starting[lid] && occupies(l.sb.Status) {
			n++
		}
	}
	m.mu.RUnlock()
	if n >= limit {
		return nil, errorf(CodeLimit, "tenant %s already runs %d sandboxes, the most it may run at once: stop one first", tenant, n)
	}
	if starting == nil {
		if ts.byTenant == nil {
			ts.byTenant = map[string]map[string]bool{}
		}
		starting = map[string]bool{}
		ts.byTenant[tenant] = starting
	}
	starting[id] = true
	return func() {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		delete(starting, id)
		if len(starting) == 0 { // a map is dropped only empty, so starting is still the tenant's
			delete(ts.byTenant, tenant)
		}
	}, nil
}

// tenantLimitError turns the store's refusal into the API's.
func tenantLimitError(err error) error {
	var le *store.LimitError
	if errors.As(err, &le) {
		return &Error{Code: CodeLimit, Message: fmt.Sprintf("tenant %s has %d %s, the most it may have: delete one first", le.Tenant, le.Limit, le.What)}
	}
	return nil
}
