// Command fetch is the testkit's curl: it GETs a URL the way npm, pip, git and the agent
// CLIs do, through the proxy HTTP_PROXY, HTTPS_PROXY and NO_PROXY name (https:// by a
// CONNECT tunnel), trusting the certificates in $SSL_CERT_FILE as Go does. It prints the
// answer's status code on the first line and its body after it, and exits 0 on any HTTP
// answer and 1 when there is none (the error on stderr). The egress tests (issue 15) run
// it inside sandboxes.
//
//	fetch [-timeout 10s] URL
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 10*time.Second, "give up after this long")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: fetch [-timeout 10s] URL")
		os.Exit(2)
	}
	if err := fetch(os.Stdout, flag.Arg(0), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
}

func fetch(w io.Writer, url string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	fmt.Fprintln(w, res.StatusCode)
	_, err = io.Copy(w, io.LimitReader(res.Body, 1<<20))
	return err
}
