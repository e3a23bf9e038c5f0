package e2b

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// List limits: E2B's default page, and the most one page may ask for.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// listV2 is GET /v2/sandboxes?metadata=&state=&limit=&nextToken=: sandboxes by id, in
// pages; X-Next-Token names the next page when there is one.
func (s *Server) listV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	// The Python SDK joins states with commas; the JS SDK repeats the parameter.
	states, err := parseStates(strings.Join(q["state"], ","))
	if err != nil {
		return err
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxListLimit {
			return errorf(http.StatusBadRequest, "limit must be 1 to %d", maxListLimit)
		}
	}
	after := q.Get("nextToken")
	if after != "" && !lifecycle.ValidID(after) {
		return errorf(http.StatusBadRequest, "nextToken %q is not one this API gave", after)
	}
	out, next, err := s.list(r, q.Get("metadata"), states, after, limit)
	if err != nil {
		return err
	}
	if next != "" {
		w.Header().Set("X-Next-Token", next)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listV1 is E2B's older GET /sandboxes?metadata=: the running sandboxes, in one answer.
func (s *Server) listV1(w http.ResponseWriter, r *http.Request) error {
	out, _, err := s.list(r, r.URL.Query().Get("metadata"), map[string]bool{stateRunning: true}, "", 10*maxListLimit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseStates reads E2B's state filter: a comma-separated list of running and paused; ""
// is both.
func parseStates(v string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, st := range strings.Split(v, ",") {
		switch st = strings.TrimSpace(st); st {
		case "":
		case stateRunning, statePaused:
			out[st] = true
		default:
			return nil, errorf(http.StatusBadRequest, "state %q is unknown: use running, paused or both", st)
		}
	}
	if len(out) == 0 {
		out[stateRunning], out[statePaused] = true, true
	}
	return out, nil
}

// parseMetadata reads E2B's metadata filter, "k=v&k2=v2" URL-encoded (the SDKs escape
// keys and values once more before encoding the pairs), into the labels to match.
func parseMetadata(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	pairs, err := url.ParseQuery(v)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "metadata must be key=value pairs joined by &: %v", err)
	}
	md := map[string]string{}
	for k, vs := range pairs {
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		val := vs[len(vs)-1]
		if uv, err := url.QueryUnescape(val); err == nil {
			val = uv
		}
		md[k] = val
	}
	return metadataLabels(md)
}

// list pages through the sandboxes the principal sees, after the id after, keeping those
// whose state is in states, until limit of them; next is the id to go on after, when more
// may follow. The store filters by tenant (what visible allows: a tenant's key its own
// sandboxes, the operator's every one) and labels; the E2B state, which folds several of
// ours, is filtered here.
func (s *Server) list(r *http.Request, metadata string, states map[string]bool, after string, limit int) ([]detailView, string, error) {
	labels, err := parseMetadata(metadata)
	if err != nil {
		return nil, "", err
	}
	out := []detailView{}
	o := store.ListOptions{Tenant: principal(r).Tenant, Labels: labels, After: after, Limit: limit + 1}
	for {
		page, err := s.sandboxes.List(r.Context(), o)
		if err != nil {
			return nil, "", err
		}
		for _, sb := range page {
			if !states[stateOf(sb)] {
				continue
			}
			if len(out) == limit {
				return out, out[limit-1].SandboxID, nil
			}
			out = append(out, s.detailView(sb, false))
		}
		if len(page) < o.Limit {
			return out, "", nil
		}
		o.After = page[len(page)-1].ID
	}
}
