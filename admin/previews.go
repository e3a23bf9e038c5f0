package admin

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/internal/previewtoken"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Previews sets who may open a sandbox's previews and mints and revokes the tokens that
// open private ones (issue 13).
type Previews interface {
	SetPreviews(ctx context.Context, id string, p store.Previews) (store.Sandbox, error)
	MintPreviewToken(ctx context.Context, id string, port int, ttl time.Duration, embed bool) (lifecycle.PreviewToken, error)
	RevokePreviewTokens(ctx context.Context, id string) error
}

// previewsBody is "previews" in a create body and the body of PUT .../previews:
// {"access":"private","ports":{"3000":"public"}}.
type previewsBody struct {
	Access string            `json:"access"`
	Ports  map[string]string `json:"ports"`
}

// toStore parses the port keys, naming a bad one.
func (b *previewsBody) toStore() (store.Previews, error) {
	p := store.Previews{Access: b.Access}
	if len(b.Ports) > 0 {
		p.Ports = make(map[int]string, len(b.Ports))
	}
	for k, a := range b.Ports {
		port, err := strconv.Atoi(k)
		if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != k {
			return p, badRequest("previews.ports: %q is not a port number (1-65535)", k)
		}
		p.Ports[port] = a
	}
	return p, nil
}

// previewsView is a sandbox's previews as the API shows them: the access in force and
// the ports with their own.
type previewsView struct {
	Access string            `json:"access"`
	Ports  map[string]string `json:"ports"`
}

func viewPreviews(p store.Previews) previewsView {
	v := previewsView{Access: p.Access, Ports: map[string]string{}}
	for port, a := range p.Ports {
		v.Ports[strconv.Itoa(port)] = a
	}
	return v
}

// putPreviews replaces who may open the sandbox's previews; the answer is the sandbox.
func (s *Server) putPreviews(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b previewsBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	p, err := b.toStore()
	if err != nil {
		return err
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	sb, err := s.previews.SetPreviews(r.Context(), id, p)
	if err != nil {
		return err
	}
	s.record(r, "sandbox.previews", id, describePreviews(sb.Previews))
	writeJSON(w, http.StatusOK, s.view(sb))
	return nil
}

type mintBody struct {
	Port  int      `json:"port"`
	TTL   duration `json:"ttl"`
	Embed bool     `json:"embed"`
}

// mintPreviewToken answers {"token","url","expires_at"}: url is the preview link, which
// a browser trades for a cookie on that preview host.
func (s *Server) mintPreviewToken(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b mintBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if b.Port == 0 {
		return badRequest("port is required: the preview port the token opens, like {\"port\":3000}")
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	tok, err := s.previews.MintPreviewToken(r.Context(), id, b.Port, time.Duration(b.TTL), b.Embed)
	if err != nil {
		return err
	}
	url := ""
	if s.PreviewURL != nil {
		url = s.PreviewURL(id, tok.Port) + "/?" + previewtoken.Param + "=" + tok.Token
	}
	detail := fmt.Sprintf("port %d, expires %s", tok.Port, tok.Expires.UTC().Format(time.RFC3339))
	if b.Embed {
		detail += ", embed"
	}
	s.record(r, "preview_token.create", id, detail)
	writeJSON(w, http.StatusCreated, struct {
		Token     string    `json:"token"`
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}{tok.Token, url, tok.Expires.UTC()})
	return nil
}

// revokePreviewTokens ends every token of the sandbox, and every cookie made from one.
func (s *Server) revokePreviewTokens(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := decode(w, r, &struct{}{}, true); err != nil {
		return err
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	if err := s.previews.RevokePreviewTokens(r.Context(), id); err != nil {
		return err
	}
	s.record(r, "preview_token.revoke", id, "")
	writeJSON(w, http.StatusOK, map[string]any{"revoked": true, "id": id})
	return nil
}

func describePreviews(p store.Previews) string {
	out := "access " + p.Access
	ports := make([]int, 0, len(p.Ports))
	for port := range p.Ports {
		ports = append(ports, port)
	}
	sort.Ints(ports)
	for _, port := range ports {
		out += fmt.Sprintf(", %d %s", port, p.Ports[port])
	}
	return out
}
