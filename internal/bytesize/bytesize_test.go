package bytesize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "512M": 512 << 20, "2GiB": 2 << 30, "2 gb": 2 << 30, "2Gi": 2 << 30, "512mi": 512 << 20, "1.5G": 3 << 29} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "2Gx", "-1G", "99999999999P"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}
