package admin

import (
	"context"
	"net/http"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/store"
)

// Issue 15: a sandbox's network policy: its egress mode and allowlist, changed while it
// runs, and what the egress proxy refused it lately.

// Networks changes a sandbox's egress policy.
type Networks interface {
	SetNetwork(ctx context.Context, id, egress string, allow []string) (store.Sandbox, error)
}

// EgressStatus is what the egress proxy knows of a sandbox, from memory.
type EgressStatus interface {
	DeniedRecent(id string) []netpolicy.Denial
	Operator() []string // the operator's allowlist, added to every sandbox's
}

// networkBody is the policy in a create body ("network") and in PUT .../network.
type networkBody struct {
	Egress string   `json:"egress"`
	Allow  []string `json:"allow"`
}

// networkView is a sandbox's policy as the API shows it.
type networkView struct {
	Egress        string             `json:"egress"`
	Allow         []string           `json:"allow"`
	OperatorAllow []string           `json:"operator_allow"`
	DeniedRecent  []netpolicy.Denial `json:"denied_recent"`
}

func (s *Server) networkView(sb store.Sandbox) networkView {
	v := networkView{Egress: sb.Egress, Allow: sb.EgressAllow, DeniedRecent: []netpolicy.Denial{}}
	if v.Egress == "" {
		v.Egress = netpolicy.Open // stored before the policy existed
	}
	if v.Allow == nil {
		v.Allow = []string{}
	}
	v.OperatorAllow = []string{}
	if s.egress != nil {
		if op := s.egress.Operator(); op != nil {
			v.OperatorAllow = op
		}
		if d := s.egress.DeniedRecent(sb.ID); len(d) > 0 {
			v.DeniedRecent = d
		}
	}
	return v
}

// getNetwork shows the policy and the recent denials.
func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	sb, err := s.sandboxes.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.networkView(sb))
	return nil
}

// putNetwork replaces the policy, in force for the sandbox's next request; the answer is
// the sandbox.
func (s *Server) putNetwork(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b networkBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	sb, err := s.networks.SetNetwork(r.Context(), id, b.Egress, b.Allow)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.network", id, sb.Egress)
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}
