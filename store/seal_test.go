package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealerRoundTripAndBinding(t *testing.T) {
	s, err := NewSealer(key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal([]byte("hunter2"), []byte("ad"))
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed bytes contain the plain text")
	}
	if got, err := s.Open(sealed, []byte("ad")); err != nil || string(got) != "hunter2" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("other row")); !errors.Is(err, ErrUnsealable) {
		t.Fatalf("open under another ad: %v, want ErrUnsealable", err)
	}
	other, _ := NewSealer(key(2))
	if _, err := other.Open(sealed, []byte("ad")); !errors.Is(err, ErrUnsealable) {
		t.Fatalf("open with another key: %v, want ErrUnsealable", err)
	}
	rotated, _ := NewSealer(key(2), key(1))
	if got, err := rotated.Open(sealed, []byte("ad")); err != nil || string(got) != "hunter2" {
		t.Fatalf("open with the old key second: %q, %v", got, err)
	}
	if rotated.current(sealed) || !rotated.current(rotated.Seal(nil, nil)) {
		t.Fatal("current() does not tell the sealing key apart")
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestParseKey(t *testing.T) {
	for _, s := range []string{
		"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n",
		"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
		strings.Repeat("01", KeySize),
	} {
		if k, err := ParseKey(s); err != nil || !bytes.Equal(k, key(1)) {
			t.Errorf("ParseKey(%q) = %x, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "c2hvcnQ=", "not a key at all"} {
		if _, err := ParseKey(s); err == nil || strings.Contains(err.Error(), s) && s != "" {
			t.Errorf("ParseKey(%q): err = %v, want an error that does not repeat the value", s, err)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("create: %x, %v", k1, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	os.Chmod(path, 0o644)
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("load: %x, %v; want the key made first", k2, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("a 0644 key file stayed %v", st.Mode().Perm())
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
}

// grepDir reports the files under dir whose bytes contain needle.
func grepDir(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(needle)) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// TestSecretsNeverInTheFiles is issue 12's finding: an env value and a service env value
// were in the database file and its WAL, in clear, before and after purge.
func TestSecretsNeverInTheFiles(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	sb := sample("sec")
	sb.Services[0].Env = map[string]string{"DB_PASSWORD": "svc-secret-5f1e"}
	if err := db.CreateSandbox(ctx, sb, map[string]string{"TOKEN": "env-secret-9c2a"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetServices(ctx, "sec", []Service{{Name: "api", Cmd: []string{"x"}, Env: map[string]string{"K": "svc-secret-77aa"}}}, nil, t0); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "sec")
	if err != nil || got.Services[0].Env["K"] != "svc-secret-77aa" {
		t.Fatalf("services read back: %+v, %v", got.Services, err)
	}
	env, err := db.SandboxEnv(ctx, "sec")
	if err != nil || env["TOKEN"] != "env-secret-9c2a" {
		t.Fatalf("env read back: %v, %v", env, err)
	}
	dir := filepath.Dir(path)
	for _, secret := range []string{"env-secret-9c2a", "svc-secret-5f1e", "svc-secret-77aa"} {
		if hits := grepDir(t, dir, secret); len(hits) > 0 {
			t.Errorf("%s is in %v in clear", secret, hits)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", filepath.Join(dir, KeyFile)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", filepath.Base(p), st.Mode().Perm(), err)
		}
	}
}

// TestOpenSealsClearValuesAndRotates stores values as a database from before issue 12 held
// them, then opens it with a rotated key: every value ends up sealed under the new key,
// the clear bytes leave both files, and the values read back.
func TestOpenSealsClearValuesAndRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	old, _ := NewSealer(key(1))
	db, err := Open(context.Background(), path, WithSealer(old))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.CreateSandbox(ctx, sample("legacy"), map[string]string{"OLD": "sealed-under-key-1"}); err != nil {
		t.Fatal(err)
	}
	// What the code before issue 12 wrote: values in clear.
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO sandbox_env (sandbox_id, key, value) VALUES ('legacy', 'CLEAR', 'clear-value-31d0')`,
		`UPDATE sandbox_services SET spec = '{"name":"web","cmd":["devserver"],"env":{"PORT":"clear-port-8e4b"},"port":3000}', env_sealed = NULL`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db.Close()

	rotated, _ := NewSealer(key(2), key(1))
	db, err = Open(ctx, path, WithSealer(rotated))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env, err := db.SandboxEnv(ctx, "legacy")
	if err != nil || env["CLEAR"] != "clear-value-31d0" || env["OLD"] != "sealed-under-key-1" {
		t.Fatalf("env after reseal: %v, %v", env, err)
	}
	sb, err := db.GetSandbox(ctx, "legacy")
	if err != nil || sb.Services[0].Env["PORT"] != "clear-port-8e4b" {
		t.Fatalf("services after reseal: %+v, %v", sb.Services, err)
	}
	for _, secret := range []string{"clear-value-31d0", "clear-port-8e4b"} {
		if hits := grepDir(t, dir, secret); len(hits) > 0 {
			t.Errorf("%s still in %v after Open sealed it", secret, hits)
		}
	}
	db.Close()
	// Rotation done: the new key alone opens everything.
	fresh, _ := NewSealer(key(2))
	db, err = Open(ctx, path, WithSealer(fresh))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if env, err := db.SandboxEnv(ctx, "legacy"); err != nil || len(env) != 2 {
		t.Fatalf("env with the new key alone: %v, %v", env, err)
	}
}

func TestOpenRefusesAWrongKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	s1, _ := NewSealer(key(1))
	db, err := Open(context.Background(), path, WithSealer(s1))
	if err != nil {
		t.Fatal(err)
	}
	db.CreateSandbox(context.Background(), sample("x"), map[string]string{"A": "b"})
	db.Close()
	s2, _ := NewSealer(key(2))
	if db, err := Open(context.Background(), path, WithSealer(s2)); !errors.Is(err, ErrUnsealable) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open with a key that seals nothing here: %v, want ErrUnsealable", err)
	}
}
