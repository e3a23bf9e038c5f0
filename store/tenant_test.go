package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// The sandbox limit of a tenant holds when creates race: the count and the insert share
// one transaction. Other tenants and the operator are not counted against it.
func TestTenantLimitUnderConcurrentCreates(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	lim := TenantLimits{MaxSandboxes: 3}
	if err := db.CreateSandboxLimited(ctx, tenantSample("other--a", "other"), nil, lim); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSandboxLimited(ctx, tenantSample("admin1", ""), nil, lim); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.CreateSandboxLimited(ctx, tenantSample(fmt.Sprintf("acme--s%d", i), "acme"), nil, lim)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		var le *LimitError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &le):
			if le.Tenant != "acme" || le.Limit != 3 || le.What != "sandboxes" {
				t.Fatalf("limit error = %+v", le)
			}
		default:
			t.Fatal(err)
		}
	}
	list, err := db.ListSandboxes(ctx, ListOptions{Tenant: "acme"})
	if ok != 3 || err != nil || len(list) != 3 {
		t.Fatalf("%d creates succeeded, %d rows (%v); want 3", ok, len(list), err)
	}
	for _, sb := range list {
		if sb.Tenant != "acme" {
			t.Fatalf("tenant filter returned %+v", sb)
		}
	}
	// Deleting one makes room for exactly one.
	if err := db.DeleteSandbox(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSandboxLimited(ctx, tenantSample("acme--again", "acme"), nil, lim); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSandboxLimited(ctx, tenantSample("acme--more", "acme"), nil, lim); !errors.As(err, new(*LimitError)) {
		t.Fatalf("fourth sandbox: %v", err)
	}
	all, _ := db.ListSandboxes(ctx, ListOptions{})
	if len(all) != 5 {
		t.Fatalf("%d rows in all, want 5", len(all))
	}
}

func tenantSample(id, tenant string) *Sandbox {
	sb := sample(id)
	sb.Tenant = tenant
	return sb
}

func TestAPITokens(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tok := APIToken{Name: "ci", Hash: []byte("h1"), Tenant: "acme", Kind: "api", Hint: "sbd_ab", CreatedAt: t0, CreatedBy: "ops"}
	if err := db.CreateAPIToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAPIToken(ctx, APIToken{Name: "ci", Hash: []byte("h2"), Kind: "api", CreatedAt: t0}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name: %v", err)
	}
	if err := db.CreateAPIToken(ctx, APIToken{Name: "e2b", Hash: []byte("h2"), Kind: "e2b", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := db.APITokenByHash(ctx, []byte("h1"))
	if err != nil || got.Name != "ci" || got.Tenant != "acme" || !got.CreatedAt.Equal(t0) || got.CreatedBy != "ops" {
		t.Fatalf("by hash = %+v, %v", got, err)
	}
	if _, err := db.APITokenByHash(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	list, _ := db.ListAPITokens(ctx)
	if len(list) != 2 || list[0].Name != "ci" || list[1].Kind != "e2b" {
		t.Fatalf("list = %+v", list)
	}
	if err := db.DeleteAPIToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAPIToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := db.APITokenByHash(ctx, []byte("h1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked token still found: %v", err)
	}
}

func TestAuditQueryAndCap(t *testing.T) {
	db, _ := openTest(t)
	db.AuditMaxRows = 300
	ctx := context.Background()
	for i := range 1000 {
		a := Audit{At: t0.Add(time.Duration(i) * time.Second), Actor: "ci", Action: "POST /v1/sandboxes/{id}/stop",
			Target: fmt.Sprintf("s%d", i%3), Tenant: []string{"", "acme"}[i%2], Status: 200, Result: "ok", RequestID: fmt.Sprint(i)}
		if err := db.AppendAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.ListAudit(ctx, AuditQuery{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	// Pruned at the 768th append to 300 rows, then 232 more.
	if len(all) < 300 || len(all) >= 300+auditPruneEvery || all[len(all)-1].RequestID != "999" {
		t.Fatalf("%d rows kept, the last %+v; want the newest 300 to 555", len(all), all[len(all)-1])
	}
	got, _ := db.ListAudit(ctx, AuditQuery{Target: "s1", Tenant: "acme", Since: t0.Add(990 * time.Second)})
	var ids []string
	for _, a := range got {
		ids = append(ids, a.RequestID)
	}
	if !slices.Equal(ids, []string{"991", "997"}) {
		t.Fatalf("filtered = %v", ids)
	}
	page, _ := db.ListAudit(ctx, AuditQuery{After: got[0].Seq, Limit: 2})
	if len(page) != 2 || page[0].RequestID != "992" || page[0].Status != 200 || page[0].Result != "ok" {
		t.Fatalf("page after 991 = %+v", page)
	}
}

// Migration names with a letter suffix sort after the plain number and get a version of
// their own.
func TestMigrationVersion(t *testing.T) {
	for _, c := range []struct {
		name string
		want int
		bad  bool
	}{
		{"0001_init.sql", 1, false}, {"0005_previews.sql", 5, false}, {"0005b_tenants.sql", 502, false},
		{"0003a_x.sql", 301, false}, {"0000a_x.sql", 0, true}, {"0005bc_x.sql", 0, true},
		{"x_y.sql", 0, true}, {"0005.sql", 0, true}, {"0100_x.sql", 0, true},
	} {
		v, err := migrationVersion(c.name)
		if (err != nil) != c.bad || v != c.want {
			t.Errorf("%s: %d, %v", c.name, v, err)
		}
	}
	names := []string{"0005b_t.sql", "0006_u.sql", "0005_p.sql"}
	slices.Sort(names)
	if !slices.Equal(names, []string{"0005_p.sql", "0005b_t.sql", "0006_u.sql"}) {
		t.Fatalf("sorted: %v", names)
	}
}
