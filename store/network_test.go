package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// A policy given at create reads back as given; SetNetwork replaces it; a sandbox
// stored without one reads as "" (lifecycle's open).
func TestNetworkPolicy(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	sb := sample("withpolicy")
	sb.Egress, sb.EgressAllow = "proxy", []string{"registry.npmjs.org", "*.github.com", "10.1.2.0/24"}
	if err := db.CreateSandbox(ctx, sb, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSandbox(ctx, sample("bare"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "withpolicy")
	if err != nil || got.Egress != "proxy" || !reflect.DeepEqual(got.EgressAllow, sb.EgressAllow) {
		t.Fatalf("read back %q %q, %v", got.Egress, got.EgressAllow, err)
	}
	if err := db.SetNetwork(ctx, "withpolicy", "none", nil, t0.Add(1e9)); err != nil {
		t.Fatal(err)
	}
	if err := db.SetNetwork(ctx, "bare", "open", []string{"pypi.org"}, t0.Add(1e9)); err != nil {
		t.Fatal(err)
	}
	list, err := db.ListSandboxes(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if list[0].ID != "bare" || list[0].Egress != "open" || !reflect.DeepEqual(list[0].EgressAllow, []string{"pypi.org"}) ||
		list[1].Egress != "none" || list[1].EgressAllow != nil || !list[1].UpdatedAt.Equal(t0.Add(1e9)) {
		t.Fatalf("after SetNetwork: %+v", list)
	}
	if err := db.SetNetwork(ctx, "gone", "none", nil, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetNetwork of a missing sandbox: %v", err)
	}
	if err := db.DeleteSandbox(ctx, "bare"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM sandbox_network WHERE sandbox_id = 'bare'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the policy outlived its sandbox: %d, %v", n, err)
	}
}

// Migration 0007 makes the sandboxes that existed before it open, as they were.
func TestNetworkMigrationKeepsOldSandboxesOpen(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	if err := db.CreateSandbox(ctx, sample("old"), nil); err != nil {
		t.Fatal(err)
	}
	// Undo 0007, as a database from before it looked.
	if _, err := db.w.ExecContext(ctx, "DROP TABLE sandbox_network; DELETE FROM schema_migrations WHERE version = 7"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err := db2.GetSandbox(ctx, "old")
	if err != nil || got.Egress != "open" {
		t.Fatalf("an old sandbox after the migration: %q, %v", got.Egress, err)
	}
}
