package edge

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
)

func TestTable(t *testing.T) {
	tb := NewTable()
	if _, ok := tb.Get("a"); ok || tb.Len() != 0 {
		t.Fatal("empty table has routes")
	}
	ports := []int{3000, 5173}
	tb.Set(Route{ID: "a", State: Running, Addr: loopback, Ports: ports})
	ports[0] = 1 // Set keeps its own copy
	tb.Set(Route{ID: "b", State: Asleep})
	tb.Set(Route{ID: "a", State: Running, Addr: loopback, Ports: []int{3000, 5173}})
	if tb.Len() != 2 {
		t.Fatalf("Len = %d, want 2", tb.Len())
	}
	r, ok := tb.Get("a")
	if !ok || r.State != Running || r.Ports[0] != 3000 {
		t.Fatalf("Get = %+v, %v", r, ok)
	}
	tb.Delete("a")
	tb.Delete("a")
	if _, ok := tb.Get("a"); ok || tb.Len() != 1 {
		t.Fatalf("after Delete: Len %d", tb.Len())
	}
}

func TestTableOpenPortsFollowBackend(t *testing.T) {
	other := netip.MustParseAddr("10.0.0.2")
	tests := []struct {
		name     string
		next     Route
		keepOpen bool
	}{
		{name: "same backend", next: Route{ID: "a", State: Running, Addr: loopback, Ports: []int{80, 81}}, keepOpen: true},
		{name: "port added", next: Route{ID: "a", State: Running, Addr: loopback, Ports: []int{81, 80, 82}}, keepOpen: true},
		{name: "new address", next: Route{ID: "a", State: Running, Addr: other, Ports: []int{80, 81}}},
		{name: "stopped", next: Route{ID: "a", State: Asleep, Ports: []int{80, 81}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable()
			tb.Set(Route{ID: "a", State: Running, Addr: loopback, Ports: []int{80, 81}})
			first := tb.lookup("a")
			first.open[0].Store(true)
			tb.Set(tc.next)
			e := tb.lookup("a")
			open := e.open[e.portIndex(80)].Load()
			if open != tc.keepOpen {
				t.Errorf("port 80 open = %v, want %v", open, tc.keepOpen)
			}
			if samePool := e.gen == first.gen; samePool != tc.keepOpen {
				t.Errorf("same pool generation = %v, want %v", samePool, tc.keepOpen)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Asleep: "asleep", Running: "running", Broken: "broken", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}

func BenchmarkTableGet(b *testing.B) {
	tb := NewTable()
	var bytes atomic.Int64
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "sb" + strconv.Itoa(i)
		tb.Set(Route{ID: ids[i], State: Running, Addr: loopback, Ports: []int{3000}, Bytes: &bytes})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := tb.Get(ids[i%len(ids)]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
}
