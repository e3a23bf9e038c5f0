package egress

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The proxy tracks at most MaxTracked sandboxes; the least recently active one is folded
// into Other, so /metrics stays bounded however many sandboxes come and go. Denials are a
// ring of RecentDenials, newest first.
func TestStatsBounded(t *testing.T) {
	p := New(nil, nil)
	p.stats.init(3, 2)
	t0 := time.Unix(1000, 0)
	p.stats.allow("a", t0)
	p.stats.allow("b", t0.Add(time.Second))
	p.stats.allow("a", t0.Add(2*time.Second))
	p.stats.deny("c", "x.example:443", "not_listed", t0.Add(3*time.Second)) // evicts b
	var got []string
	p.Counts(func(id string, allowed, denied uint64) {
		got = append(got, fmt.Sprintf("%s=%d/%d", id, allowed, denied))
	})
	if want := []string{"a=2/0", "c=0/1", "_other=1/0"}; !slices.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	for i := range 5 {
		p.stats.deny("a", fmt.Sprintf("h%d:80", i), "not_listed", t0.Add(time.Duration(10+i)*time.Second))
	}
	var hosts []string
	for _, d := range p.DeniedRecent("a") {
		hosts = append(hosts, d.Host)
	}
	if want := []string{"h4:80", "h3:80", "h2:80"}; !slices.Equal(hosts, want) {
		t.Fatalf("denied_recent %v, want %v", hosts, want)
	}
	p.Forget("a")
	if p.DeniedRecent("a") != nil {
		t.Fatal("a deleted sandbox's denials stay")
	}
	totals := map[string]uint64{}
	p.Decisions(func(allowed bool, reason string, n uint64) { totals[fmt.Sprint(allowed, reason)] = n })
	if totals["true"] != 3 || totals["falsenot_listed"] != 6 {
		t.Fatalf("totals %v", totals)
	}
}
