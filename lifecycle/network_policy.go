package lifecycle

import (
	"context"
	"errors"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/store"
)

// proxyURL is the URL of the egress proxy as sandboxes reach it.
func (m *Manager) proxyURL() string { return "http://" + m.EgressProxy.String() }

// noProxy are the hosts a sandbox reaches without the proxy: itself.
const noProxy = "localhost,127.0.0.1,::1"

// proxyEnv is the egress proxy's variables for a container, in upper and lower case, as
// tools read one or the other; a variable the sandbox's own env sets is left to it.
func (m *Manager) proxyEnv(own map[string]string) []string {
	if !m.EgressProxy.IsValid() {
		return nil
	}
	var out []string
	for k, v := range map[string]string{
		"HTTP_PROXY": m.proxyURL(), "HTTPS_PROXY": m.proxyURL(), "NO_PROXY": noProxy,
		"http_proxy": m.proxyURL(), "https_proxy": m.proxyURL(), "no_proxy": noProxy,
	} {
		if _, ok := own[k]; !ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// normalizeNetwork checks a create's policy and returns it in canonical form: egress ""
// takes the operator's default. field prefixes the names in errors ("network.").
func (m *Manager) normalizeNetwork(field, egress string, allow []string) (string, []string, error) {
	if egress == "" {
		egress = m.cfg.Egress
		if egress == "" {
			egress = netpolicy.Open
		}
	}
	if err := m.checkMode(field, egress); err != nil {
		return "", nil, err
	}
	list, err := normalizeAllow(field, allow)
	return egress, list, err
}

func (m *Manager) checkMode(field, egress string) error {
	switch {
	case !netpolicy.ValidMode(egress):
		return errorf(CodeInvalid, "%segress %q is not a mode: use %s", field, egress, netpolicy.ModeList())
	case egress != netpolicy.Open && m.cfg.InternalNetwork == "":
		return errorf(CodeInvalid, "%segress %q needs sandboxd's internal network, which this sandboxd runs without", field, egress)
	}
	return nil
}

func normalizeAllow(field string, allow []string) ([]string, error) {
	list, err := netpolicy.Normalize(field+"allow", allow)
	if err != nil {
		return nil, errorf(CodeInvalid, "%v", err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// SetNetwork changes a sandbox's egress policy while it runs, with no restart. egress ""
// keeps the mode and allow nil keeps the list (an empty one empties it); one of them must
// be given. The
// egress proxy applies it to the sandbox's next request (and closes its tunnels the new
// policy refuses), and a change to or from mode open connects or disconnects the
// sandbox's route out. The sandbox keeps its address, so its previews and their open
// connections go on; its own direct connections out die with the route when it leaves
// mode open. A stopped sandbox gets its networks at its next start. Bad input changes
// nothing.
func (m *Manager) SetNetwork(ctx context.Context, id, egress string, allow []string) (store.Sandbox, error) {
	if egress == "" && allow == nil {
		return store.Sandbox{}, errorf(CodeInvalid, "give egress (%s), allow, or both", netpolicy.ModeList())
	}
	if egress != "" {
		if err := m.checkMode("", egress); err != nil {
			return store.Sandbox{}, err
		}
	}
	keepAllow := allow == nil
	allow, err := normalizeAllow("", allow)
	if err != nil {
		return store.Sandbox{}, err
	}
	if !ValidID(id) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	ctx, unlock, err := m.lockDetached(ctx, id)
	if err != nil {
		return store.Sandbox{}, err
	}
	defer unlock()
	sb, ok := m.cached(id)
	if !ok {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if egress == "" {
		egress = egressOf(sb)
	}
	if keepAllow {
		allow = sb.EgressAllow
	}
	err = m.db.SetNetwork(ctx, id, egress, allow, m.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if err != nil {
		return store.Sandbox{}, internal(err, "record network policy of %s", id)
	}
	sb.Egress, sb.EgressAllow, sb.UpdatedAt = egress, allow, m.now()
	// The proxy's policy first: a sandbox leaving mode open is held to the new policy
	// before its route out goes.
	m.remember(sb)
	if err := m.writeConfigFromStore(ctx, sb); err != nil {
		m.log.Warn("network policy recorded, config file not rewritten: --adopt would restore the old one", "sandbox", id, "err", err)
	}
	if sb.Status == store.StatusRunning && sb.ContainerID != "" {
		// Recorded and enforced by the proxy even if this fails; the periodic reconcile
		// tries the networks again.
		err = m.alignContainer(ctx, sb.ContainerID, sb)
	}
	m.overlay(&sb) // the answer shows what Get shows (the disk, the access in force)
	return sb, err
}

// injectedProxyVar reports one of proxyEnv's variables, as made for the container whose
// labels are given: adoption must not take it for the user's env.
func injectedProxyVar(labels map[string]string, k, v string) bool {
	switch k {
	case "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy":
		return v != "" && v == labels[LabelEgressProxy]
	case "NO_PROXY", "no_proxy":
		return v == noProxy && labels[LabelEgressProxy] != ""
	}
	return false
}

// egressOfContainer is the mode of an adopted sandbox that has no saved config: open when
// its container has the route out, else none (its allowlist is lost, and a sandbox kept
// from the world must not be given a way out by a lost database).
func (m *Manager) egressOfContainer(have map[string]bool) string {
	if m.cfg.InternalNetwork == "" || have[m.cfg.Network] {
		return netpolicy.Open
	}
	return netpolicy.None
}
