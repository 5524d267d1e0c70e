package etcdsd

import (
	"context"
	"errors"
	"io"

	"github.com/etcdsd/etcdsd/internal/index"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// watchStream is a gRPC watch stream of the watcher's own, with one watch per span. The
// watcher does not use clientv3's Watcher, which resumes a broken stream by itself from
// the revision after the last response it saw: a progress notification's too, which
// servers before 3.4.25 and 3.5.8 answer ahead of events still to come (etcd-io/etcd#15220),
// and a revision compaction may have emptied of a DELETE, which servers before 3.4.34 and
// 3.5.16 then never deliver (#18089). That resume is hidden from its user, who cannot
// check it. Here a stream that breaks ends, and the watcher resumes from the revision it
// has applied, after reading at it (watcher.history). A stream of its own also shares
// nothing with another watch, as watches of one context share clientv3's, where servers
// before 3.4.31 and 3.5.13 let a slow watcher skip events (#17529).
type watchStream struct {
	stream    etcdserverpb.Watch_WatchClient
	responses chan spanResponse // closed when the stream ends; err says why
	err       error
}

// spanResponse is one response of a watchStream, to the watch of spans[span].
type spanResponse struct {
	span int
	clientv3.WatchResponse
}

// openWatch opens a stream on c and creates on it a watch of each span from revision
// from[i] (progress notified, created notified). It waits until the client has a
// connection: a client that cannot authenticate never has, so the caller opens it aside.
func openWatch(ctx context.Context, c etcdConn, spans []index.Span, from []int64) (*watchStream, error) {
	s, err := c.WatchStream(ctx)
	if err != nil {
		return nil, rpctypes.Error(err)
	}
	for i, sp := range spans {
		create := &etcdserverpb.WatchCreateRequest{Key: []byte(sp.Start), RangeEnd: []byte(sp.End), StartRevision: from[i], ProgressNotify: true}
		if err := s.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: create}}); err != nil {
			return nil, rpctypes.Error(err)
		}
	}
	ws := &watchStream{stream: s, responses: make(chan spanResponse)}
	go ws.receive(ctx)
	return ws, nil
}

// receive moves the stream's responses to ws.responses until the stream ends. etcd (and
// its gRPC proxy) answers creates in order: the k-th created response names the watch of
// spans[k]. A response to a progress request names no watch, and is taken as span 0's.
func (ws *watchStream) receive(ctx context.Context) {
	defer close(ws.responses)
	spans := map[int64]int{}
	for {
		resp, err := ws.stream.Recv()
		if err != nil {
			ws.err = rpctypes.Error(err)
			if errors.Is(err, io.EOF) {
				ws.err = errWatchClosed
			}
			return
		}
		span, ok := spans[resp.WatchId]
		if resp.Created && !ok {
			span = len(spans)
			spans[resp.WatchId] = span
		}
		wr := clientv3.WatchResponse{Header: resp.Header, Created: resp.Created, Canceled: resp.Canceled,
			CompactRevision: resp.CompactRevision, CancelReason: resp.CancelReason, Events: make([]*clientv3.Event, len(resp.Events))}
		for i, ev := range resp.Events {
			wr.Events[i] = (*clientv3.Event)(ev)
		}
		select {
		case ws.responses <- spanResponse{span, wr}:
		case <-ctx.Done():
			ws.err = ctx.Err()
			return
		}
	}
}

// requestProgress asks etcd for a progress notification on the stream. Only the watch
// loop sends on the stream once it is open.
func (ws *watchStream) requestProgress() error {
	return ws.stream.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_ProgressRequest{
		ProgressRequest: &etcdserverpb.WatchProgressRequest{}}})
}

// WatchStream opens a watch stream on the client's connection, waiting for the connection
// to be ready, as clientv3's Watcher does: the client's interceptors get its auth token.
func (c *conn) WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error) {
	return etcdserverpb.NewWatchClient(c.client().ActiveConnection()).Watch(ctx, grpc.WaitForReady(true))
}
