package lifecycle

import (
	"strings"
	"testing"
)

// A sandbox cannot ask for more memory than the host has (issue 10: memory 64G was accepted
// on a 23 GiB host); the error names the amount asked and the host's.
func TestMemoryCeilingIsTheHosts(t *testing.T) {
	t.Parallel()
	total, err := readMemTotal()
	if err != nil {
		t.Skipf("no /proc/meminfo: %v", err)
	}
	m := New(nil, nil, DefaultConfig(t.TempDir()), nil)
	req := CreateRequest{MemoryBytes: int64(total) + 1<<30}
	err = m.normalize(&req)
	want := "memory " + formatBytes(int64(total)+1<<30) + " is more than this host's " + formatBytes(int64(total))
	if ErrorCode(err) != CodeInvalid || ErrorMessage(err) != want {
		t.Errorf("memory above the host's = %v, want invalid: %q", err, want)
	}
	if req := (CreateRequest{MemoryBytes: int64(total)}); m.normalize(&req) != nil {
		t.Errorf("memory equal to the host's refused")
	}
}

func TestMemoryLimits(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig(t.TempDir())
	cfg.MaxMemory = 8 << 30
	m := New(nil, nil, cfg, nil)
	tests := []struct {
		asked int64
		want  string // in the error; "" accepts
	}{
		{0, ""},
		{64 << 20, ""},
		{8 << 30, ""},
		{8<<30 + 1, "memory 8.0 GiB is more than the limit of 8 GiB"},
		{64 << 30, "memory 64 GiB is more than the limit of 8 GiB"},
		{1, "memory 1 bytes is less than the minimum of 64 MiB"},
		{10 << 20, "memory 10 MiB is less than the minimum of 64 MiB"},
	}
	for _, tc := range tests {
		req := CreateRequest{MemoryBytes: tc.asked}
		err := m.normalize(&req)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("memory %d refused: %v", tc.asked, err)
		case tc.want != "" && (err == nil || !strings.Contains(ErrorMessage(err), tc.want)):
			t.Errorf("memory %d = %v, want %q", tc.asked, err, tc.want)
		}
		if tc.asked == 0 && req.MemoryBytes != cfg.Memory {
			t.Errorf("default memory = %d, want %d", req.MemoryBytes, cfg.Memory)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{
		64 << 30: "64 GiB", 24318256 << 10: "23.2 GiB", 512 << 20: "512 MiB", 1536 << 20: "1.5 GiB",
		100: "100 bytes", 2 << 40: "2 TiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
