package envd

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process"
	"google.golang.org/protobuf/proto"
)

// The Connect protocol as the SDKs see it on the wire: envelopes, end-of-stream frames and
// unary errors, in the JSON and binary protobuf codecs.

// frame is one Connect envelope: flags, then the message.
type frame struct {
	flags byte
	data  []byte
}

func envelope(flags byte, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(data)))
	return append(b, data...)
}

// rawStream sends one Connect streaming request and reads every envelope of the answer.
func (h *harness) rawStream(t *testing.T, procedure, contentType string, msg []byte, extra http.Header) (*http.Response, []frame) {
	t.Helper()
	req, err := http.NewRequestWithContext(within(t, time.Minute), "POST", h.srv.URL+procedure, bytes.NewReader(envelope(0, msg)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h.headers() {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Connect-Protocol-Version", "1")
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var frames []frame
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(resp.Body, hdr[:]); errors.Is(err, io.EOF) {
			return resp, frames
		} else if err != nil {
			t.Fatalf("read envelope: %v", err)
		}
		data := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			t.Fatalf("read envelope body: %v", err)
		}
		frames = append(frames, frame{hdr[0], data})
	}
}

// testEnvelopesJSON: a Start in the JSON codec (E2B's SDKs) answers 200, one envelope per
// event (start, data, end) with flags 0, then the end-of-stream envelope, flags 2, "{}".
func testEnvelopesJSON(t *testing.T, h *harness) {
	msg := []byte(`{"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi; exit 2"]}}`)
	resp, frames := h.rawStream(t, "/process.Process/Start", "application/connect+json", msg, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/connect+json" {
		t.Fatalf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(frames) != 4 {
		t.Fatalf("%d envelopes: %q", len(frames), frames)
	}
	// Each message is protojson with E2B's field names: decode it as plain JSON.
	var events []map[string]map[string]map[string]any
	for i, f := range frames[:3] {
		var ev map[string]map[string]map[string]any
		if err := json.Unmarshal(f.data, &ev); f.flags != 0 || err != nil {
			t.Fatalf("envelope %d: flags %d %s (%v)", i, f.flags, f.data, err)
		}
		events = append(events, ev)
	}
	if pid, _ := events[0]["event"]["start"]["pid"].(float64); pid == 0 {
		t.Errorf("start event %v", events[0])
	}
	if out := events[1]["event"]["data"]["stdout"]; out != "aGkK" { // base64 of "hi\n"
		t.Errorf("data event %v", events[1])
	}
	if end := events[2]["event"]["end"]; end["exitCode"] != 2.0 || end["exited"] != true || end["status"] != "exit status 2" {
		t.Errorf("end event %v", events[2])
	}
	if end := frames[3]; end.flags != 2 || strings.TrimSpace(string(end.data)) != "{}" {
		t.Errorf("end of stream: flags %d %q", end.flags, end.data)
	}
}

// testEnvelopesProto: the same in the binary protobuf codec; the end-of-stream envelope is
// JSON in both codecs.
func testEnvelopesProto(t *testing.T, h *harness) {
	msg, _ := proto.Marshal(bashStart("echo hi >&2; exit 0"))
	resp, frames := h.rawStream(t, "/process.Process/Start", "application/connect+proto", msg, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/connect+proto" || len(frames) != 4 {
		t.Fatalf("answer %d %q, %d envelopes", resp.StatusCode, resp.Header.Get("Content-Type"), len(frames))
	}
	var events []*process.ProcessEvent
	for _, f := range frames[:3] {
		var r process.StartResponse
		if f.flags != 0 {
			t.Fatalf("message envelope with flags %d", f.flags)
		}
		if err := proto.Unmarshal(f.data, &r); err != nil {
			t.Fatalf("envelope is not a StartResponse: %v", err)
		}
		events = append(events, r.Event)
	}
	if events[0].GetStart().GetPid() == 0 || string(events[1].GetData().GetStderr()) != "hi\n" ||
		events[2].GetEnd().GetExitCode() != 0 || !events[2].GetEnd().GetExited() {
		t.Fatalf("events %v", events)
	}
	if end := frames[3]; end.flags != 2 || strings.TrimSpace(string(end.data)) != "{}" {
		t.Errorf("end of stream: flags %d %q", end.flags, end.data)
	}
}

// testEndOfStreamError: a stream that fails answers 200 and its error in the end-of-stream
// envelope, in either codec.
func testEndOfStreamError(t *testing.T, h *harness) {
	for _, ct := range []string{"application/connect+json", "application/connect+proto"} {
		msg := []byte(`{"process":{"cmd":"/bin/bash","cwd":"/home/user/no/such/dir"}}`)
		if strings.HasSuffix(ct, "proto") {
			cwd := "/home/user/no/such/dir"
			msg, _ = proto.Marshal(&process.StartRequest{Process: &process.ProcessConfig{Cmd: "/bin/bash", Cwd: &cwd}})
		}
		resp, frames := h.rawStream(t, "/process.Process/Start", ct, msg, nil)
		if resp.StatusCode != 200 || len(frames) != 1 || frames[0].flags != 2 {
			t.Fatalf("%s: %d, %q", ct, resp.StatusCode, frames)
		}
		var end struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(frames[0].data, &end); err != nil {
			t.Fatal(err)
		}
		if end.Error.Code != "invalid_argument" || end.Error.Message != "cwd '/home/user/no/such/dir' does not exist" {
			t.Fatalf("%s: end of stream %s", ct, frames[0].data)
		}
	}
}

// testUnaryErrors: a unary error is its HTTP status and {"code","message"}, as the SDKs
// parse it.
func testUnaryErrors(t *testing.T, h *harness) {
	req, _ := http.NewRequest("POST", h.srv.URL+"/filesystem.Filesystem/Stat", strings.NewReader(`{"path":"/home/user/nope.txt"}`))
	for k, v := range h.headers() {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code, Message string }
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 404 || e.Code != "not_found" || !strings.Contains(e.Message, "/home/user/nope.txt") {
		t.Fatalf("stat of a missing file: %d %+v", resp.StatusCode, e)
	}
	// The generated client in the binary codec reads the same error.
	ctx := within(t, time.Minute)
	_, err = h.process(false).SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{
		Process: &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: 4242}}, Signal: process.Signal_SIGNAL_SIGKILL}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("kill of an unknown pid: %v", err)
	}
}
