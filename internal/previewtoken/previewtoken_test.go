package previewtoken

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	key, other := mustKey(t), mustKey(t)
	c := Claims{Port: 3000, Expires: now.Add(time.Hour), Embed: true}
	tok := Sign(key, "web", c)
	if len(tok) != Len || strings.ContainsAny(tok, "+/=;, ") {
		t.Fatalf("token %q: want %d URL- and cookie-safe characters", tok, Len)
	}
	got, err := Verify(key, "web", 3000, tok, now)
	if err != nil || got.Port != 3000 || !got.Expires.Equal(c.Expires) || !got.Embed {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, c)
	}

	flipped := []byte(tok)
	flipped[5] ^= 1 // still in the alphabet: 'A'↔'B' and so on
	cases := []struct {
		name string
		key  []byte
		id   string
		port int
		tok  string
		at   time.Time
		want error
	}{
		{"another sandbox", key, "web2", 3000, tok, now, ErrInvalid},
		{"another port", key, "web", 3001, tok, now, ErrInvalid},
		{"another key (revoked)", other, "web", 3000, tok, now, ErrInvalid},
		{"no key", nil, "web", 3000, tok, now, ErrInvalid},
		{"expired at the second", key, "web", 3000, tok, c.Expires, ErrExpired},
		{"expired later", key, "web", 3000, tok, c.Expires.Add(time.Hour), ErrExpired},
		{"one bit changed", key, "web", 3000, string(flipped), now, ErrInvalid},
		{"empty", key, "web", 3000, "", now, ErrInvalid},
		{"too short", key, "web", 3000, tok[:Len-1], now, ErrInvalid},
		{"too long", key, "web", 3000, tok + "A", now, ErrInvalid},
		{"padded std alphabet", key, "web", 3000, base64.StdEncoding.EncodeToString(make([]byte, rawSize))[:Len], now, ErrInvalid},
		{"not base64", key, "web", 3000, strings.Repeat("!", Len), now, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.key, tc.id, tc.port, tc.tok, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Verify(key, "web", 3000, tok, c.Expires.Add(-time.Second)); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
}

// A token has exactly one spelling: the last character's spare bits must be zero, or a
// second string would verify (and slip past a revocation list keyed by the string).
func TestNonCanonicalRefused(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	tok := Sign(key, "web", Claims{Port: 80, Expires: now.Add(time.Minute)})
	last := b64(tok[Len-1])
	for spare := 1; spare < 16; spare++ {
		alt := tok[:Len-1] + string(base64URL[last|spare])
		if alt == tok {
			continue
		}
		if _, err := Verify(key, "web", 80, alt, now); err == nil {
			t.Fatalf("%q verifies as well as %q", alt, tok)
		}
	}
}

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestDecodeMatchesStdlib(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	for port := 1; port < 65536; port += 4099 {
		tok := Sign(key, "x", Claims{Port: port, Expires: now})
		want, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		var got [rawSize]byte
		if !decode(got[:], tok) || string(got[:]) != string(want) {
			t.Fatalf("decode(%q) = %x, want %x", tok, got, want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	key := make([]byte, KeySize)
	f.Add(Sign(key, "web", Claims{Port: 3000, Expires: now.Add(time.Hour)}))
	f.Add(strings.Repeat("A", Len))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(key, "web", 3000, tok, now)
		if err == nil && (c.Port != 3000 || !now.Before(c.Expires)) {
			t.Fatalf("%q verified as %+v", tok, c)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	key := mustKey(b)
	tok := Sign(key, "01jabcdefghjkmnpqrstvwxyz0", Claims{Port: 3000, Expires: now.Add(time.Hour)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(key, "01jabcdefghjkmnpqrstvwxyz0", 3000, tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// sum computes HMAC-SHA256 by hand; it must equal crypto/hmac's for every key and id size.
func TestSumIsHMAC(t *testing.T) {
	t.Parallel()
	claims := make([]byte, claimsSize)
	for _, keyLen := range []int{0, 1, 32, 64, 65, 100} {
		for _, idLen := range []int{0, 1, 26, 40, 41, 200} {
			key := []byte(strings.Repeat("k", keyLen))
			id := strings.Repeat("i", idLen)
			claims[3] = byte(keyLen + idLen)
			if got, want := sum(key, id, claims), sumSlow(key, id, claims); got != want {
				t.Fatalf("key %d bytes, id %d bytes: sum %x, hmac %x", keyLen, idLen, got, want)
			}
		}
	}
}
