package store

import (
	"context"
	"errors"
	"testing"
)

func TestAssignUID(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	assign := func(id string) int {
		t.Helper()
		uid, err := db.AssignUID(ctx, id, 200000, 200002)
		if err != nil {
			t.Fatalf("assign %s: %v", id, err)
		}
		return uid
	}
	if a, b := assign("a"), assign("b"); a != 200000 || b != 200001 {
		t.Fatalf("uids %d %d, want the lowest free ones", a, b)
	}
	if again := assign("a"); again != 200000 {
		t.Fatalf("a asked again: %d, want its own 200000", again)
	}
	// Delete keeps the uid (the workspace stays); the re-created row reads it.
	if err := db.CreateSandbox(ctx, sample("a"), nil); err != nil {
		t.Fatal(err)
	}
	if sb, _ := db.GetSandbox(ctx, "a"); sb.UID != 200000 {
		t.Fatalf("row uid %d", sb.UID)
	}
	db.DeleteSandbox(ctx, "a")
	db.CreateSandbox(ctx, sample("a"), nil)
	if sb, _ := db.GetSandbox(ctx, "a"); sb.UID != 200000 {
		t.Fatalf("uid after delete and re-create: %d, want 200000", sb.UID)
	}
	if c := assign("c"); c != 200002 {
		t.Fatalf("c: %d", c)
	}
	if _, err := db.AssignUID(ctx, "d", 200000, 200002); !errors.Is(err, ErrNoUID) {
		t.Fatalf("full range: %v, want ErrNoUID", err)
	}
	// Purge frees a uid; the gap is reused first.
	if err := db.ReleaseUID(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if d := assign("d"); d != 200001 {
		t.Fatalf("d after b was freed: %d, want 200001", d)
	}
	// A uid outside a new range is replaced on request.
	if e, err := db.ReassignUID(ctx, "a", 300000, 300009); err != nil || e != 300000 {
		t.Fatalf("reassign: %d, %v", e, err)
	}
}
