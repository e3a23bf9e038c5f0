package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Stored API tokens (issue 13): an admin creates them with POST /v1/tokens, lists them
// with GET and revokes one with DELETE /v1/tokens/{name}. The secret is answered once, at
// creation; only its SHA-256 is kept (apikey.Hash says why no bcrypt). A revoked token
// fails its next request: every request looks its hash up. The operator's
// SANDBOXD_API_TOKENS are listed beside them and change only in the environment.

// TokenStore keeps the stored tokens.
type TokenStore interface {
	CreateAPIToken(ctx context.Context, t store.APIToken) error
	ListAPITokens(ctx context.Context) ([]store.APIToken, error)
	DeleteAPIToken(ctx context.Context, name string) error
}

type tokenBody struct {
	Name   string `json:"name"`
	Tenant string `json:"tenant"` // "" : an admin token
	Kind   string `json:"kind"`   // "api" (default) or "e2b"
}

type tokenView struct {
	Name      string     `json:"name"`
	Tenant    string     `json:"tenant"`
	Kind      string     `json:"kind,omitempty"`
	Source    string     `json:"source"` // "api" or "env" (SANDBOXD_API_TOKENS)
	Hint      string     `json:"hint,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	Secret    string     `json:"secret,omitempty"` // at creation only
}

func viewToken(t store.APIToken) tokenView {
	at := t.CreatedAt
	return tokenView{Name: t.Name, Tenant: t.Tenant, Kind: t.Kind, Source: "api", Hint: t.Hint, CreatedAt: &at, CreatedBy: t.CreatedBy}
}

func (s *Server) tokenStore() (TokenStore, error) {
	if s.tokens == nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "stored tokens are not available on this server"}
	}
	return s.tokens, nil
}

// envToken reports whether name is one of SANDBOXD_API_TOKENS.
func (s *Server) envToken(name string) bool {
	if s.keys == nil {
		return false
	}
	for _, t := range s.keys.Env() {
		if t.Name == name {
			return true
		}
	}
	return false
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.tokenStore()
	if err != nil {
		return err
	}
	var b tokenBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if !apikey.ValidName(b.Name) {
		return badRequest("name %q is invalid: use 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit", b.Name)
	}
	if b.Tenant != "" && !lifecycle.ValidTenant(b.Tenant) {
		return badRequest("tenant %q is invalid: use 1-20 lowercase letters and digits, in groups joined by single dashes", b.Tenant)
	}
	if b.Kind == "" {
		b.Kind = apikey.KindAPI
	}
	if b.Kind != apikey.KindAPI && b.Kind != apikey.KindE2B {
		return badRequest("kind %q is unknown: use %q (a bearer secret, the default) or %q (an E2B-shaped API key)", b.Kind, apikey.KindAPI, apikey.KindE2B)
	}
	// The token's name is the actor in the log and the audit: it must name one token.
	if s.envToken(b.Name) {
		return &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "token name " + b.Name + " is taken by SANDBOXD_API_TOKENS"}
	}
	secret, err := apikey.Mint(b.Kind)
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "make a secret", Err: err}
	}
	t := store.APIToken{Name: b.Name, Hash: apikey.Hash(secret), Tenant: b.Tenant, Kind: b.Kind,
		Hint: apikey.Hint(secret), CreatedAt: s.now().UTC().Truncate(time.Millisecond), CreatedBy: actor(r)}
	s.record(r, "token.create", "token:"+b.Name, b.Kind+" tenant="+b.Tenant)
	switch err := ts.CreateAPIToken(r.Context(), t); {
	case errors.Is(err, store.ErrConflict):
		return &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "a token named " + b.Name + " exists"}
	case errors.Is(err, store.ErrTooMany):
		return &lifecycle.Error{Code: lifecycle.CodeLimit, Message: "there are already as many stored tokens as sandboxd keeps; revoke some first"}
	case err != nil:
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "store the token", Err: err}
	}
	v := viewToken(t)
	v.Secret = secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.tokenStore()
	if err != nil {
		return err
	}
	stored, err := ts.ListAPITokens(r.Context())
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "list tokens", Err: err}
	}
	views := []tokenView{}
	if s.keys != nil {
		for _, t := range s.keys.Env() {
			views = append(views, tokenView{Name: t.Name, Tenant: t.Tenant, Source: "env"})
		}
	}
	for _, t := range stored {
		views = append(views, viewToken(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": views})
	return nil
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.tokenStore()
	if err != nil {
		return err
	}
	name := mux.Vars(r)["name"]
	if s.envToken(name) {
		return &lifecycle.Error{Code: lifecycle.CodeConflict,
			Message: "token " + name + " comes from SANDBOXD_API_TOKENS: remove it there and reload sandboxd"}
	}
	switch err := ts.DeleteAPIToken(r.Context(), name); {
	case errors.Is(err, store.ErrNotFound):
		return &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "no stored token is named " + name}
	case err != nil:
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "revoke the token", Err: err}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "revoked": true})
	return nil
}
