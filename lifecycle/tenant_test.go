package lifecycle

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/store"
)

// A tenant's ids live in its namespace; only tenants' ids hold "--".
func TestTenantIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, tenant, id string
		ok               bool
	}{
		{"operator, plain id", "", "app", true},
		{"operator, tenant-shaped id", "", "acme--app", false},
		{"tenant, own namespace", "acme", "acme--app", true},
		{"tenant, bare id", "acme", "app", false},
		{"tenant, other namespace", "acme", "other--app", false},
		{"tenant, prefix of a longer tenant", "acme", "acmex--app", false},
		{"tenant, nothing after the prefix", "acme", "acme--", false},
		{"tenant, no id", "acme", "", true},
		{"bad tenant: double dash", "a--b", "a--b--x", false},
		{"bad tenant: upper case", "Acme", "", false},
		{"bad tenant: too long", strings.Repeat("a", 21), "", false},
	} {
		err := checkTenantID(&CreateRequest{ID: c.id, Tenant: c.tenant})
		if (err == nil) != c.ok || (err != nil && ErrorCode(err) != CodeInvalid) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	for _, tenant := range []string{"", "acme", strings.Repeat("t", 20)} {
		id := newID(tenant, false)
		if !ValidID(id) {
			t.Errorf("newID(%q) = %q, not a valid id", tenant, id)
		}
		if err := checkTenantID(&CreateRequest{ID: id, Tenant: tenant}); err != nil {
			t.Errorf("newID(%q) = %q: %v", tenant, id, err)
		}
		if rnd := strings.TrimPrefix(id, TenantIDPrefix(tenant)); tenant != "" && len(rnd) < 18 {
			t.Errorf("newID(%q) = %q keeps only %d characters of the ULID", tenant, id, len(rnd))
		}
	}
}

// Racing starts of one tenant never hold more running slots than its limit, and a
// refused start reserves nothing. Memory only: no engine.
func TestAdmitRunningUnderConcurrentStarts(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(t.TempDir())
	cfg.TenantMaxRunning = 3
	m := New(db, nil, cfg, nil)
	m.remember(store.Sandbox{ID: "acme--up", Tenant: "acme", Status: store.StatusRunning})
	m.remember(store.Sandbox{ID: "acme--asleep", Tenant: "acme", Status: store.StatusStopped})
	m.remember(store.Sandbox{ID: "acme--broken", Tenant: "acme", Status: store.StatusError})
	m.remember(store.Sandbox{ID: "other--1", Tenant: "other", Status: store.StatusRunning})
	for i := range 5 {
		m.remember(store.Sandbox{ID: fmt.Sprintf("op%d", i), Status: store.StatusRunning})
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []func()
	refused := 0
	for i := range 20 {
		wg.Go(func() {
			release, err := m.admitRunning(fmt.Sprintf("acme--new%d", i), "acme")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ErrorCode(err) != CodeLimit || !strings.Contains(err.Error(), "tenant acme already runs 3 sandboxes") {
					t.Errorf("refusal: %v", err)
				}
				refused++
				return
			}
			admitted = append(admitted, release)
		})
	}
	wg.Wait()
	if len(admitted) != 2 || refused != 18 {
		t.Fatalf("%d admitted, %d refused; want 2 beside the one running", len(admitted), refused)
	}
	// Waking the sleeping one is refused too; once a start ends, there is room again.
	if _, err := m.admitRunning("acme--asleep", "acme"); ErrorCode(err) != CodeLimit {
		t.Fatalf("wake over the limit: %v", err)
	}
	admitted[0]()
	release, err := m.admitRunning("acme--asleep", "acme")
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	release()
	admitted[1]()
	if n := len(m.tenantStarts.byTenant); n != 0 {
		t.Fatalf("reservations left: %v", m.tenantStarts.byTenant)
	}
	// Another tenant has its own count; the operator (five running) has no limit.
	for _, c := range []struct{ id, tenant string }{{"other--new", "other"}, {"op-new", ""}} {
		release, err := m.admitRunning(c.id, c.tenant)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		release()
	}
}

// On the real engine: racing creates of one tenant hold its limits, a refused create leaves
// nothing behind, and a start over the running limit leaves the sandbox as it was.
func TestTenantLimitsOnCreateAndStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.m.cfg.TenantMaxSandboxes, h.m.cfg.TenantMaxRunning = 3, 2
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = h.m.Create(ctx, CreateRequest{ID: fmt.Sprintf("acme--c%d", i), Tenant: "acme"})
		})
	}
	wg.Wait()
	var made []string
	for i, err := range errs {
		switch {
		case err == nil:
			made = append(made, fmt.Sprintf("acme--c%d", i))
		case ErrorCode(err) != CodeLimit:
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if len(made) != 2 {
		t.Fatalf("%d creates succeeded (%v), want 2: the running limit", len(made), errs)
	}
	byID, _ := h.m.listContainers(ctx, "")
	list, _ := h.m.List(ctx, store.ListOptions{Tenant: "acme"})
	if len(byID) != 2 || len(list) != 2 {
		t.Fatalf("refused creates left things: %d containers, %d rows", len(byID), len(list))
	}

	if err := h.m.Stop(ctx, made[0]); err != nil {
		t.Fatal(err)
	}
	h.create(t, CreateRequest{Tenant: "acme"}) // a generated id in the tenant's namespace
	if err := h.m.Stop(ctx, made[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Create(ctx, CreateRequest{Tenant: "acme"}); ErrorCode(err) != CodeLimit ||
		!strings.Contains(err.Error(), "tenant acme has 3 sandboxes") {
		t.Fatalf("a fourth sandbox: %v", err)
	}
	if _, err := h.m.Start(ctx, made[0]); err != nil {
		t.Fatalf("a second running: %v", err)
	}
	if _, err := h.m.Start(ctx, made[1]); ErrorCode(err) != CodeLimit {
		t.Fatalf("a third running: %v", err)
	}
	if sb, _ := h.m.Get(ctx, made[1]); sb.Status != store.StatusStopped || sb.Error != "" {
		t.Fatalf("after a refused start: %s %q, want stopped with no error", sb.Status, sb.Error)
	}
	// The operator's sandboxes are not the tenant's business.
	h.create(t, CreateRequest{ID: "op"})
}
