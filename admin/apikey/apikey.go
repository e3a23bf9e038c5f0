// Package apikey says who an API secret belongs to (issue 13). Secrets come from two
// places: the operator's SANDBOXD_API_TOKENS ("name:secret" is an admin token,
// "name:secret:tenant=<tenant>" a tenant's), reloaded on SIGHUP, and tokens an admin
// created through the API, of which only a SHA-256 hash is stored. The admin API checks
// "Authorization: Bearer <secret>" with Keys; the E2B listener (issue 16) checks its
// X-API-Key with the same Keys and gets the same Principal.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Principal is who a request acts as.
type Principal struct {
	Name   string // the token's name: the actor of the request log and the audit
	Tenant string // "" for an admin token, which sees every sandbox
}

// Admin reports whether p sees every tenant's sandboxes.
func (p Principal) Admin() bool { return p.Tenant == "" }

// ErrUnknown is a secret that belongs to no token.
var ErrUnknown = errors.New("unknown API token")

// Store finds stored tokens by the hash of their secret (store.DB).
type Store interface {
	APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error)
}

// Keys authenticates secrets. It is safe for concurrent use.
type Keys struct {
	db Store // nil: environment tokens only

	mu        sync.RWMutex
	env       []Token
	envHashes [][]byte // Hash of each env secret, in env's order
}

// New returns Keys over the stored tokens of db (nil for none) and no environment tokens.
func New(db Store) *Keys { return &Keys{db: db} }

// SetEnv replaces the environment's tokens (at start and on SIGHUP).
func (k *Keys) SetEnv(tokens []Token) {
	hashes := make([][]byte, len(tokens))
	for i, t := range tokens {
		hashes[i] = Hash(t.Secret)
	}
	k.mu.Lock()
	k.env, k.envHashes = tokens, hashes
	k.mu.Unlock()
}

// Env returns the environment's tokens.
func (k *Keys) Env() []Token {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.env
}

// Required reports whether every request must carry a token: the operator set some.
// Without, the API is open to whoever reaches it (loopback, or auth disabled), and a
// request with no token acts as the operator; one that carries a token still acts as it.
func (k *Keys) Required() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.env) > 0
}

// maxSecret bounds what is compared or hashed; minted secrets are far shorter.
const maxSecret = 512

// Authenticate returns the principal secret belongs to, ErrUnknown when it belongs to
// none, or the store's error. Environment secrets are compared by their SHA-256 in
// constant time, every one of them whatever matched, so neither which one matched nor
// their lengths show in the time taken; a stored token is found by the SHA-256 of the
// secret, so the lookup's timing depends on a hash the caller cannot steer.
func (k *Keys) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" || len(secret) > maxSecret {
		return Principal{}, ErrUnknown
	}
	h := Hash(secret)
	k.mu.RLock()
	env, hashes := k.env, k.envHashes
	k.mu.RUnlock()
	var p Principal
	found := false
	for i, t := range env {
		if subtle.ConstantTimeCompare(hashes[i], h) == 1 {
			p, found = Principal{Name: t.Name, Tenant: t.Tenant}, true
		}
	}
	if found {
		return p, nil
	}
	if k.db == nil {
		return Principal{}, ErrUnknown
	}
	t, err := k.db.APITokenByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnknown
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up API token: %w", err)
	}
	return Principal{Name: t.Name, Tenant: t.Tenant}, nil
}

// Kinds of minted secrets. A kind shapes the secret only: either is accepted wherever a
// token is, with the rights of its tenant.
const (
	KindAPI = "api" // "sbd_" + 64 hex digits (256 bits)
	KindE2B = "e2b" // "e2b_" + 40 hex digits (160 bits), the shape E2B's SDKs expect of an API key
)

// Mint makes a new secret of kind.
func Mint(kind string) (string, error) {
	prefix, n := "sbd_", 32
	switch kind {
	case KindAPI:
	case KindE2B:
		prefix, n = "e2b_", 20
	default:
		return "", fmt.Errorf("kind %q: want %q or %q", kind, KindAPI, KindE2B)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// Hash is what is stored of a secret: SHA-256. A slow password hash (bcrypt, argon2) buys
// nothing here: a minted secret has 160 bits or more from the system's CSPRNG, beyond any
// brute force at any hashing speed, while a salted slow hash could not be looked up by
// value, so each request would have to try every stored token at ~50ms apiece, which
// turns the token check into a way to exhaust the CPU.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Hint is the part of a secret kept to tell tokens apart in a list: its kind prefix and 4
// hex digits (16 of its 160+ bits).
func Hint(secret string) string {
	if len(secret) > 8 {
		return secret[:8]
	}
	return ""
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether name can name a stored token: 1-64 letters, digits, '.', '_'
// and '-', starting with a letter or digit.
func ValidName(name string) bool { return namePattern.MatchString(name) }

// Token is one entry of SANDBOXD_API_TOKENS.
type Token struct {
	Name   string
	Secret string
	Tenant string // "" : an admin token
}

const tenantSuffix = ":tenant="

// Parse reads SANDBOXD_API_TOKENS: comma-separated "name:secret" (admin) and
// "name:secret:tenant=<tenant>" entries. A secret may hold ':' (the name ends at the
// first one; ":tenant=" at the end, if any, is the tenant). Errors name the entry, never
// its secret.
func Parse(s string) ([]Token, error) {
	var out []Token
	names, secrets := map[string]bool{}, map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, secret, ok := strings.Cut(part, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("entry %q: want name:secret or name:secret:tenant=<tenant>", redact(part))
		}
		tenant := ""
		if i := strings.LastIndex(secret, tenantSuffix); i >= 0 {
			secret, tenant = secret[:i], secret[i+len(tenantSuffix):]
			if !lifecycle.ValidTenant(tenant) {
				return nil, fmt.Errorf("token %q: tenant %q is invalid: use 1-20 lowercase letters and digits, in groups joined by single dashes", name, tenant)
			}
		}
		if secret == "" {
			return nil, fmt.Errorf("token %q has an empty secret", name)
		}
		if len(secret) > maxSecret {
			return nil, fmt.Errorf("token %q: its secret is longer than %d characters", name, maxSecret)
		}
		if names[name] {
			return nil, fmt.Errorf("token name %q appears twice", name)
		}
		if secrets[secret] {
			return nil, fmt.Errorf("token %q reuses another token's secret", name)
		}
		names[name], secrets[secret] = true, true
		out = append(out, Token{Name: name, Secret: secret, Tenant: tenant})
	}
	return out, nil
}

func redact(entry string) string {
	if name, _, ok := strings.Cut(entry, ":"); ok {
		return name + ":…"
	}
	if len(entry) > 4 {
		return entry[:2] + "…"
	}
	return "…"
}
