package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths of the files API are relative to the sandbox home (/home/sandbox). The files API
// works while the sandbox sleeps and never wakes it.

// Entry is a file or directory of a listing.
type Entry struct {
	Path    string    `json:"path"`
	Name    string    `json:"name"`
	Type    string    `json:"type"` // file, dir, symlink, other
	Size    int64     `json:"size"`
	Mode    string    `json:"mode"` // "0644"
	ModTime time.Time `json:"mod_time"`
	Target  string    `json:"target,omitempty"`
	Skipped bool      `json:"skipped,omitempty"`
}

// Listing is a directory's entries.
type Listing struct {
	Path      string  `json:"path"`
	Entries   []Entry `json:"entries"`
	Truncated bool    `json:"truncated"`
}

// ListFilesOptions are the options of ListFiles.
type ListFilesOptions struct {
	Recursive bool
	All       bool // hidden entries too
	Limit     int  // 0: the API's default
}

// ListFiles lists the directory at path ("" is the home).
func (c *Client) ListFiles(ctx context.Context, id, path string, o ListFilesOptions) (Listing, error) {
	q := url.Values{"path": {path}}
	if o.Recursive {
		q.Set("recursive", "1")
	}
	if o.All {
		q.Set("all", "1")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var l Listing
	err := c.do(ctx, http.MethodGet, sandboxPath(id, "files"), q, nil, &l)
	return l, err
}

// File is a file's content being read; Size is its length (-1 when unknown).
type File struct {
	io.ReadCloser
	Size int64
}

// ReadFile opens the file at path; the caller closes it.
func (c *Client) ReadFile(ctx context.Context, id, path string) (*File, error) {
	req, err := c.request(ctx, http.MethodGet, sandboxPath(id, "files", "content"), url.Values{"path": {path}}, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return &File{ReadCloser: resp.Body, Size: resp.ContentLength}, nil
}

// ReadFileFrom reads the file at path from byte offset on: its bytes from there and the
// file's whole size. An offset at or past the end reads nothing (rc is nil) and answers
// the size, so a caller that follows a growing file sees a shorter one (replaced or
// rotated) by size < offset.
func (c *Client) ReadFileFrom(ctx context.Context, id, path string, offset int64) (rc io.ReadCloser, size int64, err error) {
	req, err := c.request(ctx, http.MethodGet, sandboxPath(id, "files", "content"), url.Values{"path": {path}}, nil)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, 0, transportError(req, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		// Content-Range: "bytes 10-99/100" or "bytes */100".
		cr := resp.Header.Get("Content-Range")
		total, err := strconv.ParseInt(cr[strings.LastIndexByte(cr, '/')+1:], 10, 64)
		if err != nil {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("GET %s: Content-Range %q has no size", req.URL.Path, cr)
		}
		if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			resp.Body.Close()
			return nil, total, nil
		}
		return resp.Body, total, nil
	}
	defer resp.Body.Close()
	return nil, 0, errorFrom(req, resp)
}

// WriteResult is what a write made.
type WriteResult struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Mode string `json:"mode"`
}

// WriteOptions of WriteFile.
type WriteOptions struct {
	Append bool
	Mode   string // "0755"; "" keeps the default
	// Size is the content's length when known (sent as Content-Length, so an oversize
	// file is refused before it is sent); 0 or less sends it chunked.
	Size int64
}

// WriteFile writes content to path atomically (parents are made; at most 25 MiB).
func (c *Client) WriteFile(ctx context.Context, id, path string, content io.Reader, o WriteOptions) (WriteResult, error) {
	q := url.Values{"path": {path}}
	if o.Append {
		q.Set("append", "1")
	}
	if o.Mode != "" {
		q.Set("mode", o.Mode)
	}
	if content == nil {
		content = strings.NewReader("")
	}
	req, err := c.request(ctx, http.MethodPut, sandboxPath(id, "files"), q, io.NopCloser(content))
	if err != nil {
		return WriteResult{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if o.Size > 0 {
		req.ContentLength = o.Size
	}
	resp, err := c.send(req)
	if err != nil {
		return WriteResult{}, err
	}
	defer resp.Body.Close()
	var wr WriteResult
	err = decodeJSON(resp, &wr)
	return wr, err
}

// DeleteFile removes the file or empty directory at path (a tree with recursive).
func (c *Client) DeleteFile(ctx context.Context, id, path string, recursive bool) error {
	q := url.Values{"path": {path}}
	if recursive {
		q.Set("recursive", "1")
	}
	return c.do(ctx, http.MethodDelete, sandboxPath(id, "files"), q, nil, nil)
}
