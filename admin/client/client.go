// Package client is a Go client of sandboxd's admin API (/v1): sandboxes, commands
// (buffered or streamed), files, services, agent tasks and their live events, and the
// terminal. The sandboxd CLI and the MCP server use it; other programs may import it.
//
// Every method takes a context; cancelling it ends the request (a streamed command or a
// terminal is killed with it, as the API does when its client goes away). An answer that
// is not a success is an *Error carrying the API's code, message and request id.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultURL is the API's default address (SANDBOXD_API_BIND's default).
const DefaultURL = "http://127.0.0.1:9090"

// Client talks to one sandboxd. Construct with New; the exported fields are optional.
type Client struct {
	// HTTPClient sends the requests; nil means http.DefaultClient. It must not follow
	// redirects to another host with the token: the API sends none.
	HTTPClient *http.Client
	// UserAgent is sent with every request; empty sends "sandboxd-client".
	UserAgent string

	base  *url.URL
	token string
}

// New returns a client of the API at baseURL ("http://127.0.0.1:9090"; "" means
// DefaultURL), sending token as its bearer token unless it is empty.
func New(baseURL, token string) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API address %q must be a URL like %s", baseURL, DefaultURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token}, nil
}

// BaseURL is the API's address, as given to New.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// endpoint is the URL of escapedPath (its ids escaped by sandboxPath) with query q. An
// id holding "/" or ".." stays one escaped segment, which the API refuses as an id.
func (c *Client) endpoint(escapedPath string, q url.Values) string {
	u := *c.base
	p, err := url.PathUnescape(escapedPath)
	if err != nil {
		p = escapedPath
	}
	u.RawPath = c.base.EscapedPath() + escapedPath
	u.Path = c.base.Path + p
	u.RawQuery = q.Encode()
	return u.String()
}

// request builds a request with the token and the user agent. A body that is not an
// io.Reader is sent as JSON.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var r io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r = b
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		r, isJSON = bytes.NewReader(buf), true
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q), r)
	if err != nil {
		return nil, err
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "sandboxd-client"
	}
	req.Header.Set("User-Agent", ua)
	return req, nil
}

// send sends req and returns the response when its status is 2xx (the caller closes its
// body), or the answer as an *Error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, transportError(req, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, errorFrom(req, resp)
}

// do sends a request and decodes a JSON answer into out (when out is not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxJSON))
		return nil
	}
	return decodeJSON(resp, out)
}

// decodeJSON decodes a JSON answer into out.
func decodeJSON(resp *http.Response, out any) error {
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSON)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w (request %s)",
			resp.Request.Method, resp.Request.URL.Path, err, resp.Header.Get("X-Request-Id"))
	}
	return nil
}

// maxJSON bounds a JSON answer the client reads (a listing of 100000 files is the
// largest the API sends).
const maxJSON = 64 << 20

// sandboxPath is /v1/sandboxes/<id> followed by parts, each escaped.
func sandboxPath(id string, parts ...string) string {
	var b strings.Builder
	b.WriteString("/v1/sandboxes/")
	b.WriteString(segment(id))
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(segment(p))
	}
	return b.String()
}

// segment escapes one path segment; "." and ".." are escaped too, so no id climbs the path.
func segment(s string) string {
	if s == "." || s == ".." {
		return strings.ReplaceAll(s, ".", "%2E")
	}
	return url.PathEscape(s)
}

// transportError names the request of a failure to reach the API, without the URL
// twice: "GET http://127.0.0.1:9090/v1/sandboxes: dial tcp ...: connection refused".
func transportError(req *http.Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	u := *req.URL
	u.RawQuery = ""
	return fmt.Errorf("%s %s: %w", req.Method, u.String(), err)
}
