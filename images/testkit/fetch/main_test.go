package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fetch goes through the proxy HTTP_PROXY names, and prints the status and the body.
func TestFetchUsesTheProxy(t *testing.T) {
	var asked string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.Method + " " + r.URL.String()
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "not in the allowlist")
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	var out bytes.Buffer
	if err := fetch(&out, "http://registry.example/pkg", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if out.String() != "403\nnot in the allowlist" || asked != "GET http://registry.example/pkg" {
		t.Fatalf("printed %q; the proxy was asked %q", out.String(), asked)
	}
}
