package e2b

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/store"
)

// listStore is a store's List over rows sorted by id, as the SQL filters them.
type listStore struct {
	Sandboxes
	rows  []store.Sandbox
	asked []store.ListOptions
}

func (f *listStore) List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error) {
	f.asked = append(f.asked, o)
	var out []store.Sandbox
	for _, sb := range f.rows {
		if (o.Tenant == "" || sb.Tenant == o.Tenant) && sb.ID > o.After && (o.Limit == 0 || len(out) < o.Limit) {
			out = append(out, sb)
		}
	}
	return out, nil
}

// The list asks the store for the principal's tenant, so a tenant's page is not read
// through every other tenant's sandboxes; the operator's key asks for every one. Paging
// by X-Next-Token is as before.
func TestListFiltersTenantInStore(t *testing.T) {
	f := &listStore{}
	for i, tenant := range []string{"acme", "beta", "beta", "acme", "", "acme", "beta"} {
		f.rows = append(f.rows, store.Sandbox{ID: string(rune('a'+i)) + "0", Tenant: tenant, Status: store.StatusRunning})
	}
	s := &Server{sandboxes: f}
	s.deadlines.init()
	for _, c := range []struct {
		tenant string
		pages  [][]string
	}{
		{"acme", [][]string{{"a0", "d0"}, {"f0"}}},
		{"beta", [][]string{{"b0", "c0"}, {"g0"}}},
		{"", [][]string{{"a0", "b0"}, {"c0", "d0"}, {"e0", "f0"}, {"g0"}}},
		{"gamma", [][]string{{}}},
	} {
		f.asked = nil
		r := httptest.NewRequest("GET", "/v2/sandboxes", nil)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, Principal{Tenant: c.tenant}))
		after := ""
		for i, want := range c.pages {
			out, next, err := s.list(r, "", map[string]bool{stateRunning: true}, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, v := range out {
				ids = append(ids, v.SandboxID)
			}
			if !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
				t.Errorf("tenant %q page %d: %v, want %v", c.tenant, i, ids, want)
			}
			if last := i == len(c.pages)-1; last != (next == "") {
				t.Errorf("tenant %q page %d: next %q", c.tenant, i, next)
			}
			after = next
		}
		for _, o := range f.asked {
			if o.Tenant != c.tenant {
				t.Errorf("tenant %q: the store was asked for tenant %q", c.tenant, o.Tenant)
			}
		}
	}
}
