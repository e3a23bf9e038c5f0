package meminfo

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const linux = "MemTotal:       24318256 kB\nMemFree:          812344 kB\nMemAvailable:    9055596 kB\nBuffers:  1 kB\n"
	tests := []struct {
		name, in, field string
		want            uint64
		wantErr         bool
	}{
		{name: "available", in: linux, field: "MemAvailable", want: 9055596 << 10},
		{name: "total", in: linux, field: "MemTotal", want: 24318256 << 10},
		{name: "missing", in: "MemTotal:       16318256 kB\n", field: "MemAvailable", wantErr: true},
		{name: "no unit", in: "MemAvailable: 12\n", field: "MemAvailable", wantErr: true},
		{name: "not a number", in: "MemTotal: x kB\n", field: "MemTotal", wantErr: true},
		{name: "a longer name is another field", in: "MemTotalX: 1 kB\n", field: "MemTotal", wantErr: true},
		{name: "empty", in: "", field: "MemAvailable", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in), tc.field)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Parse(%s) = %d, %v; want %d, error %v", tc.field, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestReadsThisHost(t *testing.T) {
	t.Parallel()
	for _, field := range []string{"MemTotal", "MemAvailable"} {
		n, err := Read(field)
		if err != nil || n == 0 {
			t.Errorf("%s = %d, %v", field, n, err)
		}
	}
}
