package store

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestPreviews(t *testing.T) {
	t.Parallel()
	db, _ := openTest(t)
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	priv := sample("priv")
	priv.Previews = Previews{Access: AccessPrivate, Ports: map[int]string{5173: AccessPublic}}
	priv.PreviewKey = key
	if err := db.CreateSandbox(ctx, priv, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSandbox(ctx, sample("legacy"), nil); err != nil { // no previews row, as before issue 13
		t.Fatal(err)
	}

	list, err := db.ListSandboxes(ctx, ListOptions{})
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %d, %v", len(list), err)
	}
	byID := map[string]Sandbox{list[0].ID: list[0], list[1].ID: list[1]}
	if got := byID["priv"]; !reflect.DeepEqual(got.Previews, priv.Previews) || !bytes.Equal(got.PreviewKey, key) {
		t.Fatalf("priv read back as %+v key %x", got.Previews, got.PreviewKey)
	}
	if got := byID["legacy"]; got.Previews.Access != "" || got.Previews.Ports != nil || got.PreviewKey != nil {
		t.Fatalf("legacy read back as %+v key %x; want the zero Previews (the operator's default) and no key", got.Previews, got.PreviewKey)
	}

	t.Run("SetPreviews keeps the key", func(t *testing.T) {
		if err := db.SetPreviews(ctx, "priv", Previews{Access: AccessPublic}, t0); err != nil {
			t.Fatal(err)
		}
		got, _ := db.GetSandbox(ctx, "priv")
		if got.Previews.Access != AccessPublic || got.Previews.Ports != nil || !bytes.Equal(got.PreviewKey, key) {
			t.Fatalf("after SetPreviews: %+v key %x", got.Previews, got.PreviewKey)
		}
	})
	t.Run("SetPreviewKey keeps the access", func(t *testing.T) {
		newKey := bytes.Repeat([]byte{9}, 32)
		if err := db.SetPreviewKey(ctx, "priv", newKey, t0); err != nil {
			t.Fatal(err)
		}
		got, _ := db.GetSandbox(ctx, "priv")
		if got.Previews.Access != AccessPublic || !bytes.Equal(got.PreviewKey, newKey) {
			t.Fatalf("after SetPreviewKey: %+v key %x", got.Previews, got.PreviewKey)
		}
	})
	t.Run("a legacy sandbox's first key leaves it on the default", func(t *testing.T) {
		if err := db.SetPreviewKey(ctx, "legacy", key, t0); err != nil {
			t.Fatal(err)
		}
		got, _ := db.GetSandbox(ctx, "legacy")
		if got.Previews.Access != "" || !bytes.Equal(got.PreviewKey, key) {
			t.Fatalf("legacy after SetPreviewKey: %+v key %x", got.Previews, got.PreviewKey)
		}
	})
	t.Run("unknown sandbox", func(t *testing.T) {
		if err := db.SetPreviews(ctx, "nope", Previews{Access: AccessPrivate}, t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetPreviews: %v, want ErrNotFound", err)
		}
		if err := db.SetPreviewKey(ctx, "nope", key, t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetPreviewKey: %v, want ErrNotFound", err)
		}
	})
	t.Run("a bad access is refused by the schema", func(t *testing.T) {
		if err := db.SetPreviews(ctx, "priv", Previews{Access: "secret"}, t0); err == nil {
			t.Fatal("access \"secret\" was stored")
		}
	})
	t.Run("delete takes the key with it", func(t *testing.T) {
		if err := db.DeleteSandbox(ctx, "priv"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.r.QueryRow("SELECT count(*) FROM sandbox_previews WHERE sandbox_id = 'priv'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("previews rows left: %d, %v", n, err)
		}
	})
}
