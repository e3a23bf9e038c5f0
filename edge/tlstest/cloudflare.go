package tlstest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Cloudflare is a fake of the part of Cloudflare's API that
// github.com/libdns/cloudflare uses (zone lookup, TXT record create, list
// and delete), writing into a DNS. A process reaches it as
// https://api.cloudflare.com through an HTTPS proxy: run it with
// HTTPS_PROXY=ProxyURL and SSL_CERT_FILE=RootFile. The proxy sends every
// CONNECT to the fake, so nothing leaves the machine.
type Cloudflare struct {
	ProxyURL string // http://127.0.0.1:port
	RootFile string // PEM of the root the fake's api.cloudflare.com certificate chains to
	Token    string // the only API token accepted

	dns      *DNS
	requests atomic.Int32

	mu      sync.Mutex
	records map[string]cfRecord // by id
	nextID  int
}

type cfRecord struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     int    `json:"ttl,omitempty"`
}

// NewCloudflare serves the fake API and its proxy until the test ends. The
// zone of dns is the account's only zone.
func NewCloudflare(t testing.TB, dns *DNS, token string) *Cloudflare {
	t.Helper()
	cf := &Cloudflare{Token: token, dns: dns, records: map[string]cfRecord{}}
	rootPEM, leaf := issue(t, "api.cloudflare.com")
	cf.RootFile = filepath.Join(t.TempDir(), "cloudflare-root.pem")
	if err := os.WriteFile(cf.RootFile, rootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(http.HandlerFunc(cf.serveAPI))
	api.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	api.StartTLS()
	t.Cleanup(api.Close)

	p := &proxy{to: api.Listener.Addr().String(), conns: map[net.Conn]struct{}{}}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); p.closeAll() })
	cf.ProxyURL = srv.URL
	return cf
}

// Requests returns how many API requests arrived, refused ones included.
func (cf *Cloudflare) Requests() int { return int(cf.requests.Load()) }

func (cf *Cloudflare) serveAPI(w http.ResponseWriter, r *http.Request) {
	cf.requests.Add(1)
	if r.Header.Get("Authorization") != "Bearer "+cf.Token {
		cfAnswer(w, http.StatusForbidden, nil, "Invalid access token")
		return
	}
	zone := strings.TrimSuffix(cf.dns.Zone, ".")
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	switch {
	case r.Method == "GET" && path == "/zones":
		zones := []map[string]string{}
		// certmagic asks for "zone." and Cloudflare matches it with or without the dot.
		if strings.TrimSuffix(r.URL.Query().Get("name"), ".") == zone {
			zones = append(zones, map[string]string{"id": "zone1", "name": zone})
		}
		cfAnswer(w, 200, zones, "")
	case r.Method == "POST" && path == "/zones/zone1/dns_records":
		var rec cfRecord
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil || rec.Type != "TXT" {
			cfAnswer(w, 400, nil, "only TXT records here")
			return
		}
		if !strings.HasSuffix(rec.Name, "."+zone) && rec.Name != zone {
			rec.Name += "." + zone // libdns sends names relative to the zone
		}
		cf.mu.Lock()
		cf.nextID++
		rec.ID = "rec" + strconv.Itoa(cf.nextID)
		cf.records[rec.ID] = rec
		cf.mu.Unlock()
		cf.dns.AddTXT(rec.Name, unquote(rec.Content))
		cfAnswer(w, 200, rec, "")
	case r.Method == "GET" && path == "/zones/zone1/dns_records":
		q := r.URL.Query()
		out := []cfRecord{}
		cf.mu.Lock()
		for _, rec := range cf.records {
			if (q.Get("type") == "" || rec.Type == q.Get("type")) && (q.Get("name") == "" || rec.Name == q.Get("name")) &&
				strings.Contains(rec.Content, q.Get("content.contains")) {
				out = append(out, rec)
			}
		}
		cf.mu.Unlock()
		cfAnswer(w, 200, out, "")
	case r.Method == "DELETE" && strings.HasPrefix(path, "/zones/zone1/dns_records/"):
		id := strings.TrimPrefix(path, "/zones/zone1/dns_records/")
		cf.mu.Lock()
		rec, ok := cf.records[id]
		delete(cf.records, id)
		cf.mu.Unlock()
		if !ok {
			cfAnswer(w, 404, nil, "Record not found")
			return
		}
		cf.dns.RemoveTXT(rec.Name, unquote(rec.Content))
		cfAnswer(w, 200, map[string]string{"id": id}, "")
	default:
		cfAnswer(w, 404, nil, "No route for that URI")
	}
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// cfAnswer writes Cloudflare's response envelope.
func cfAnswer(w http.ResponseWriter, status int, result any, errMsg string) {
	body := map[string]any{"success": errMsg == "", "errors": []any{}, "messages": []any{}, "result": result}
	if errMsg != "" {
		body["errors"] = []any{map[string]any{"code": 10000 + status, "message": errMsg}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// proxy answers CONNECT by splicing the connection to one address.
type proxy struct {
	to    string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	up, err := net.Dial("tcp", p.to)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.wg.Add(1)
	if !p.track(up, down) {
		p.wg.Done()
		return
	}
	io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		defer p.wg.Done()
		p.splice(up, down, brw.Reader)
	}()
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil { // closed
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) splice(up, down net.Conn, buffered *bufio.Reader) {
	done := make(chan struct{})
	go func() {
		io.Copy(up, buffered)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(down, up)
	down.Close()
	<-done
	up.Close()
	p.mu.Lock()
	delete(p.conns, up)
	delete(p.conns, down)
	p.mu.Unlock()
}

// closeAll ends every spliced connection and waits for the splices.
func (p *proxy) closeAll() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// SelfSigned returns a PEM certificate for names, valid for a day, that is
// its own root, and its PEM key.
func SelfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// issue makes a root and a certificate for name signed by it.
func issue(t testing.TB, name string) (rootPEM []byte, leaf tls.Certificate) {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlstest root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
