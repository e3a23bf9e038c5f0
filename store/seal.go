package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the length of a secrets key: AES-256.
const KeySize = 32

// sealVersion is the first byte of every sealed value; a new format gets a new number.
const sealVersion = 1

// keyIDSize is the length of the key id a sealed value carries after its version byte, so
// that Open picks the right key while a rotation is under way.
const keyIDSize = 4

// Sealer encrypts secret values at rest (issue 12: env and service env values were
// readable in the database file by any local account). It seals with AES-256-GCM under
// its first key and opens values sealed under any of its keys, which is how a key is
// rotated: start with the new key first and the old one after it, and Open re-seals every
// value under the new key. It is safe for concurrent use.
//
// A sealed value is version (1 byte) | key id (4) | nonce (12) | ciphertext and tag.
// The additional data names what the value is (its sandbox and key), so a value copied
// into another row does not open.
type Sealer struct {
	keys []sealKey // keys[0] seals
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewSealer returns a Sealer that seals under current and also opens values sealed under
// previous keys. Every key is KeySize bytes.
func NewSealer(current []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	for i, k := range append([][]byte{current}, previous...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, sealKey{id: keyID(k), aead: aead})
	}
	return s, nil
}

// keyID names a key without revealing it.
func keyID(k []byte) [keyIDSize]byte {
	sum := sha256.Sum256(append([]byte("sandboxd secrets key id\x00"), k...))
	var id [keyIDSize]byte
	copy(id[:], sum[:])
	return id
}

// Seal encrypts plain, bound to ad.
func (s *Sealer) Seal(plain, ad []byte) []byte {
	k := s.keys[0]
	out := make([]byte, 1+keyIDSize+k.aead.NonceSize(), 1+keyIDSize+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	nonce := out[1+keyIDSize:]
	rand.Read(nonce) // never fails (crypto/rand panics rather than return short)
	return k.aead.Seal(out, nonce, plain, ad)
}

// ErrUnsealable is a sealed value that none of the Sealer's keys opens: a wrong or missing
// key, or damaged bytes.
var ErrUnsealable = errors.New("sealed value does not open with any configured secrets key")

// Open decrypts a value Seal made under any of s's keys with the same ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	k, body, err := s.keyOf(sealed)
	if err != nil {
		return nil, err
	}
	n := k.aead.NonceSize()
	if len(body) < n+k.aead.Overhead() {
		return nil, ErrUnsealable
	}
	plain, err := k.aead.Open(nil, body[:n], body[n:], ad)
	if err != nil {
		return nil, ErrUnsealable
	}
	return plain, nil
}

func (s *Sealer) keyOf(sealed []byte) (sealKey, []byte, error) {
	if len(sealed) < 1+keyIDSize || sealed[0] != sealVersion {
		return sealKey{}, nil, ErrUnsealable
	}
	for _, k := range s.keys {
		if string(k.id[:]) == string(sealed[1:1+keyIDSize]) {
			return k, sealed[1+keyIDSize:], nil
		}
	}
	return sealKey{}, nil, ErrUnsealable
}

// current reports whether sealed is sealed under the key Seal uses now.
func (s *Sealer) current(sealed []byte) bool {
	return len(sealed) >= 1+keyIDSize && sealed[0] == sealVersion &&
		string(sealed[1:1+keyIDSize]) == string(s.keys[0].id[:])
}

// SealEnv seals a whole env map as one value, for files that keep a sandbox's config
// outside the database (issue 11's run/<id>/sandbox.json): ad names the file and sandbox.
func (s *Sealer) SealEnv(env map[string]string, ad string) ([]byte, error) {
	plain, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	return s.Seal(plain, []byte(ad)), nil
}

// OpenEnv opens what SealEnv sealed with the same ad.
func (s *Sealer) OpenEnv(sealed []byte, ad string) (map[string]string, error) {
	plain, err := s.Open(sealed, []byte(ad))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	if err := json.Unmarshal(plain, &env); err != nil {
		return nil, fmt.Errorf("sealed env: %w", err)
	}
	return env, nil
}

// ParseKey reads a key as the env file gives it: base64 (standard or URL alphabet, padded
// or not) or hex of KeySize bytes. The error never repeats the value.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("want %d random bytes in base64 or hex (e.g. `openssl rand -base64 32`)", KeySize)
}

// LoadOrCreateKey reads the key file at path (base64, as ParseKey takes it), creating it
// with a random key, mode 0600, when it does not exist. A key file readable by other
// accounts is tightened to 0600.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := make([]byte, KeySize)
		rand.Read(k)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKey(path) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("create secrets key %s: %w", path, err)
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("write secrets key %s: %w", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets key: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("secrets key %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("secrets key %s: %w", path, err)
	}
	return k, nil
}
