package apikey

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, in string
		want     []Token
		err      string
	}{
		{"admin and tenant", "ci:abc, acme:s3cret:tenant=acme ,", []Token{{"ci", "abc", ""}, {"acme", "s3cret", "acme"}}, ""},
		{"colon in secret", "ops:def:456", []Token{{"ops", "def:456", ""}}, ""},
		{"colon in a tenant's secret", "t:a:b:tenant=x-1", []Token{{"t", "a:b", "x-1"}}, ""},
		{"empty", "", nil, ""},
		{"no colon", "justasecret", nil, `entry "ju…"`},
		{"empty secret", "ci:", nil, `token "ci" has an empty secret`},
		{"empty secret before tenant", "ci::tenant=acme", nil, `token "ci" has an empty secret`},
		{"empty tenant", "ci:x:tenant=", nil, `tenant "" is invalid`},
		{"bad tenant", "ci:x:tenant=a--b", nil, `tenant "a--b" is invalid`},
		{"twice", "a:x1,a:x2", nil, "appears twice"},
		{"shared secret", "a:x1,b:x1:tenant=t", nil, `token "b" reuses`},
		{"long secret", "a:" + strings.Repeat("x", 513), nil, "longer than 512"},
	} {
		got, err := Parse(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "x1") {
				t.Errorf("%s: the error shows a secret: %v", c.name, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	for kind, shape := range map[string]*regexp.Regexp{
		KindAPI: regexp.MustCompile(`^sbd_[0-9a-f]{64}$`),
		KindE2B: regexp.MustCompile(`^e2b_[0-9a-f]{40}$`),
	} {
		a, err1 := Mint(kind)
		b, err2 := Mint(kind)
		if err1 != nil || err2 != nil || !shape.MatchString(a) || a == b {
			t.Errorf("%s: %q %q %v %v", kind, a, b, err1, err2)
		}
		if Hint(a) != a[:8] {
			t.Errorf("hint of %q = %q", a, Hint(a))
		}
	}
	if _, err := Mint("root"); err == nil {
		t.Error("an unknown kind minted a secret")
	}
}

type failingStore struct{}

func (failingStore) APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	return store.APIToken{}, errors.New("disk on fire")
}

// A secret is an environment token's, a stored one's (found by hash), or nobody's; a
// revoked stored token is nobody's at once.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	k := New(db)
	if k.Required() {
		t.Fatal("required with no environment tokens")
	}
	k.SetEnv([]Token{{"ci", "env-secret", ""}, {"acme-ci", "acme-secret", "acme"}})
	e2b, _ := Mint(KindE2B)
	if err := db.CreateAPIToken(ctx, store.APIToken{Name: "sdk", Hash: Hash(e2b), Tenant: "globex", Kind: KindE2B, Hint: Hint(e2b), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		secret string
		want   Principal
		err    error
	}{
		{"env-secret", Principal{"ci", ""}, nil},
		{"acme-secret", Principal{"acme-ci", "acme"}, nil},
		{e2b, Principal{"sdk", "globex"}, nil},
		{"env-secre", Principal{}, ErrUnknown},
		{"", Principal{}, ErrUnknown},
		{strings.Repeat("x", 4096), Principal{}, ErrUnknown},
	} {
		got, err := k.Authenticate(ctx, c.secret)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%.12s: %+v, %v; want %+v, %v", c.secret, got, err, c.want, c.err)
		}
	}
	if !k.Required() || (Principal{Tenant: "acme"}).Admin() || !(Principal{Name: "ci"}).Admin() {
		t.Fatal("Required or Admin is wrong")
	}
	if err := db.DeleteAPIToken(ctx, "sdk"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(ctx, e2b); !errors.Is(err, ErrUnknown) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := New(failingStore{}).Authenticate(ctx, "x"); err == nil || errors.Is(err, ErrUnknown) {
		t.Fatalf("a store failure must not read as an unknown token: %v", err)
	}
}
