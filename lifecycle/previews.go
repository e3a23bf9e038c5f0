package lifecycle

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/internal/previewtoken"
	"github.com/sandboxd/sandboxd/internal/timespan"
	"github.com/sandboxd/sandboxd/store"
)

// Preview access (issue 13): who may open a sandbox's preview ports, and the tokens that
// open private ones. A sandbox's key lives in its row and in its route; the edge verifies
// tokens with the route's copy, so minting and revoking change memory the moment they
// are stored.

// DefaultTokenTTL is how long a preview token lives when the request names no ttl.
const DefaultTokenTTL = time.Hour

// PreviewToken is a minted token and when it stops working.
type PreviewToken struct {
	Token   string
	Port    int
	Expires time.Time
}

// validPreviews checks p against a sandbox's declared ports and fills in the access it
// left out with def. A port listed must be declared: a typo would otherwise leave the
// port the caller meant at the sandbox's access.
func validPreviews(p *store.Previews, ports []int, def string) error {
	switch p.Access {
	case "":
		p.Access = def
	case store.AccessPublic, store.AccessPrivate:
	default:
		return errorf(CodeInvalid, `previews.access must be "public" or "private"; got %q`, p.Access)
	}
	for port, a := range p.Ports {
		if a != store.AccessPublic && a != store.AccessPrivate {
			return errorf(CodeInvalid, `previews.ports: port %d must be "public" or "private"; got %q`, port, a)
		}
		if !slices.Contains(ports, port) {
			return errorf(CodeInvalid, "previews.ports: port %d is not declared for this sandbox; its ports are %s", port, portList(ports))
		}
	}
	if len(p.Ports) == 0 {
		p.Ports = nil
	}
	return nil
}

func portList(ports []int) string {
	if len(ports) == 0 {
		return "none"
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// previewAccess is the access sb's ports follow: its own, or the operator's default.
func (m *Manager) previewAccess(sb store.Sandbox) string {
	if sb.Previews.Access != "" {
		return sb.Previews.Access
	}
	return m.cfg.PreviewAccess
}

// SetPreviews replaces who may open a sandbox's previews. An access left out is the
// operator's default. Making a port private takes effect at once and closes the
// WebSockets open to it.
func (m *Manager) SetPreviews(ctx context.Context, id string, p store.Previews) (store.Sandbox, error) {
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
	if err := validPreviews(&p, sb.Ports, m.cfg.PreviewAccess); err != nil {
		return store.Sandbox{}, err
	}
	if err := m.db.SetPreviews(ctx, id, p, m.now()); err != nil {
		return store.Sandbox{}, internal(err, "record previews of %s", id)
	}
	sb.Previews, sb.UpdatedAt = p, m.now()
	m.remember(sb)
	if err := m.writeConfigFromStore(ctx, sb); err != nil {
		m.log.Warn("previews recorded, config file not rewritten: --adopt would restore the old access", "sandbox", id, "err", err)
	}
	m.overlay(&sb) // the answer shows what Get shows (the disk, the access in force)
	return sb, nil
}

// MintPreviewToken returns a token for a declared port of a sandbox, valid for ttl (0:
// DefaultTokenTTL; at most previewtoken.MaxTTL). With embed, the cookie it turns into
// works inside another site's iframe (under HTTPS). A token can be minted for a public
// port too: it works once the port turns private.
func (m *Manager) MintPreviewToken(ctx context.Context, id string, port int, ttl time.Duration, embed bool) (PreviewToken, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Second || ttl > previewtoken.MaxTTL {
		return PreviewToken{}, errorf(CodeInvalid, "ttl must be between 1s and %s; got %s", timespan.Format(previewtoken.MaxTTL), timespan.Format(ttl))
	}
	if !ValidID(id) {
		return PreviewToken{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	sb, ok := m.cached(id)
	if !ok {
		return PreviewToken{}, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if !slices.Contains(sb.Ports, port) {
		return PreviewToken{}, errorf(CodeInvalid, "port %d is not declared for sandbox %s; its ports are %s", port, id, portList(sb.Ports))
	}
	key := sb.PreviewKey
	if len(key) == 0 { // a sandbox from before issue 13: its first token makes its key
		var err error
		if key, err = m.rotateKey(ctx, id, false); err != nil {
			return PreviewToken{}, err
		}
	}
	// Whole seconds, rounded up: a token never lives shorter than asked.
	exp := m.now().Add(ttl + time.Second - 1).Truncate(time.Second)
	tok := previewtoken.Sign(key, id, previewtoken.Claims{Port: port, Expires: exp, Embed: embed})
	return PreviewToken{Token: tok, Port: port, Expires: exp}, nil
}

// RevokePreviewTokens gives a sandbox a new key: every token minted before, and every
// cookie made from one, stops working as soon as this returns, and WebSockets opened with
// them close.
func (m *Manager) RevokePreviewTokens(ctx context.Context, id string) error {
	if !ValidID(id) {
		return errorf(CodeNotFound, "sandbox %q not found", id)
	}
	_, err := m.rotateKey(ctx, id, true)
	return err
}

// rotateKey stores a new key for id and publishes it. Unless always, a key made by a
// concurrent call is kept instead, so two first mints agree on one key.
func (m *Manager) rotateKey(ctx context.Context, id string, always bool) ([]byte, error) {
	ctx, unlock, err := m.lockDetached(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	sb, ok := m.cached(id)
	if !ok {
		return nil, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if !always && len(sb.PreviewKey) > 0 {
		return sb.PreviewKey, nil
	}
	key, err := previewtoken.NewKey()
	if err != nil {
		return nil, internal(err, "make a preview key for %s", id)
	}
	if err := m.db.SetPreviewKey(ctx, id, key, m.now()); err != nil {
		return nil, internal(err, "record the preview key of %s", id)
	}
	sb.PreviewKey, sb.UpdatedAt = key, m.now()
	m.remember(sb)
	return key, nil
}
