package e2b

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// The control plane's handlers, shaped like E2B's OpenAPI document. Every one answers
// {"code":<status>,"message":...} on failure.

// defaultTimeout is E2B's timeout when a create names none (its OpenAPI default; the SDKs
// send 300).
const defaultTimeout = 15 * time.Second

func (s *Server) maxTimeout() time.Duration {
	if s.MaxTimeout <= 0 {
		return 24 * time.Hour
	}
	return s.MaxTimeout
}

// timeoutSeconds validates a timeout in seconds.
func (s *Server) timeoutSeconds(n *int, def time.Duration) (time.Duration, error) {
	if n == nil {
		return def, nil
	}
	// The seconds are checked before they become a Duration: a huge count overflows the
	// multiplication into a small or negative timeout that would pass a check made after.
	most := int64(s.maxTimeout() / time.Second)
	if *n < 1 || int64(*n) > most {
		return 0, errorf(http.StatusBadRequest, "timeout must be 1 to %d seconds", most)
	}
	return time.Duration(*n) * time.Second, nil
}

// newSandbox is E2B's NewSandbox. Fields sandboxd cannot honor are refused when they ask
// for something, rather than ignored.
type newSandbox struct {
	TemplateID          string            `json:"templateID"`
	Timeout             *int              `json:"timeout"`
	AutoPause           bool              `json:"autoPause"`
	Metadata            map[string]string `json:"metadata"`
	EnvVars             map[string]string `json:"envVars"`
	Secure              *bool             `json:"secure"`
	AllowInternetAccess *bool             `json:"allow_internet_access"`
	Network             json.RawMessage   `json:"network"`
	VolumeMounts        json.RawMessage   `json:"volumeMounts"`
	MCP                 json.RawMessage   `json:"mcp"`
}

func given(raw json.RawMessage) bool {
	v := strings.TrimSpace(string(raw))
	return v != "" && v != "null" && v != "{}" && v != "[]"
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	var b newSandbox
	if err := decode(w, r, &b); err != nil {
		return err
	}
	switch {
	case b.TemplateID == "":
		return errorf(http.StatusBadRequest, "templateID is required (\"base\" is the default image)")
	case len(b.TemplateID) > 255:
		return errorf(http.StatusBadRequest, "templateID is too long")
	case given(b.Network):
		return errorf(http.StatusBadRequest, "network rules are not supported by sandboxd")
	case given(b.VolumeMounts):
		return errorf(http.StatusBadRequest, "volumeMounts are not supported by sandboxd")
	case given(b.MCP):
		return errorf(http.StatusBadRequest, "mcp is not supported by sandboxd")
	}
	timeout, err := s.timeoutSeconds(b.Timeout, defaultTimeout)
	if err != nil {
		return err
	}
	labels, err := metadataLabels(b.Metadata)
	if err != nil {
		return err
	}
	onTimeout := "kill"
	if b.AutoPause {
		onTimeout = "pause"
	}
	labels[labelManaged] = "1"
	labels[labelTemplate] = b.TemplateID
	labels[labelTimeout] = strconv.Itoa(int(timeout / time.Second))
	labels[labelOnTimeout] = onTimeout
	image := b.TemplateID
	if image == "base" {
		image = "" // the operator's default
	}
	// Letters and digits only: E2B's SDKs and hosts split on "-", so the id is a bare ULID
	// (unique, and such) even for a tenant's sandbox; the row records whose it is.
	// Previews are public whatever the operator's default: E2B's SDKs hand out get_host(port)
	// URLs with no credential (E2B's own allowPublicTraffic defaults to true).
	req := lifecycle.CreateRequest{BareID: true, Tenant: principal(r).Tenant, Image: image,
		Ports: s.ports(), Env: b.EnvVars, Labels: labels, Previews: store.Previews{Access: store.AccessPublic}}
	if b.AllowInternetAccess != nil && !*b.AllowInternetAccess {
		req.Egress = "none" // issue 15: no route out; previews, commands and files still work
	}
	sb, err := s.sandboxes.Create(r.Context(), req)
	if err != nil {
		return err
	}
	if err := s.setEnd(r.Context(), sb.ID, s.now().Add(timeout)); err != nil {
		if perr := s.sandboxes.Purge(context.WithoutCancel(r.Context()), sb.ID); perr != nil {
			s.log.Error("e2b: undo a create whose timeout failed", "sandbox", sb.ID, "err", perr)
		}
		return err
	}
	s.recordRequest(r, "sandbox.create", sb.ID, b.TemplateID)
	writeJSON(w, http.StatusCreated, s.sandboxView(sb))
	return nil
}

// sandbox finds the sandbox of the path for the request's principal: not found when it
// does not exist or belongs to another tenant.
func (s *Server) sandbox(r *http.Request) (store.Sandbox, error) {
	id := r.PathValue("id")
	if !lifecycle.ValidID(id) {
		return store.Sandbox{}, errorf(http.StatusNotFound, "sandbox %q not found", id)
	}
	sb, err := s.sandboxes.Get(r.Context(), id)
	if err != nil {
		return sb, err
	}
	if !visible(principal(r), sb) {
		return store.Sandbox{}, errorf(http.StatusNotFound, "sandbox %s not found", id)
	}
	return sb, nil
}

