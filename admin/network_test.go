package admin

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

type fakeNetworks struct {
	SetNetworkFn func(ctx context.Context, id, egress string, allow []string) (store.Sandbox, error)
}

func (f *fakeNetworks) SetNetwork(ctx context.Context, id, egress string, allow []string) (store.Sandbox, error) {
	return f.SetNetworkFn(ctx, id, egress, allow)
}

type fakeEgress struct {
	denied   []netpolicy.Denial
	operator []string
}

func (f fakeEgress) DeniedRecent(id string) []netpolicy.Denial { return f.denied }
func (f fakeEgress) Operator() []string                        { return f.operator }

// The create body's "network" reaches lifecycle as given; PUT .../network replaces the
// policy; the sandbox shows it with the operator's list and the recent denials.
func TestNetworkRoutes(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var created lifecycle.CreateRequest
	var set []string
	d := Deps{
		Sandboxes: &fakeSandboxes{
			CreateFn: func(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
				created = req
				return store.Sandbox{ID: "n1", Status: store.StatusRunning, Egress: req.Egress, EgressAllow: req.Allow}, nil
			},
			GetFn: func(ctx context.Context, id string) (store.Sandbox, error) {
				return store.Sandbox{ID: id, Status: store.StatusRunning}, nil // stored before issue 15
			},
		},
		Networks: &fakeNetworks{SetNetworkFn: func(ctx context.Context, id, egress string, allow []string) (store.Sandbox, error) {
			set = append([]string{id, egress}, allow...)
			return store.Sandbox{ID: id, Status: store.StatusRunning, Egress: egress, EgressAllow: allow}, nil
		}},
		Egress: fakeEgress{denied: []netpolicy.Denial{{At: at, Host: "example.com:443", Reason: netpolicy.ReasonNotListed}},
			operator: []string{"registry.npmjs.org"}},
	}
	code, body, _ := apiCall(t, d, "POST", "/v1/sandboxes", `{"network":{"egress":"proxy","allow":["pypi.org","*.github.com"]}}`)
	if code != 201 || created.Egress != "proxy" || !slices.Equal(created.Allow, []string{"pypi.org", "*.github.com"}) {
		t.Fatalf("create: %d %s; lifecycle got %q %q", code, body, created.Egress, created.Allow)
	}
	var v struct {
		Network networkView `json:"network"`
		ID      string      `json:"id"`
	}
	json.Unmarshal([]byte(body), &v)
	if v.Network.Egress != "proxy" || len(v.Network.DeniedRecent) != 1 || v.Network.DeniedRecent[0].Host != "example.com:443" ||
		!slices.Equal(v.Network.OperatorAllow, []string{"registry.npmjs.org"}) {
		t.Fatalf("create answer's network: %+v", v.Network)
	}
	if strings.Count(body, `"id"`) != 1 {
		t.Fatalf(`the answer has more than one "id" key: %s`, body)
	}

	code, body, _ = apiCall(t, d, "PUT", "/v1/sandboxes/n1/network", `{"egress":"none","allow":["a.example"]}`)
	if code != 200 || !slices.Equal(set, []string{"n1", "none", "a.example"}) || !strings.Contains(body, `"egress":"none"`) {
		t.Fatalf("PUT: %d %s; lifecycle got %q", code, body, set)
	}
	code, body, _ = apiCall(t, d, "GET", "/v1/sandboxes/n1/network", "")
	if code != 200 || !strings.Contains(body, `"egress":"open"`) || !strings.Contains(body, `"allow":[]`) ||
		!strings.Contains(body, `"denied_recent":[{"at":"2026-01-02T03:04:05Z","host":"example.com:443","reason":"not_listed"}]`) {
		t.Fatalf("GET: %d %s", code, body)
	}
	// An operator who allows nothing still shows the field, as the README lists it.
	d.Egress = fakeEgress{}
	if code, body, _ = apiCall(t, d, "GET", "/v1/sandboxes/n1/network", ""); code != 200 || !strings.Contains(body, `"operator_allow":[]`) {
		t.Fatalf("GET with no operator list: %d %s", code, body)
	}
	// A body the API cannot read is refused before lifecycle sees it.
	set = nil
	for _, bad := range []string{``, `{"egress":"proxy","allowed":[]}`, `{"egress":"proxy","allow":"pypi.org"}`} {
		code, _, e := apiCall(t, d, "PUT", "/v1/sandboxes/n1/network", bad)
		if code != 400 || set != nil {
			t.Fatalf("PUT %q: %d %+v; lifecycle got %q", bad, code, e, set)
		}
	}
}
