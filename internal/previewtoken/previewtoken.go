// Package previewtoken is the format of preview tokens (issue 13): lifecycle signs them with
// a sandbox's key, the edge verifies them in memory on every request to a private port. A
// token names one port of one sandbox and an expiry; it is an HMAC-SHA256 over those, so
// checking one needs the key and nothing else: no database, no list of tokens. Rotating the
// key revokes every token signed with the old one.
//
// A token is 38 characters of unpadded base64url (safe in a URL query, a cookie and a
// header): 12 bytes of claims, then the first 16 bytes of the MAC.
package previewtoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Where a token travels (the edge reads them; admin writes preview links).
const (
	// Param is the query parameter of a preview link.
	Param = "sandboxd_token"
	// Header carries a token from a program.
	Header = "X-Sandboxd-Preview-Token"
)

const (
	// KeySize is the length of a sandbox's token key.
	KeySize = 32
	// MaxTTL is the longest a token may live: a link that leaks stays usable no longer.
	MaxTTL = 7 * 24 * time.Hour
	// Len is the length of every token.
	Len = 38

	version    = 1
	claimsSize = 12 // version, flags, port (2), expiry in Unix seconds (8)
	macSize    = 16 // 128 bits: forging one means guessing them
	rawSize    = claimsSize + macSize
	flagEmbed  = 1 << 0
)

// Claims are what a token says.
type Claims struct {
	Port    int       // the one port it opens
	Expires time.Time // whole seconds; it is refused from then on
	Embed   bool      // its cookie is for a page shown in another site's iframe
}

// Errors of Verify. Every other flaw is ErrInvalid: a caller learns nothing more.
var (
	ErrInvalid = errors.New("preview token invalid")
	ErrExpired = errors.New("preview token expired")
)

// NewKey returns a random key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// Sign returns the token of c for sandbox id, signed with key.
func Sign(key []byte, id string, c Claims) string {
	var raw [rawSize]byte
	putClaims(raw[:claimsSize], c)
	mac := sum(key, id, raw[:claimsSize])
	copy(raw[claimsSize:], mac[:macSize])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// Verify checks that tok was signed with key for sandbox id and port, and that it has not
// expired at now. An empty key verifies nothing.
func Verify(key []byte, id string, port int, tok string, now time.Time) (Claims, error) {
	if len(key) == 0 || len(tok) != Len {
		return Claims{}, ErrInvalid
	}
	var raw [rawSize]byte
	if !decode(raw[:], tok) {
		return Claims{}, ErrInvalid
	}
	mac := sum(key, id, raw[:claimsSize])
	if !hmac.Equal(mac[:macSize], raw[claimsSize:]) {
		return Claims{}, ErrInvalid
	}
	// Only a token we signed gets this far: its fields are ours.
	if raw[0] != version {
		return Claims{}, ErrInvalid
	}
	c := Claims{
		Port:    int(binary.BigEndian.Uint16(raw[2:4])),
		Expires: time.Unix(int64(binary.BigEndian.Uint64(raw[4:12])), 0),
		Embed:   raw[1]&flagEmbed != 0,
	}
	if c.Port != port {
		return Claims{}, ErrInvalid
	}
	if !now.Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func putClaims(b []byte, c Claims) {
	b[0] = version
	if c.Embed {
		b[1] |= flagEmbed
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(c.Port))
	binary.BigEndian.PutUint64(b[4:12], uint64(c.Expires.Unix()))
}

// sum is HMAC-SHA256 (RFC 2104) of a token's claims. The sandbox id is part of the
// message, so a token is bound to its sandbox even if two keys were ever equal.
//
// It is crypto/hmac's result computed on the stack: hmac.New allocated ten times and took
// 1 µs per request to a private port, half the budget of issue 13; this takes a quarter of
// that and allocates nothing. TestSumIsHMAC holds it to crypto/hmac.
func sum(key []byte, id string, claims []byte) [sha256.Size]byte {
	const block = 64 // SHA-256's block size
	var inner [block + len(domain) + maxID + 1 + claimsSize]byte
	if len(key) > block || len(id) > maxID {
		return sumSlow(key, id, claims)
	}
	var outer [block + sha256.Size]byte
	for i := range block {
		inner[i], outer[i] = 0x36, 0x5c
	}
	for i, b := range key {
		inner[i] ^= b
		outer[i] ^= b
	}
	n := block
	n += copy(inner[n:], domain)
	n += copy(inner[n:], id)
	inner[n] = 0
	n++
	n += copy(inner[n:], claims)
	ih := sha256.Sum256(inner[:n])
	copy(outer[block:], ih[:])
	return sha256.Sum256(outer[:])
}

// domain separates preview tokens from any other MAC made with the same key.
const domain = "sandboxd preview token\x00"

// maxID is the longest sandbox id (lifecycle.ValidID); longer ones take sumSlow.
const maxID = 40

func sumSlow(key []byte, id string, claims []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write([]byte(id))
	m.Write([]byte{0})
	// A copy: handing claims to an interface would move the caller's array to the heap.
	m.Write(append([]byte(nil), claims...))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// decode reads tok's base64url into dst without allocating (the hot path runs it on every
// request to a private port). It refuses any character outside the alphabet and any
// encoding that is not the canonical one, so each token has one spelling.
func decode(dst []byte, tok string) bool {
	var acc uint32
	bits, n := 0, 0
	for i := 0; i < len(tok); i++ {
		v := b64(tok[i])
		if v < 0 {
			return false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			if n == len(dst) {
				return false
			}
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	// Leftover bits must be zero (canonical form) and every byte filled.
	return n == len(dst) && acc&(1<<bits-1) == 0
}

func b64(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
