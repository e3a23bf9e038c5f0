package envd

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	"connectrpc.com/connect"
)

// GET /files?path=P[&username=U] answers the file's bytes; POST /files writes one file from
// an application/octet-stream body (path required) or any number from the "file" parts
// of a multipart/form-data body (each part's filename is its path unless path is given).
// Both work on any path of the container, as E2B's envd does.

// writeInfo is one element of POST /files' answer.
type writeInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Path string `json:"path"`
}

// defaultMaxFileBytes is MaxFileBytes' zero value.
const defaultMaxFileBytes = 512 << 20

func (h *Handler) maxFileBytes() int64 {
	if h.MaxFileBytes <= 0 {
		return defaultMaxFileBytes
	}
	return h.MaxFileBytes
}

// fileRequest checks the user and path of a /files request and wakes the sandbox. p is ""
// when the request names no path.
func (h *Handler) fileRequest(w http.ResponseWriter, r *http.Request) (id, p string, ok bool) {
	q := r.URL.Query()
	if err := checkUser(q.Get("username")); err != nil {
		writeError(w, http.StatusUnauthorized, err.Error())
		return "", "", false
	}
	if raw := q.Get("path"); raw != "" {
		var err error
		if p, err = resolve(raw); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return "", "", false
		}
	}
	id = sandboxOf(r.Context())
	if err := h.awake(r.Context(), id); err != nil {
		h.httpError(w, err, "wake")
		return "", "", false
	}
	return id, p, true
}

// httpError answers err (from runFS, lifecycle or wake) as envd's JSON error.
func (h *Handler) httpError(w http.ResponseWriter, err error, what string) {
	err = h.rpcError(err, what)
	var ce *connect.Error
	if errors.As(err, &ce) {
		writeError(w, httpStatus(ce.Code()), ce.Message())
		return
	}
	writeError(w, http.StatusInternalServerError, "internal error")
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	id, p, ok := h.fileRequest(w, r)
	if !ok {
		return
	}
	if p == "" {
		writeError(w, http.StatusBadRequest, "path is required")
		return
	}
	body := &lazyBody{w: w, name: path.Base(p)}
	_, err := h.runFS(r.Context(), id, nil, body, "read", p)
	switch {
	case err != nil && !body.started:
		h.httpError(w, err, "read file")
	case err != nil:
		// The status is out: all that is left is to cut the answer short, so the client
		// cannot take a partial file for a whole one.
		panic(http.ErrAbortHandler)
	case !body.started:
		body.start() // an empty file
	}
}

// lazyBody sends the download's headers with its first bytes: until then an error can
// still be answered as one.
type lazyBody struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (b *lazyBody) start() {
	b.started = true
	h := b.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": b.name}))
	b.w.WriteHeader(http.StatusOK)
}

func (b *lazyBody) Write(p []byte) (int, error) {
	if !b.started {
		b.start()
	}
	return b.w.Write(p)
}

func (h *Handler) upload(w http.ResponseWriter, r *http.Request) {
	id, p, ok := h.fileRequest(w, r)
	if !ok {
		return
	}
	limit := h.maxFileBytes()
	body := http.MaxBytesReader(w, r.Body, limit+1<<20) // room for multipart framing
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var written []writeInfo
	if mt == "multipart/form-data" {
		r.Body = body
		mr, err := r.MultipartReader()
		if err != nil {
			writeError(w, http.StatusBadRequest, "the multipart body does not parse: "+err.Error())
			return
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				h.uploadError(w, err)
				return
			}
			if part.FormName() != "file" {
				continue
			}
			target := p
			if target == "" {
				_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
				name := params["filename"] // with its directories, unlike part.FileName()
				if name == "" {
					writeError(w, http.StatusBadRequest, "a file part needs a filename, or the request a path")
					return
				}
				if target, err = resolve(name); err != nil {
					writeError(w, http.StatusBadRequest, err.Error())
					return
				}
			} else if len(written) > 0 {
				writeError(w, http.StatusBadRequest, "with path set, a request uploads one file: the others need their own paths")
				return
			}
			info, err := h.writeFile(r, id, target, part, limit)
			if err != nil {
				h.uploadError(w, err)
				return
			}
			written = append(written, info)
		}
		if len(written) == 0 {
			writeError(w, http.StatusBadRequest, `the multipart body has no "file" part`)
			return
		}
	} else {
		if p == "" {
			writeError(w, http.StatusBadRequest, "path is required for an application/octet-stream upload")
			return
		}
		var src io.Reader = body
		switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
		case "", "identity":
		case "gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				writeError(w, http.StatusBadRequest, "the gzip body does not parse: "+err.Error())
				return
			}
			src = zr
		default:
			writeError(w, http.StatusBadRequest, "Content-Encoding "+enc+" is not supported: use gzip or none")
			return
		}
		info, err := h.writeFile(r, id, p, src, limit)
		if err != nil {
			h.uploadError(w, err)
			return
		}
		written = append(written, info)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(written)
}

var errTooLarge = errors.New("file too large")

func (h *Handler) uploadError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.Is(err, errTooLarge) || errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a file may be at most %d bytes", h.maxFileBytes()))
		return
	}
	h.httpError(w, err, "write file")
}

// writeFile streams src, framed (see sandbox-init's fs write), into the file p.
func (h *Handler) writeFile(r *http.Request, id, p string, src io.Reader, limit int64) (writeInfo, error) {
	fr := &frameReader{src: src, left: limit}
	_, err := h.runFS(r.Context(), id, fr, nil, "write", p)
	if fr.err != nil {
		return writeInfo{}, fr.err // the cause, not the incomplete write it led to
	}
	if err != nil {
		return writeInfo{}, err
	}
	return writeInfo{Name: path.Base(p), Type: "file", Path: show(p)}, nil
}

// frameReader frames src for "fs write": each chunk after its 4-byte length, then the end
// frame; a failure of src (or more than left bytes) sends no end frame, so nothing is
// written.
type frameReader struct {
	src  io.Reader
	left int64
	buf  []byte
	err  error // src's failure
	done bool
}

func (f *frameReader) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		if f.done {
			return 0, io.EOF
		}
		if f.err != nil {
			return 0, f.err
		}
		chunk := make([]byte, 4+32<<10)
		n, err := f.src.Read(chunk[4:])
		if int64(n) > f.left {
			f.err = errTooLarge
			return 0, f.err
		}
		f.left -= int64(n)
		if n > 0 {
			binary.BigEndian.PutUint32(chunk, uint32(n))
			f.buf = chunk[:4+n]
		}
		switch {
		case errors.Is(err, io.EOF):
			f.buf = append(f.buf, 0, 0, 0, 0)
			f.done = true
		case err != nil:
			f.err = err
		}
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}
