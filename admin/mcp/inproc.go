package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// handlerTransport is an http.RoundTripper that serves each request with an http.Handler
// in this process: the MCP tools call the admin API's own handler, auth and all, as a
// client would over the network, without a socket or an address to know.
//
// The handler runs in a goroutine owned by the response: its body streams what the
// handler writes (so SSE and streamed exec work), and closing the body cancels the
// handler's context and waits for it to return. A response whose handler writes nothing
// before returning still gets its status.
type handlerTransport struct {
	h http.Handler
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:0" // in-process: the MCP caller's own request was logged with its address
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, pw: pw, started: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				pw.CloseWithError(fmt.Errorf("handler panic: %v", p))
				w.start(http.StatusInternalServerError)
				return
			}
			w.start(http.StatusOK) // a handler that wrote nothing answered 200
			pw.Close()
		}()
		t.h.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.started:
	case <-req.Context().Done():
		cancel()
		pr.CloseWithError(req.Context().Err())
		<-done
		return nil, req.Context().Err()
	}
	body := &joinedBody{r: pr, cancel: cancel, done: done}
	return &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header.Clone(), Body: body, ContentLength: -1, Request: req,
	}, nil
}

// pipeResponse is the handler's ResponseWriter: headers until the first write, then a
// pipe to the response body.
type pipeResponse struct {
	header  http.Header
	pw      *io.PipeWriter
	once    sync.Once
	status  int
	started chan struct{} // closed when status and header are fixed
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) start(status int) {
	w.once.Do(func() {
		w.status = status
		w.header = w.header.Clone() // the handler may go on touching its map
		close(w.started)
	})
}

func (w *pipeResponse) WriteHeader(status int) {
	if status >= 100 && status < 200 {
		return // informational: no body follows yet
	}
	w.start(status)
}

func (w *pipeResponse) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	return w.pw.Write(b)
}

// Flush makes streams flush: each Write already reached the reader.
func (w *pipeResponse) Flush() { w.start(http.StatusOK) }

// joinedBody is the response body; Close ends the handler and waits for it.
type joinedBody struct {
	r      *io.PipeReader
	cancel context.CancelFunc
	done   <-chan struct{}
}

func (b *joinedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *joinedBody) Close() error {
	b.cancel()
	b.r.CloseWithError(errClosed)
	<-b.done
	return nil
}

var errClosed = errors.New("response body closed")
