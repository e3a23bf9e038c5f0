package envd

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process"
)

func newProc() *proc {
	return &proc{pid: 1000, kill: func() {}, done: make(chan struct{}), subs: map[*subscriber]struct{}{}}
}

func dataEvent(b string) *process.ProcessEvent {
	return &process.ProcessEvent{Event: &process.ProcessEvent_Data{Data: &process.ProcessEvent_DataEvent{
		Output: &process.ProcessEvent_DataEvent_Stdout{Stdout: []byte(b)}}}}
}

// TestSlowSubscriberIsCutOff: a subscriber that does not read holds the output for
// slowSubscriber at most, then is cut off; the others keep getting everything.
func TestSlowSubscriberIsCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProc()
		slow, _ := p.subscribe()
		fast, _ := p.subscribe()
		got := 0
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			for range fast.events {
				got++
				if got == subscriberQueue+5 {
					return
				}
			}
		}()
		start := time.Now()
		for i := 0; i < subscriberQueue+5; i++ {
			p.publish(dataEvent("x"))
		}
		<-readerDone
		if waited := time.Since(start); waited != slowSubscriber {
			t.Fatalf("publishing waited %s for the slow subscriber, want %s", waited, slowSubscriber)
		}
		select {
		case <-slow.cut:
		default:
			t.Fatal("the slow subscriber was not cut off")
		}
		if len(slow.events) != subscriberQueue {
			t.Fatalf("the slow subscriber holds %d events, want its queue's %d", len(slow.events), subscriberQueue)
		}
	})
}

// TestLeftSubscriberHoldsNothing: once a stream ends, output no longer waits for it.
func TestLeftSubscriberHoldsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProc()
		s, _ := p.subscribe()
		for i := 0; i < subscriberQueue; i++ {
			p.publish(dataEvent("x"))
		}
		start := time.Now()
		done := make(chan struct{})
		go func() { p.publish(dataEvent("y")); close(done) }()
		synctest.Wait() // publish blocks on the full queue
		p.unsubscribe(s)
		<-done
		if time.Since(start) != 0 {
			t.Fatalf("publish waited %s after the stream left", time.Since(start))
		}
	})
}

// TestSubscriberBound: a process takes maxSubscribers streams at most.
func TestSubscriberBound(t *testing.T) {
	p := newProc()
	for i := 0; i < maxSubscribers; i++ {
		if _, err := p.subscribe(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.subscribe(); err == nil {
		t.Fatal("one subscriber too many was taken")
	}
}

// TestProcessBoundAndPrune: a sandbox runs at most the limit of processes; the ended ones
// of a sandbox that no longer runs are forgotten.
func TestProcessBoundAndPrune(t *testing.T) {
	var tab procTable
	tab.init()
	var procs []*proc
	for i := 0; i < 3; i++ {
		p := newProc()
		if err := tab.add("a", p, 3); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	if err := tab.add("a", newProc(), 3); err == nil {
		t.Fatal("a fourth process was taken")
	}
	if procs[0].pid == procs[1].pid {
		t.Fatal("two processes share a pid")
	}
	for _, p := range procs {
		tab.ended("a", p)
	}
	running := func(string) (netip.Addr, bool) { return netip.Addr{}, true }
	stopped := func(string) (netip.Addr, bool) { return netip.Addr{}, false }
	tab.prune(running)
	if _, err := tab.find("a", &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: procs[0].pid}}); err != nil {
		t.Fatalf("an ended process of a running sandbox is forgotten: %v", err)
	}
	tab.prune(stopped)
	if len(tab.boxes) != 0 {
		t.Fatalf("a stopped sandbox's processes are kept: %v", tab.boxes)
	}
}

// TestEndedIsNotListed: a process leaves the running list before its end can be told. A
// client that read the end and listed at once (E2B's SDK after commands.run) found the
// process still running when the end was told first.
func TestEndedIsNotListed(t *testing.T) {
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	h.procs.init()
	p := newProc()
	if err := h.procs.add("box", p, 8); err != nil {
		t.Fatal(err)
	}
	// While the table is held, the end must not be told: it waits for the table.
	h.procs.mu.Lock()
	go h.ended("box", p, 0, false, nil)
	select {
	case <-p.done: // what a stream waits on before it sends the end
		h.procs.mu.Unlock()
		t.Fatal("the end was told while the table still listed the process as running")
	case <-time.After(200 * time.Millisecond): // an observation window, not an ordering
	}
	h.procs.mu.Unlock()
	<-p.done
	if n := len(h.procs.list("box")); n != 0 {
		t.Fatalf("%d processes listed after the end", n)
	}
}

// TestFollowPastDeadlineEndsWithTheDeadline: when a stream's deadline has passed and its
// process has ended (killed by that same deadline), the stream ends with the deadline's
// error, as E2B's does, whichever of the two the stream sees first.
func TestFollowPastDeadlineEndsWithTheDeadline(t *testing.T) {
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	for range 32 { // select picks among ready cases at random: every try must agree
		p := newProc()
		sub, _ := p.subscribe()
		p.finish(&process.ProcessEvent_EndEvent{Status: "signal: killed"})
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		err := h.follow(ctx, "", p, sub, func(*process.ProcessEvent) error { return nil })
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the stream ended with %v, want its deadline", err)
		}
	}
}
