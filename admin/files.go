package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/files"
)

// The files API: paths are relative to the sandbox home, every operation is confined to
// the workspace by lifecycle/files, and none of them wakes a sleeping sandbox: the
// workspace is a host directory, read and written whether or not the container runs.

// Workspaces opens a sandbox's workspace, whether or not the sandbox runs; an unknown
// sandbox is a lifecycle not_found error.
type Workspaces interface {
	Workspace(ctx context.Context, id string) (*files.Workspace, error)
}

// maxFileBytes caps the content of one write (the prior system's 25 MiB): a larger body
// answers 413 too_large and changes nothing.
const maxFileBytes = 25 << 20

// maxFileJSONBody caps the body of the JSON write form: the content at the cap in base64,
// plus room for the other fields.
const maxFileJSONBody = (maxFileBytes+2)/3*4 + 64<<10

// maxListLimit bounds ?limit= of a listing.
const maxListLimit = 100000

// entryView is a files.Entry as the API shows it.
type entryView struct {
	Path    string    `json:"path"`
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Mode    string    `json:"mode"` // octal, "0644"
	ModTime time.Time `json:"mod_time"`
	Target  string    `json:"target,omitempty"`  // a symlink's target, as written in the link
	Skipped bool      `json:"skipped,omitempty"` // a recursive listing did not descend here
}

func viewEntry(e files.Entry) entryView {
	return entryView{Path: e.Path, Name: e.Name, Type: e.Type, Size: e.Size, Mode: octalMode(e.Mode),
		ModTime: e.ModTime.UTC(), Target: e.Target, Skipped: e.Skipped}
}

// octalMode writes m as chmod takes it: "0644", "4755".
func octalMode(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// parseMode reads "0755", "755" or "0o755"; "" is 0 (the default). Only permission bits.
func parseMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || n > 0o777 {
		return 0, badRequest("mode %q must be octal permission bits, 0000 to 0777", s)
	}
	return fs.FileMode(n), nil
}

// flag reads a boolean query parameter: "?recursive", "?recursive=1", "=true" are true.
func flag(q url.Values, key string) (bool, error) {
	if !q.Has(key) {
		return false, nil
	}
	v := q.Get(key)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s=%q must be true or false (1 or 0)", key, v)
	}
	return b, nil
}

// fileError turns a files error into the API's answer. Escapes are 403, not 400: the path
// is well formed, but a symlink in the workspace (the sandbox's doing) leads it outside,
// and the caller should hear that this is refused, not that it typed something wrong.
// Errors that are not from files (the sandbox is unknown) pass through, as do files
// errors of no known kind, which the funnel answers 500 and logs.
func fileError(err error) error {
	var be *bodyError
	if errors.As(err, &be) {
		return badRequest("%v", be)
	}
	var fe *files.Error
	if !errors.As(err, &fe) {
		return err
	}
	msg := err.Error()
	switch {
	case errors.Is(err, files.ErrEscapes):
		return &apiError{http.StatusForbidden, "forbidden", msg}
	case errors.Is(err, files.ErrTooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", msg}
	case errors.Is(err, files.ErrNoSpace):
		return &apiError{http.StatusInsufficientStorage, "disk_quota", msg}
	case errors.Is(err, fs.ErrNotExist):
		return &apiError{http.StatusNotFound, "not_found", msg}
	case errors.Is(err, files.ErrNotEmpty), errors.Is(err, fs.ErrExist):
		return &apiError{http.StatusConflict, "conflict", msg}
	case errors.Is(err, files.ErrInvalidPath), errors.Is(err, files.ErrIsDir),
		errors.Is(err, files.ErrNotDir), errors.Is(err, files.ErrNotRegular):
		return &apiError{http.StatusBadRequest, "invalid_request", msg}
	}
	return err
}

// bodyError is a failure reading the request body (the client went away, say), told
// apart from a failure of the disk.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// getFiles answers GET /v1/sandboxes/{id}/files?path=P[&recursive][&all][&limit=N]: a
// directory's entries as JSON, a regular file's bytes (Range and conditional requests
// work). The home is the default path.
func (s *Server) getFiles(w http.ResponseWriter, r *http.Request) error {
	return s.serveFiles(w, r, true)
}

// readFile answers GET /v1/sandboxes/{id}/files/content?path=P: always the bytes, 400
// for a directory.
func (s *Server) readFile(w http.ResponseWriter, r *http.Request) error {
	return s.serveFiles(w, r, false)
}

func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request, list bool) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var o files.ListOptions
	if o.Recursive, err = flag(q, "recursive"); err != nil {
		return err
	}
	if o.All, err = flag(q, "all"); err != nil {
		return err
	}
	if l := q.Get("limit"); l != "" {
		if o.Limit, err = strconv.Atoi(l); err != nil || o.Limit < 1 || o.Limit > maxListLimit {
			return badRequest("limit must be 1-%d", maxListLimit)
		}
	}
	ws, err := s.workspaces.Workspace(r.Context(), id)
	if err != nil {
		return err
	}
	defer ws.Close()
	p := q.Get("path")
	f, e, err := ws.Open(p)
	if list && errors.Is(err, files.ErrIsDir) {
		return listDir(w, ws, p, o)
	}
	if err != nil {
		return fileError(err)
	}
	defer f.Close()
	serveFile(w, r, f, e)
	return nil
}

