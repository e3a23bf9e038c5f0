package lifecycle

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/previewtoken"
	"github.com/sandboxd/sandboxd/store"
)

// routeLog is a RouteSink that keeps the last route of each sandbox.
type routeLog struct {
	mu   sync.Mutex
	last map[string]Route
}

func (r *routeLog) SetRoute(rt Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]Route{}
	}
	r.last[rt.ID] = rt
}
func (r *routeLog) DeleteRoute(id string) {}
func (r *routeLog) get(id string) Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[id]
}

// previewManager is a Manager over a real SQLite file and no engine, with sandboxes put
// straight into the store: the preview methods make no Docker call.
func previewManager(t *testing.T, def string, rows ...store.Sandbox) (*Manager, *routeLog, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(t.TempDir())
	cfg.PreviewAccess = def
	m := New(db, nil, cfg, nil)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.Now = func() time.Time { return now }
	routes := &routeLog{}
	m.Routes = routes
	for _, sb := range rows {
		sb.Status, sb.Image, sb.IdlePolicy = store.StatusStopped, "img", store.IdleSleep
		sb.CreatedAt, sb.UpdatedAt, sb.LastActiveAt = now, now, now
		if err := db.CreateSandbox(context.Background(), &sb, nil); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetSandbox(context.Background(), sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		m.remember(got)
	}
	return m, routes, db
}

func TestValidPreviews(t *testing.T) {
	t.Parallel()
	ports := []int{3000, 8080}
	for _, c := range []struct {
		name string
		in   store.Previews
		want string // access after, or the error's words
		ok   bool
	}{
		{"default filled in", store.Previews{}, store.AccessPrivate, true},
		{"public kept", store.Previews{Access: store.AccessPublic}, store.AccessPublic, true},
		{"port override", store.Previews{Ports: map[int]string{3000: store.AccessPublic}}, store.AccessPrivate, true},
		{"bad access", store.Previews{Access: "secret"}, `previews.access must be "public" or "private"; got "secret"`, false},
		{"bad port access", store.Previews{Ports: map[int]string{3000: "open"}}, `port 3000 must be "public" or "private"`, false},
		{"undeclared port", store.Previews{Ports: map[int]string{3001: store.AccessPublic}}, "port 3001 is not declared for this sandbox; its ports are 3000, 8080", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.in
			err := validPreviews(&p, ports, store.AccessPrivate)
			if c.ok {
				if err != nil || p.Access != c.want {
					t.Fatalf("got %+v, %v; want access %s", p, err, c.want)
				}
				return
			}
			if err == nil || ErrorCode(err) != CodeInvalid || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestPreviewTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := bytes.Repeat([]byte{1}, previewtoken.KeySize)
	m, routes, db := previewManager(t, store.AccessPrivate,
		store.Sandbox{ID: "sb", Ports: []int{3000}, Previews: store.Previews{Access: store.AccessPrivate}, PreviewKey: key},
		store.Sandbox{ID: "legacy", Ports: []int{3000}}, // from before issue 13: no access, no key
	)
	now := m.now()

	t.Run("the route carries the access and the key", func(t *testing.T) {
		if r := routes.get("sb"); r.Previews.Access != store.AccessPrivate || !bytes.Equal(r.PreviewKey, key) {
			t.Fatalf("route %+v", r)
		}
		if r := routes.get("legacy"); r.Previews.Access != store.AccessPrivate || r.PreviewKey != nil {
			t.Fatalf("legacy route %+v: want the operator's default and no key", r)
		}
		row, _ := db.GetSandbox(ctx, "legacy")
		if row.Previews.Access != "" {
			t.Fatalf("the legacy row was given access %q; it must keep following the default", row.Previews.Access)
		}
		if got, _ := m.Get(ctx, "legacy"); got.Previews.Access != store.AccessPrivate {
			t.Fatalf("Get shows access %q, want the default in force", got.Previews.Access)
		}
	})
	t.Run("mint", func(t *testing.T) {
		tok, err := m.MintPreviewToken(ctx, "sb", 3000, 90*time.Minute+time.Millisecond, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(90*time.Minute + time.Second); !tok.Expires.Equal(want) {
			t.Fatalf("expires %v, want %v (rounded up to the second)", tok.Expires, want)
		}
		c, err := previewtoken.Verify(routes.get("sb").PreviewKey, "sb", 3000, tok.Token, now)
		if err != nil || !c.Embed || !c.Expires.Equal(tok.Expires) {
			t.Fatalf("the route's key verifies %+v, %v", c, err)
		}
		def, _ := m.MintPreviewToken(ctx, "sb", 3000, 0, false)
		if !def.Expires.Equal(now.Add(DefaultTokenTTL)) {
			t.Fatalf("default ttl: expires %v", def.Expires)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, c := range []struct {
			id   string
			port int
			ttl  time.Duration
			code Code
			text string
		}{
			{"sb", 3001, time.Hour, CodeInvalid, "port 3001 is not declared for sandbox sb; its ports are 3000"},
			{"sb", 3000, 8 * 24 * time.Hour, CodeInvalid, "ttl must be between 1s and 7d; got 8d"},
			{"sb", 3000, 8*24*time.Hour + 12*time.Hour + 90*time.Second, CodeInvalid, "ttl must be between 1s and 7d; got 8d12h1m30s"},
			{"sb", 3000, -time.Hour, CodeInvalid, "ttl must be"},
			{"sb", 3000, time.Millisecond, CodeInvalid, "ttl must be"},
			{"nope", 3000, time.Hour, CodeNotFound, "not found"},
			{"../x", 3000, time.Hour, CodeNotFound, "not found"},
		} {
			_, err := m.MintPreviewToken(ctx, c.id, c.port, c.ttl, false)
			if ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.text) {
				t.Errorf("mint %s:%d ttl %s: %v, want %s saying %q", c.id, c.port, c.ttl, err, c.code, c.text)
			}
		}
	})
	t.Run("revoke", func(t *testing.T) {
		tok, _ := m.MintPreviewToken(ctx, "sb", 3000, time.Hour, false)
		if err := m.RevokePreviewTokens(ctx, "sb"); err != nil {
			t.Fatal(err)
		}
		r := routes.get("sb")
		if bytes.Equal(r.PreviewKey, key) || len(r.PreviewKey) != previewtoken.KeySize {
			t.Fatalf("the route kept its key")
		}
		if _, err := previewtoken.Verify(r.PreviewKey, "sb", 3000, tok.Token, now); err == nil {
			t.Fatal("a token minted before the revoke still verifies")
		}
		row, _ := db.GetSandbox(ctx, "sb")
		if !bytes.Equal(row.PreviewKey, r.PreviewKey) {
			t.Fatal("the new key is not stored")
		}
		if err := m.RevokePreviewTokens(ctx, "nope"); ErrorCode(err) != CodeNotFound {
			t.Fatalf("revoke unknown: %v", err)
		}
	})
	t.Run("a legacy sandbox's first mints make one key", func(t *testing.T) {
		toks := make([]PreviewToken, 4)
		var wg sync.WaitGroup
		for i := range toks {
			wg.Go(func() {
				var err error
				if toks[i], err = m.MintPreviewToken(ctx, "legacy", 3000, time.Hour, false); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		r := routes.get("legacy")
		for _, tok := range toks {
			if _, err := previewtoken.Verify(r.PreviewKey, "legacy", 3000, tok.Token, now); err != nil {
				t.Fatalf("a first token does not verify with the route's key: %v", err)
			}
		}
		row, _ := db.GetSandbox(ctx, "legacy")
		if !bytes.Equal(row.PreviewKey, r.PreviewKey) || row.Previews.Access != "" {
			t.Fatalf("legacy row after the first mint: access %q, key stored %v", row.Previews.Access, bytes.Equal(row.PreviewKey, r.PreviewKey))
		}
	})
	t.Run("SetPreviews", func(t *testing.T) {
		sb, err := m.SetPreviews(ctx, "sb", store.Previews{Access: store.AccessPublic, Ports: map[int]string{3000: store.AccessPrivate}})
		if err != nil || sb.Previews.Access != store.AccessPublic {
			t.Fatalf("%+v, %v", sb.Previews, err)
		}
		if r := routes.get("sb"); r.Previews.Access != store.AccessPublic || r.Previews.Ports[3000] != store.AccessPrivate || len(r.PreviewKey) == 0 {
			t.Fatalf("route %+v", r)
		}
		before, _ := db.GetSandbox(ctx, "sb")
		if _, err := m.SetPreviews(ctx, "sb", store.Previews{Ports: map[int]string{9999: store.AccessPublic}}); ErrorCode(err) != CodeInvalid {
			t.Fatalf("an undeclared port: %v", err)
		}
		after, _ := db.GetSandbox(ctx, "sb")
		if after.Previews.Access != before.Previews.Access || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatal("a refused SetPreviews changed the sandbox")
		}
		if sb, _ := m.SetPreviews(ctx, "sb", store.Previews{}); sb.Previews.Access != store.AccessPrivate {
			t.Fatalf("an access left out is %q, want the default", sb.Previews.Access)
		}
	})
}
