package e2b

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	"github.com/sandboxd/sandboxd/internal/httpguard"
)

type ctxKey struct{}

// principal is who the request acts for (set by authenticate).
func principal(r *http.Request) Principal {
	p, _ := r.Context().Value(ctxKey{}).(Principal)
	return p
}

// authenticate checks X-API-Key, E2B's header for the team's key (the SDKs also send
// "X-API-KEY"; header names are case-blind).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if key == "" {
			writeError(w, http.StatusUnauthorized, "X-API-Key is required: one of sandboxd's API tokens")
			return
		}
		// A browser page of another site, or one reached under a DNS-rebound name, is
		// refused by the admin API's rules: the API is for programs. The keyless refusal
		// above comes first, so a browser's preflight still hears that a key is required.
		if reason := httpguard.RefuseBrowser(r, s.LoopbackOnly); reason != "" {
			writeError(w, http.StatusForbidden, reason)
			return
		}
		p, err := s.auth.Authenticate(r.Context(), key)
		if errors.Is(err, ErrUnknownKey) {
			writeError(w, http.StatusUnauthorized, "X-API-Key is not a valid API token")
			return
		}
		if err != nil {
			s.log.Error("e2b: check an API key", "err", err)
			writeError(w, http.StatusInternalServerError, "could not check the API key; try again")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

// NewAPIKey makes a token secret that E2B's SDKs accept as an API key: "e2b_" and 40
// lowercase hex digits (160 random bits). Put it in SANDBOXD_API_TOKENS as name:secret.
func NewAPIKey() string {
	var b [20]byte
	rand.Read(b[:])
	return "e2b_" + hex.EncodeToString(b[:])
}

// LoadKey reads the key that signs envd access tokens from path, creating it (32 random
// bytes, mode 0600) when it is missing. A key that changes invalidates every token, so it
// lives in the data dir.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("e2b key %s is shorter than 32 bytes: remove it to make a new one", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read e2b key: %w", err)
	}
	b = make([]byte, 32)
	rand.Read(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(path) // made by another process in between
	}
	if err != nil {
		return nil, fmt.Errorf("create e2b key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write e2b key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write e2b key: %w", err)
	}
	return b, nil
}