func listDir(w http.ResponseWriter, ws *files.Workspace, p string, o files.ListOptions) error {
	entries, truncated, err := ws.List(p, o)
	if err != nil {
		return fileError(err)
	}
	views := make([]entryView, len(entries))
	for i, e := range entries {
		views[i] = viewEntry(e)
	}
	p, _ = files.Clean(p) // List accepted it
	writeJSON(w, http.StatusOK, map[string]any{"path": p, "entries": views, "truncated": truncated})
	return nil
}

// serveFile answers with f's bytes, typed by extension or content.
func serveFile(w http.ResponseWriter, r *http.Request, f *os.File, e files.Entry) {
	// The bytes are the sandbox's: a browser must neither sniff them into something else
	// nor run them as a page of the API's origin.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox")
	http.ServeContent(w, r, e.Name, e.ModTime, f)
}

// putFileBody is the JSON write form the prior system documented; content is text, or
// base64 with "encoding":"base64".
type putFileBody struct {
	Path     string `json:"path"`
	Content  string `json:"content"`
	Append   bool   `json:"append"`
	Mode     string `json:"mode"`
	Encoding string `json:"encoding"`
}

// putFile answers PUT|POST /v1/sandboxes/{id}/files?path=P[&append][&mode=0755] with the
// raw body as the content, or, with no ?path=, a JSON body in the prior system's form
// {"path","content","append","mode","encoding"}. 201 when the file is new, else 200.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var p string
	var content io.Reader
	var o files.WriteOptions
	if !q.Has("path") {
		// Without ?path= a raw body has nowhere to go, so the body is the JSON form
		// whatever its Content-Type: curl -d sends form-urlencoded unless told otherwise.
		var b putFileBody
		if err := decodeFileBody(w, r, &b); err != nil {
			return err
		}
		p, o.Append = b.Path, b.Append
		if o.Mode, err = parseMode(b.Mode); err != nil {
			return err
		}
		switch strings.ToLower(b.Encoding) {
		case "", "utf-8", "utf8", "text":
			content = strings.NewReader(b.Content)
		case "base64":
			raw, err := base64.StdEncoding.DecodeString(b.Content)
			if err != nil {
				return badRequest("content is not valid base64: %v", err)
			}
			content = bytes.NewReader(raw)
		default:
			return badRequest(`encoding %q is not supported: use "base64" or leave it out for text`, b.Encoding)
		}
	} else {
		p = q.Get("path")
		if o.Append, err = flag(q, "append"); err != nil {
			return err
		}
		if o.Mode, err = parseMode(q.Get("mode")); err != nil {
			return err
		}
		if r.ContentLength > maxFileBytes {
			return &apiError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the file is larger than %d bytes", maxFileBytes)}
		}
		content = bodyReader{r.Body}
	}
	if p == "" {
		return badRequest("a file path is required: ?path=workspace/app/file (or \"path\" in the JSON form)")
	}
	o.MaxBytes = maxFileBytes
	ws, err := s.workspaces.Workspace(r.Context(), id)
	if err != nil {
		return err
	}
	defer ws.Close()
	e, created, err := ws.Write(p, content, o)
	if err != nil {
		return fileError(err)
	}
	s.record(r, "file.put", id, e.Path)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"path": e.Path, "size": e.Size, "mode": octalMode(e.Mode)})
	return nil
}

// decodeFileBody is decode with the larger cap a file's content needs.
func decodeFileBody(w http.ResponseWriter, r *http.Request, v *putFileBody) error {
	return decodeJSON(w, r, v, maxFileJSONBody,
		`a path is required: ?path=workspace/app/file with the content as the body, or a JSON body {"path","content"}`)
}

// deleteFile answers DELETE /v1/sandboxes/{id}/files?path=P[&recursive]: a file, a
// symlink (itself), an empty directory, or with recursive a whole tree.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	recursive, err := flag(q, "recursive")
	if err != nil {
		return err
	}
	p := q.Get("path")
	if p == "" {
		return badRequest("a path is required: ?path=workspace/app/file; the home itself cannot be deleted")
	}
	ws, err := s.workspaces.Workspace(r.Context(), id)
	if err != nil {
		return err
	}
	defer ws.Close()
	if err := ws.Remove(p, recursive); err != nil {
		return fileError(err)
	}
	p, _ = files.Clean(p)
	s.record(r, "file.delete", id, p)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "path": p})
	return nil
}

type moveBody struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Overwrite bool   `json:"overwrite"`
}

// moveFile answers POST /v1/sandboxes/{id}/files/move {"from","to","overwrite"}.
func (s *Server) moveFile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b moveBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if b.From == "" || b.To == "" {
		return badRequest(`"from" and "to" are required`)
	}
	ws, err := s.workspaces.Workspace(r.Context(), id)
	if err != nil {
		return err
	}
	defer ws.Close()
	if err := ws.Move(b.From, b.To, b.Overwrite); err != nil {
		return fileError(err)
	}
	from, _ := files.Clean(b.From)
	to, _ := files.Clean(b.To)
	s.record(r, "file.move", id, from+" -> "+to)
	writeJSON(w, http.StatusOK, map[string]any{"moved": true, "from": from, "to": to})
	return nil
}
