package wake

import (
	"strings"
	"testing"
)

func TestParseMemAvailable(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "linux", in: "MemTotal:       16318256 kB\nMemFree:          812344 kB\nMemAvailable:    9055596 kB\nBuffers:  1 kB\n", want: 9055596 << 10},
		{name: "missing", in: "MemTotal:       16318256 kB\n", wantErr: true},
		{name: "no unit", in: "MemAvailable: 12\n", wantErr: true},
		{name: "not a number", in: "MemAvailable: x kB\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemAvailable(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseMemAvailable = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestProcMemAvailable(t *testing.T) {
	n, err := procMemAvailable()
	if err != nil {
		t.Skipf("no /proc/meminfo: %v", err)
	}
	if n == 0 {
		t.Error("MemAvailable = 0")
	}
}
