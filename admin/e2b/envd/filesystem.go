package envd

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem/filesystemconnect"
)

// filesystemService is filesystem.Filesystem: every call runs "sandbox-init fs" in the
// sandbox as the sandbox user.
type filesystemService struct{ h *Handler }

var _ filesystemconnect.FilesystemHandler = (*filesystemService)(nil)

// maxListDepth bounds ListDir's depth (the helper bounds the entries too).
const maxListDepth = 64

// prepare checks the user an RPC names and resolves its paths, for the sandbox of ctx.
func prepare(ctx context.Context, hdr http.Header, paths ...*string) (string, error) {
	user, err := basicUser(hdr)
	if err == nil {
		err = checkUser(user)
	}
	if err != nil {
		return "", connect.NewError(connect.CodeUnauthenticated, err)
	}
	for _, p := range paths {
		r, err := resolve(*p)
		if err != nil {
			return "", connect.NewError(connect.CodeInvalidArgument, err)
		}
		*p = r
	}
	return sandboxOf(ctx), nil
}

func (s *filesystemService) Stat(ctx context.Context, req *connect.Request[filesystem.StatRequest]) (*connect.Response[filesystem.StatResponse], error) {
	p := req.Msg.GetPath()
	id, err := prepare(ctx, req.Header(), &p)
	if err != nil {
		return nil, err
	}
	r, err := s.h.runFS(ctx, id, nil, nil, "stat", p)
	if err != nil {
		return nil, s.h.rpcError(err, "stat")
	}
	return connect.NewResponse(&filesystem.StatResponse{Entry: entryInfo(*r.Entry, r.UID)}), nil
}

func (s *filesystemService) MakeDir(ctx context.Context, req *connect.Request[filesystem.MakeDirRequest]) (*connect.Response[filesystem.MakeDirResponse], error) {
	p := req.Msg.GetPath()
	id, err := prepare(ctx, req.Header(), &p)
	if err != nil {
		return nil, err
	}
	r, err := s.h.runFS(ctx, id, nil, nil, "mkdir", p)
	if err != nil {
		return nil, s.h.rpcError(err, "make dir")
	}
	return connect.NewResponse(&filesystem.MakeDirResponse{Entry: entryInfo(*r.Entry, r.UID)}), nil
}

func (s *filesystemService) Move(ctx context.Context, req *connect.Request[filesystem.MoveRequest]) (*connect.Response[filesystem.MoveResponse], error) {
	from, to := req.Msg.GetSource(), req.Msg.GetDestination()
	id, err := prepare(ctx, req.Header(), &from, &to)
	if err != nil {
		return nil, err
	}
	r, err := s.h.runFS(ctx, id, nil, nil, "move", from, to)
	if err != nil {
		return nil, s.h.rpcError(err, "move")
	}
	return connect.NewResponse(&filesystem.MoveResponse{Entry: entryInfo(*r.Entry, r.UID)}), nil
}

func (s *filesystemService) ListDir(ctx context.Context, req *connect.Request[filesystem.ListDirRequest]) (*connect.Response[filesystem.ListDirResponse], error) {
	p := req.Msg.GetPath()
	id, err := prepare(ctx, req.Header(), &p)
	if err != nil {
		return nil, err
	}
	depth := req.Msg.GetDepth()
	if depth == 0 {
		depth = 1
	}
	if depth > maxListDepth {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("depth must be at most %d", maxListDepth))
	}
	r, err := s.h.runFS(ctx, id, nil, nil, "list", p, strconv.Itoa(int(depth)))
	if err != nil {
		return nil, s.h.rpcError(err, "list dir")
	}
	out := &filesystem.ListDirResponse{Entries: make([]*filesystem.EntryInfo, 0, len(r.Entries))}
	for _, e := range r.Entries {
		out.Entries = append(out.Entries, entryInfo(e, r.UID))
	}
	return connect.NewResponse(out), nil
}

func (s *filesystemService) Remove(ctx context.Context, req *connect.Request[filesystem.RemoveRequest]) (*connect.Response[filesystem.RemoveResponse], error) {
	p := req.Msg.GetPath()
	id, err := prepare(ctx, req.Header(), &p)
	if err != nil {
		return nil, err
	}
	if _, err := s.h.runFS(ctx, id, nil, nil, "remove", p); err != nil {
		return nil, s.h.rpcError(err, "remove")
	}
	return connect.NewResponse(&filesystem.RemoveResponse{}), nil
}
