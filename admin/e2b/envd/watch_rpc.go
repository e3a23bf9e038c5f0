package envd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem"
)

// WatchDir streams the events under a directory until the caller leaves, the stream's
// timeout (Connect-Timeout-Ms) passes, or the watch fails.
func (s *filesystemService) WatchDir(ctx context.Context, req *connect.Request[filesystem.WatchDirRequest], stream *connect.ServerStream[filesystem.WatchDirResponse]) error {
	p := req.Msg.GetPath()
	id, err := prepare(ctx, req.Header(), &p)
	if err != nil {
		return err
	}
	w, err := s.h.startWatch(ctx, id, p, req.Msg.GetRecursive(), req.Msg.GetIncludeEntry(), streamTimeout(ctx))
	if err != nil {
		return err
	}
	defer w.Stop()
	if err := stream.Send(&filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Start{Start: &filesystem.WatchDirResponse_StartEvent{}}}); err != nil {
		return err
	}
	ka := newKeepalive(req.Header().Get(headerKeepalive))
	defer ka.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.done:
			for _, ev := range w.take() {
				if err := stream.Send(&filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Filesystem{Filesystem: ev}}); err != nil {
					return err
				}
			}
			if err := w.failure(); err != nil {
				return err
			}
			return nil
		case <-ka.C():
			if err := stream.Send(&filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Keepalive{Keepalive: &filesystem.WatchDirResponse_KeepAlive{}}}); err != nil {
				return err
			}
		case <-w.ready:
			for _, ev := range w.take() {
				if err := stream.Send(&filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Filesystem{Filesystem: ev}}); err != nil {
					return err
				}
			}
			ka.Reset()
		}
	}
}

// CreateWatcher starts a watch whose events wait for GetWatcherEvents.
func (s *filesystemService) CreateWatcher(ctx context.Context, req *connect.Request[filesystem.CreateWatcherRequest]) (*connect.Response[filesystem.CreateWatcherResponse], error) {
	p := req.Msg.GetPath()
	id, err := prepare(ctx, req.Header(), &p)
	if err != nil {
		return nil, err
	}
	w, err := s.h.startWatch(ctx, id, p, req.Msg.GetRecursive(), req.Msg.GetIncludeEntry(), 0)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	rand.Read(b[:])
	wid := hex.EncodeToString(b[:])
	s.h.watches.mu.Lock()
	s.h.watches.watchers[wid] = w
	s.h.watches.mu.Unlock()
	// Forget the watcher once it ends by itself and its last events are read or never
	// will be: the map must not keep what the sandbox no longer runs.
	s.h.wg.Add(1)
	go func() {
		defer s.h.wg.Done()
		<-w.done
		select {
		case <-s.h.base.Done():
		case <-time.After(watcherLinger):
		}
		s.h.watches.mu.Lock()
		if s.h.watches.watchers[wid] == w {
			delete(s.h.watches.watchers, wid)
		}
		s.h.watches.mu.Unlock()
	}()
	return connect.NewResponse(&filesystem.CreateWatcherResponse{WatcherId: wid}), nil
}

// watcherLinger is how long an ended watcher still answers with its last events and why
// it ended.
const watcherLinger = time.Minute

// watcher finds a watcher of the request's sandbox.
func (s *filesystemService) watcher(ctx context.Context, wid string) (*watch, error) {
	s.h.watches.mu.Lock()
	w := s.h.watches.watchers[wid]
	s.h.watches.mu.Unlock()
	if w == nil || w.sandbox != sandboxOf(ctx) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("watcher "+wid+" not found"))
	}
	return w, nil
}

// GetWatcherEvents returns the events since the last call; once the watch has failed, it
// returns the events left and then the failure.
func (s *filesystemService) GetWatcherEvents(ctx context.Context, req *connect.Request[filesystem.GetWatcherEventsRequest]) (*connect.Response[filesystem.GetWatcherEventsResponse], error) {
	if _, err := prepare(ctx, req.Header()); err != nil {
		return nil, err
	}
	w, err := s.watcher(ctx, req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	events := w.take()
	if len(events) == 0 && select1(w.done) {
		if err := w.failure(); err != nil {
			return nil, err
		}
	}
	if events == nil {
		events = []*filesystem.FilesystemEvent{}
	}
	return connect.NewResponse(&filesystem.GetWatcherEventsResponse{Events: events}), nil
}

// RemoveWatcher stops a watcher.
func (s *filesystemService) RemoveWatcher(ctx context.Context, req *connect.Request[filesystem.RemoveWatcherRequest]) (*connect.Response[filesystem.RemoveWatcherResponse], error) {
	if _, err := prepare(ctx, req.Header()); err != nil {
		return nil, err
	}
	w, err := s.watcher(ctx, req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	w.Stop()
	s.h.watches.mu.Lock()
	delete(s.h.watches.watchers, req.Msg.GetWatcherId())
	s.h.watches.mu.Unlock()
	return connect.NewResponse(&filesystem.RemoveWatcherResponse{}), nil
}

func select1(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
