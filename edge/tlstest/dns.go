// Package tlstest runs, on loopback and inside a test, what the ACME DNS-01
// path of the edge talks to: an authoritative DNS server for a test zone, a
// libdns provider that writes TXT records into it, Pebble as the ACME CA,
// and a fake Cloudflare API behind an HTTPS proxy for the real Cloudflare
// provider. Nothing leaves the machine.
package tlstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server for one zone, on UDP and TCP of the
// same loopback port: it answers SOA at the apex and TXT records set with
// AddTXT. certmagic asks it over UDP, Pebble over TCP.
type DNS struct {
	Addr string // 127.0.0.1:port
	Zone string // fully qualified, lowercase: "sbx.test."

	mu  sync.Mutex
	txt map[string][]string // fully qualified lowercase name → values
}

// NewDNS serves zone until the test ends.
func NewDNS(t testing.TB, zone string) *DNS {
	t.Helper()
	d := &DNS{Zone: dns.Fqdn(strings.ToLower(zone)), txt: map[string][]string{}}
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if i == 10 {
			t.Fatalf("no loopback port free on both UDP and TCP: %v", err)
		}
	}
	d.Addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: d}, {Listener: ln, Handler: d}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("dns server: %v", err)
		}
		t.Cleanup(func() { srv.Shutdown(); <-done })
	}
	return d
}

// AddTXT adds a TXT value at name.
func (d *DNS) AddTXT(name, value string) {
	name = dns.Fqdn(strings.ToLower(name))
	d.mu.Lock()
	d.txt[name] = append(d.txt[name], value)
	d.mu.Unlock()
}

// RemoveTXT removes one TXT value at name.
func (d *DNS) RemoveTXT(name, value string) {
	name = dns.Fqdn(strings.ToLower(name))
	d.mu.Lock()
	defer d.mu.Unlock()
	vs := d.txt[name]
	for i, v := range vs {
		if v == value {
			d.txt[name] = append(vs[:i:i], vs[i+1:]...)
			return
		}
	}
}

// ServeDNS answers one query.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: d.Zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns1." + d.Zone, Mbox: "hostmaster." + d.Zone, Serial: 1, Refresh: 60, Retry: 60, Expire: 3600, Minttl: 1}
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		if name != d.Zone && !strings.HasSuffix(name, "."+d.Zone) {
			m.Rcode = dns.RcodeRefused
			break
		}
		switch q.Qtype {
		case dns.TypeSOA:
			if name == d.Zone {
				m.Answer = append(m.Answer, soa)
			} else {
				m.Ns = append(m.Ns, soa)
			}
		case dns.TypeTXT:
			d.mu.Lock()
			for _, v := range d.txt[name] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{v}})
			}
			d.mu.Unlock()
			if len(m.Answer) == 0 {
				m.Ns = append(m.Ns, soa)
			}
		default:
			m.Ns = append(m.Ns, soa)
		}
	}
	w.WriteMsg(m)
}

// Provider is a libdns provider (certmagic.DNSProvider) that writes TXT
// records into a DNS, or fails every append once told to.
type Provider struct {
	DNS *DNS

	appends atomic.Int32
	fail    atomic.Pointer[error]
}

// SetFail makes every AppendRecords fail with err from now on; nil ends it.
func (p *Provider) SetFail(err error) {
	if err == nil {
		p.fail.Store(nil)
		return
	}
	p.fail.Store(&err)
}

// Appends returns how many times AppendRecords was called.
func (p *Provider) Appends() int { return int(p.appends.Load()) }

// AppendRecords implements libdns.RecordAppender.
func (p *Provider) AppendRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	p.appends.Add(1)
	if err := p.fail.Load(); err != nil {
		return nil, *err
	}
	for _, r := range recs {
		rr := r.RR()
		p.DNS.AddTXT(libdns.AbsoluteName(rr.Name, zone), rr.Data)
	}
	return recs, nil
}

// DeleteRecords implements libdns.RecordDeleter.
func (p *Provider) DeleteRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	for _, r := range recs {
		rr := r.RR()
		p.DNS.RemoveTXT(libdns.AbsoluteName(rr.Name, zone), rr.Data)
	}
	return recs, nil
}
