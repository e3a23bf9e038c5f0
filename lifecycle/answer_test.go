package lifecycle

import (
	"context"
	"reflect"
	"testing"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/store"
)

// A change answers the sandbox as Get shows it: PUT .../previews and PUT .../network
// answered a disk of zeros (quota 0, enforced "") where GET showed the 10 GiB quota.
func TestChangesAnswerTheSandboxAsGetShowsIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _, _ := previewManager(t, store.AccessPrivate, store.Sandbox{ID: "sb", Ports: []int{3000}})
	for name, change := range map[string]func() (store.Sandbox, error){
		"previews": func() (store.Sandbox, error) {
			return m.SetPreviews(ctx, "sb", store.Previews{Ports: map[int]string{3000: store.AccessPublic}})
		},
		"network": func() (store.Sandbox, error) {
			return m.SetNetwork(ctx, "sb", netpolicy.Open, []string{"pypi.org"})
		},
	} {
		answer, err := change()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := m.Get(ctx, "sb")
		if err != nil {
			t.Fatal(err)
		}
		if got.Disk.Quota == 0 {
			t.Fatalf("Get shows no disk quota: %+v", got.Disk)
		}
		if !reflect.DeepEqual(answer.Disk, got.Disk) || answer.Previews.Access != got.Previews.Access {
			t.Errorf("%s answers disk %+v, access %q; Get shows disk %+v, access %q",
				name, answer.Disk, answer.Previews.Access, got.Disk, got.Previews.Access)
		}
	}
}