// visible reports whether p may see sb: an admin token sees every sandbox, a tenant's
// only its tenant's.
func visible(p Principal, sb store.Sandbox) bool { return p.Tenant == "" || p.Tenant == sb.Tenant }

type timeoutBody struct {
	Timeout *int `json:"timeout"`
}

// connect makes sure a sandbox runs and answers how to reach it: 200 when it ran, 201
// when it was resumed. A running sandbox's end only moves later; a resumed one ends
// timeout from now.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) error {
	var b timeoutBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if b.Timeout == nil {
		return errorf(http.StatusBadRequest, "timeout is required")
	}
	timeout, err := s.timeoutSeconds(b.Timeout, 0)
	if err != nil {
		return err
	}
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	end := s.now().Add(timeout)
	status := http.StatusOK
	if !s.running(sb.ID) {
		resumed, err := s.pauser.Resume(r.Context(), sb.ID)
		if err != nil {
			return err
		}
		if resumed {
			status = http.StatusCreated
			s.recordRequest(r, "sandbox.resume", sb.ID, "")
		}
	} else if cur := s.endOf(sb); cur.After(end) {
		end = cur
	}
	if err := s.setEnd(r.Context(), sb.ID, end); err != nil {
		return err
	}
	writeJSON(w, status, s.sandboxView(sb))
	return nil
}

// resume is E2B's older POST /sandboxes/{id}/resume: 409 when it runs.
func (s *Server) resume(w http.ResponseWriter, r *http.Request) error {
	var b timeoutBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	timeout, err := s.timeoutSeconds(b.Timeout, defaultTimeout)
	if err != nil {
		return err
	}
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	if s.running(sb.ID) {
		return errorf(http.StatusConflict, "sandbox %s is already running", sb.ID)
	}
	if _, err := s.pauser.Resume(r.Context(), sb.ID); err != nil {
		return err
	}
	if err := s.setEnd(r.Context(), sb.ID, s.now().Add(timeout)); err != nil {
		return err
	}
	s.recordRequest(r, "sandbox.resume", sb.ID, "")
	writeJSON(w, http.StatusCreated, s.sandboxView(sb))
	return nil
}

// kill removes a sandbox with its workspace: 204, or 404 when there is none.
func (s *Server) kill(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	if err := s.sandboxes.Purge(r.Context(), sb.ID); err != nil {
		return err
	}
	s.forgetEnd(sb.ID)
	s.recordRequest(r, "sandbox.purge", sb.ID, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setTimeout makes a sandbox end timeout from now, sooner or later than before.
func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) error {
	var b timeoutBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if b.Timeout == nil {
		return errorf(http.StatusBadRequest, "timeout is required")
	}
	timeout, err := s.timeoutSeconds(b.Timeout, 0)
	if err != nil {
		return err
	}
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	if err := s.setEnd(r.Context(), sb.ID, s.now().Add(timeout)); err != nil {
		return err
	}
	s.recordRequest(r, "sandbox.timeout", sb.ID, strconv.Itoa(*b.Timeout))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.detailView(sb, true))
	return nil
}

// pause pauses a running sandbox: 204, or 409 when it is paused already.
func (s *Server) pause(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	if !s.running(sb.ID) {
		return errorf(http.StatusConflict, "sandbox %s is already paused", sb.ID)
	}
	if err := s.pauser.Pause(r.Context(), sb.ID); err != nil {
		return err
	}
	s.recordRequest(r, "sandbox.pause", sb.ID, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// metrics answers the sandbox's metrics: one sample taken now while it runs (sandboxd
// keeps no history), none while it is paused. Disk use is not measured and reads 0.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.sandbox(r)
	if err != nil {
		return err
	}
	out := []metricView{}
	if s.running(sb.ID) {
		st, err := s.sandboxes.Stats(r.Context(), sb.ID)
		if err == nil {
			out = append(out, metricView{Timestamp: st.At.UTC(), TimestampUnix: st.At.Unix(),
				CPUCount: max(1, int(st.CPUs+0.999)), CPUUsedPct: st.CPUPercent,
				MemUsed: st.MemUsed, MemTotal: st.MemLimit, MemCache: st.MemCache})
		} else if lifecycle.ErrorCode(err) != lifecycle.CodeConflict {
			return err // it stopped in between: no sample
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) recordRequest(r *http.Request, action, target, detail string) {
	s.record(context.WithoutCancel(r.Context()), principal(r), action, target, detail)
}

// record appends to the audit log; a failure is logged, never fails the request. The row
// carries the principal's tenant, so GET /v1/audit?tenant= finds what a tenant did here.
func (s *Server) record(ctx context.Context, p Principal, action, target, detail string) {
	if s.Audit == nil {
		return
	}
	if p.Actor == "" {
		p.Actor = "operator"
	}
	err := s.Audit.AppendAudit(ctx, store.Audit{At: s.now(), Actor: p.Actor, Tenant: p.Tenant, Action: "e2b." + action, Target: target, Detail: detail})
	if err != nil {
		s.log.Error("audit", "action", action, "target", target, "err", err)
	}
}
