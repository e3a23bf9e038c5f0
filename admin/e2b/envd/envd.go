// Package envd serves E2B's in-sandbox daemon protocol ("envd") for every sandbox, from
// sandboxd itself: nothing runs in the container on its behalf but the commands asked
// for. It answers GET /health, GET and POST /files, and the Connect RPC services
// process.Process and filesystem.Filesystem (protocol v1, unary and server-streaming, in
// the JSON and binary protobuf codecs) that E2B's SDKs call.
//
// Where it answers: the edge hands it the requests for port 49983 of a preview host
// (49983-<id>.preview.<domain>), and the E2B listener (package e2b) those that carry the
// E2b-Sandbox-Id header. Either way the request names its sandbox in that header, set or
// overwritten by the caller of ServeHTTP, and proves itself with the sandbox's access
// token (X-Access-Token), or for /files a signed URL made from it.
//
// How it maps E2B's sandbox onto sandboxd's:
//   - Commands run through the Docker exec API as the sandbox user (lifecycle's exec),
//     with the sandbox's env. E2B's users "user" (the default) and "sandbox" are that
//     user; "root" is refused, since no sandbox process may be root.
//   - E2B's home /home/user is the sandbox home (lifecycle.Home): /home/user/x in a
//     request is /home/sandbox/x in the container, and answers show it as /home/user/x
//     again. Relative paths and "~" are under the home. Commands see the real path
//     (/home/sandbox); a command line that names /home/user literally will not find it.
//   - File calls run "sandbox-init fs" inside the container (cmd/sandbox-init/fscmd.go),
//     so /tmp (a tmpfs the host cannot see) and the image's own tree work like the home,
//     and the kernel checks every access as it does for the user's commands.
//   - A call to a sleeping sandbox wakes it (through the waker, as a preview request
//     does), except /health, which answers 502 as E2B's proxy does for a paused sandbox.
//   - Process ids are sandboxd's own numbers, unique per sandbox while sandboxd runs; they
//     are not the container's pids. Processes live in sandboxd's memory: a restart of
//     sandboxd ends them.
package envd

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem/filesystemconnect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process/processconnect"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/wake"
)

// Port is envd's port in E2B's protocol: the SDKs reach envd at <Port>-<id>.<domain>.
const Port = 49983

// Version is the envd version sandboxd answers (E2B's envdVersion). The SDKs choose
// features by it: 0.5.7 has stdin, closing stdin, the default user, recursive watches
// and octet-stream uploads; it is below 0.6.2, so the SDKs send no file metadata
// (extended attributes), which sandboxd does not store.
const Version = "0.5.7"

// Headers of E2B's protocol.
const (
	HeaderSandboxID   = "E2b-Sandbox-Id"
	HeaderSandboxPort = "E2b-Sandbox-Port"
	HeaderAccessToken = "X-Access-Token"
	headerKeepalive   = "Keepalive-Ping-Interval"
)

// Sandboxes is what envd needs from the lifecycle manager.
type Sandboxes interface {
	// Running reports whether the sandbox's container runs, from memory.
	Running(id string) (netip.Addr, bool)
	ExecStream(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error)
	Terminal(ctx context.Context, id string, req lifecycle.TerminalRequest) (lifecycle.Terminal, error)
}

// Waker brings a sleeping sandbox up (port 0: just running).
type Waker interface {
	Wake(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

// Handler is envd for every sandbox. Create it with New; set the knobs before serving.
// Close ends every process and watch it runs.
type Handler struct {
	// MaxProcesses bounds the processes running at once per sandbox. Zero means 64.
	MaxProcesses int
	// MaxWatchers bounds the directory watches (streams and watchers) per sandbox. Zero
	// means 16.
	MaxWatchers int
	// MaxFileBytes caps one uploaded file. Zero means 512 MiB.
	MaxFileBytes int64
	// InitPath is sandbox-init's path inside every sandbox. "" means /opt/sandboxd/init,
	// where lifecycle mounts it.
	InitPath string
	// OnWake, when set, is called after a request of this handler woke a sandbox that was
	// not running (package e2b restarts the sandbox's timeout then).
	OnWake func(id string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	key       []byte
	sandboxes Sandboxes
	waker     Waker
	log       *slog.Logger
	mux       *http.ServeMux
	procs     procTable
	watches   watchTable
	fsSlots   slots

	base   context.Context // canceled by Close: every process and watch ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // process and watch goroutines
}

// New returns envd over sandboxes. key signs the sandboxes' access tokens (AccessToken).
func New(key []byte, sandboxes Sandboxes, waker Waker, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	h := &Handler{key: key, sandboxes: sandboxes, waker: waker, log: log, base: base, cancel: cancel}
	h.procs.init()
	h.watches.init()
	opts := connect.WithHandlerOptions(connect.WithReadMaxBytes(maxMessageBytes))
	h.mux = http.NewServeMux()
	h.mux.Handle(processconnect.NewProcessHandler(&processService{h}, opts))
	h.mux.Handle(filesystemconnect.NewFilesystemHandler(&filesystemService{h}, opts))
	h.mux.HandleFunc("GET /health", h.health)
	h.mux.HandleFunc("GET /files", h.download)
	h.mux.HandleFunc("POST /files", h.upload)
	return h
}

// maxMessageBytes caps one RPC message a client sends (input for a process, mostly).
const maxMessageBytes = 8 << 20

// Close ends every process and watch and waits for their goroutines.
func (h *Handler) Close() {
	h.cancel()
	h.wg.Wait()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) initPath() string {
	if h.InitPath == "" {
		return "/opt/sandboxd/init"
	}
	return h.InitPath
}

// AccessToken is the envd access token of sandbox id: an HMAC of the id under key, so it
// needs no storage and differs for every sandbox. E2B answers it as envdAccessToken.
func AccessToken(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sandboxd e2b envd access token\x00" + id))
	return "sbx_" + hex.EncodeToString(m.Sum(nil))
}

type ctxKey struct{}

// sandboxOf is the sandbox id ServeHTTP checked for this request.
func sandboxOf(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// ServeHTTP serves one envd request for the sandbox named by the E2b-Sandbox-Id header.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if Preflight(w, r) {
		return
	}
	id := r.Header.Get(HeaderSandboxID)
	rpc := isRPC(r.URL.Path)
	fail := func(status int, msg string) {
		if rpc {
			writeConnectError(w, status, msg)
		} else {
			writeError(w, status, msg)
		}
	}
	if !lifecycle.ValidID(id) {
		fail(http.StatusBadRequest, "header "+HeaderSandboxID+" must name a sandbox")
		return
	}
	if p := r.Header.Get(HeaderSandboxPort); p != "" && p != "49983" {
		fail(http.StatusBadRequest, "header "+HeaderSandboxPort+" must be 49983 (envd): other ports are served at <port>-<id>.preview.<domain>")
		return
	}
	if !h.authorized(r, id) {
		fail(http.StatusUnauthorized, "a valid "+HeaderAccessToken+" for sandbox "+id+" is required")
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
}

// authorized checks the access token, or for /files a signature made from it.
func (h *Handler) authorized(r *http.Request, id string) bool {
	want := AccessToken(h.key, id)
	if got := r.Header.Get(HeaderAccessToken); got != "" {
		return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	}
	if r.URL.Path == "/files" && r.URL.Query().Get("signature") != "" {
		return validSignature(r, want, h.now())
	}
	return false
}

// isRPC reports whether p is a Connect procedure (/package.Service/Method).
func isRPC(p string) bool {
	return strings.HasPrefix(p, "/process.Process/") || strings.HasPrefix(p, "/filesystem.Filesystem/")
}

// health answers 204 while the sandbox runs and 502 otherwise, as E2B's proxy does for a
// paused sandbox: the SDKs' is_running reads it. It never wakes the sandbox.
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	id := sandboxOf(r.Context())
	if _, ok := h.sandboxes.Running(id); !ok {
		writeError(w, http.StatusBadGateway, "sandbox "+id+" is not running")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// awake makes sure the sandbox runs, waking it when it sleeps.
func (h *Handler) awake(ctx context.Context, id string) error {
	_, err := awakener{h}.Wake(ctx, id, 0)
	return err
}

// awakeFor makes sure the sandbox runs, then runs op. When op finds the container died
// since (lifecycle.ErrNotRunning, answered before anything is written), the sandbox is
// woken again and op runs once more, as admin's exec does (issue 11).
func (h *Handler) awakeFor(ctx context.Context, id string, op func() error) error {
	return wake.Do(ctx, awakener{h}, id, lifecycle.ErrNotRunning, op)
}

// awakener is the handler's waker as awake uses it: a sandbox that runs is not woken
// again, and one it woke is told to OnWake.
type awakener struct{ h *Handler }

func (a awakener) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	if ip, ok := a.h.sandboxes.Running(id); ok {
		return netip.AddrPortFrom(ip, uint16(port)), nil
	}
	ap, err := a.h.waker.Wake(ctx, id, port)
	if err != nil {
		return ap, err
	}
	if a.h.OnWake != nil {
		a.h.OnWake(id)
	}
	return ap, nil
}

// connectCode maps an error from lifecycle or wake to a Connect code. A sandbox that is
// gone is "unavailable", as E2B's proxy answers 502 for it: the SDKs then say the sandbox
// was not found or timed out, rather than that a file or process was not found.
func connectCode(err error) connect.Code {
	var ce *wake.CapacityError
	var le *lifecycle.Error
	switch {
	case errors.As(err, &ce):
		return connect.CodeResourceExhausted
	case errors.Is(err, wake.ErrTimeout):
		return connect.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	case errors.As(err, &le):
		switch le.Code {
		case lifecycle.CodeInvalid:
			return connect.CodeInvalidArgument
		case lifecycle.CodeNotFound, lifecycle.CodeConflict, lifecycle.CodeUnavailable:
			return connect.CodeUnavailable
		}
	}
	return connect.CodeInternal
}

// publicMessage is what a caller may read of err: a lifecycle error's public message, the
// waker's own words, never an internal cause.
func publicMessage(err error) string {
	var le *lifecycle.Error
	if errors.As(err, &le) {
		return le.Message
	}
	if msg, ok := wake.Explain(err); ok {
		return msg
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err.Error()
	}
	return "internal error"
}

// rpcError turns an error of lifecycle or wake into a Connect error, logging internal ones.
func (h *Handler) rpcError(err error, what string) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	code := connectCode(err)
	if code == connect.CodeInternal {
		h.log.Error("envd: "+what, "err", err)
	}
	return connect.NewError(code, errors.New(publicMessage(err)))
}

// httpStatus maps a Connect code to the status of envd's plain HTTP answers.
func httpStatus(code connect.Code) int {
	switch code {
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition:
		return http.StatusBadRequest
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists:
		return http.StatusConflict
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnavailable:
		return http.StatusBadGateway
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeError answers envd's HTTP error: {"code":<status>,"message":...}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": status, "message": msg})
}

// writeConnectError answers a Connect error outside a Connect handler (bad header, auth):
// the unary error body, which the SDKs also read for a stream refused before it began.
func writeConnectError(w http.ResponseWriter, status int, msg string) {
	code := "internal"
	switch status {
	case http.StatusBadRequest:
		code = "invalid_argument"
	case http.StatusUnauthorized:
		code = "unauthenticated"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

// validSignature checks a signed /files URL (E2B's "v1_" signature): base64 without
// padding of sha256("path:operation:username:token[:expiration]"), unexpired.
func validSignature(r *http.Request, token string, now time.Time) bool {
	q := r.URL.Query()
	op := "read"
	if r.Method == http.MethodPost {
		op = "write"
	}
	raw := q.Get("path") + ":" + op + ":" + q.Get("username") + ":" + token
	if exp := q.Get("signature_expiration"); exp != "" {
		t, err := parseUnix(exp)
		if err != nil || !now.Before(t) {
			return false
		}
		raw += ":" + exp
	}
	sum := sha256.Sum256([]byte(raw))
	want := "v1_" + base64.RawStdEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(q.Get("signature")), []byte(want)) == 1
}
