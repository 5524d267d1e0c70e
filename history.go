package etcdsd

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/etcdsd/etcdsd/internal/index"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// missed reports whether etcd holds changes to the zone that the index lacks: a key at or
// below the root written after the revision its span has reached, or another number of
// keys there (a delete). A watch through a gRPC proxy can hear nothing more while every
// status request is answered (etcd-io/etcd#21813); this read, made only after such a
// quiet, finds it. Its cost is a keys-only walk of the zone's index in etcd.
func (w *watcher) missed(ctx context.Context, c etcdConn) bool {
	rctx, cancel := context.WithTimeout(ctx, index.PageTimeout)
	defer cancel()
	var keys int64
	_, err := index.ReadZone(w.root, false, func(s index.Span) error {
		resp, err := c.Get(rctx, s.Start, clientv3.WithRange(s.End), clientv3.WithCountOnly())
		if err == nil {
			keys += resp.Count
		}
		return err
	})
	if err != nil {
		return false // etcd away: nothing to tell
	}
	if keys != int64(w.b.Len()) {
		return true
	}
	for i, s := range w.b.Spans() {
		resp, err := c.Get(rctx, s.Start, clientv3.WithRange(s.End), clientv3.WithKeysOnly(),
			clientv3.WithMinModRev(w.b.Applied()[i]+1))
		if err != nil {
			return false
		}
		for _, kv := range resp.Kvs {
			if w.b.Holds(kv.Key) {
				return true
			}
		}
	}
	return false
}

// history is what a read at the revision the index has reached says of etcd's history.
type history int

const (
	historyKept      history = iota // etcd holds the index's history from its revision on
	historyUnknown                  // etcd did not answer
	historyCompacted                // etcd compacted the revision a watch resumes from
	historyRestored                 // etcd's history is not the index's (index.Builder.Heard)
)

// ends reports whether h ends the watch: the index must be listed again.
func (h history) ends() bool { return h == historyCompacted || h == historyRestored }

// next is what the watch loop does after h, when h ends the watch.
func (h history) next() next {
	if h == historyRestored {
		return next{step: stepList, reason: listRestored}
	}
	return afterError(rpctypes.ErrCompacted)
}

// history reads, linearizably, at the lowest revision the index's spans have reached, the
// key the index wrote last (index.Builder.Witness), keys only, else the zone's first key,
// count only: etcd answers ErrCompacted when compaction passed the revision after it
// (from which a watch resumes), ErrFutureRev when its revision is below it, a header of
// another cluster or term, or the witness at other revisions, when its history was
// replaced. Both keys are ones the role may read. It also returns etcd's current
// revision, 0 when unknown.
func (w *watcher) history(ctx context.Context, c etcdConn) (history, int64) {
	rctx, cancel := context.WithTimeout(ctx, index.PageTimeout)
	defer cancel()
	rev := max(slices.Min(w.b.Applied()), 1)
	key, opt := w.b.Spans()[0].Start, clientv3.WithCountOnly()
	witness, agrees, ok := w.b.Witness(rev)
	if ok {
		key, opt = witness, clientv3.WithKeysOnly()
	}
	resp, err := c.Get(rctx, key, clientv3.WithRev(rev), opt)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return historyCompacted, 0
	case errors.Is(err, rpctypes.ErrFutureRev):
		return historyRestored, 0
	case err != nil:
		return historyUnknown, 0
	case w.heard(resp.Header), ok && !agrees(resp.Kvs):
		return historyRestored, resp.Header.Revision
	}
	return historyKept, resp.Header.Revision
}

// confirm looks into a header that is behind the index's history with a linearizable read
// (watcher.history), at most once per silentAfter (*last): a member that lags, as one a
// watch moved to may (etcd-io/etcd#20221), sends several. It reports whether the watch
// ends, and how.
func (w *watcher) confirm(ctx context.Context, c etcdConn, last *time.Time) (next, bool) {
	if time.Since(*last) < w.silentAfter {
		return next{}, false
	}
	*last = time.Now()
	v, _ := w.history(ctx, c)
	return v.next(), v.ends()
}

// lookInto looks into a watch through a gRPC proxy that has delivered nothing for long:
// the proxy may have joined it to a watch of etcd's that has ended (etcd-io/etcd#21813).
// A read at the index's revision tells whether it was compacted or replaced, and, when
// anything was written since, whether the index missed changes: each means a list.
// Otherwise the watch is made again from one revision earlier.
func (w *watcher) lookInto(ctx context.Context, c etcdConn) next {
	v, current := w.history(ctx, c)
	switch {
	case v.ends():
		return v.next()
	case v == historyUnknown:
		// Status answers come on connections of their own: the client's connection is
		// dead, which its keepalive would find only minutes later (keepaliveTime).
		return next{step: stepRedial, why: "etcd answers, but the client of %s hears nothing on its connection"}
	case current > w.b.Reached() && w.missed(ctx, c):
		log.Warningf("The watch of %s through a gRPC proxy missed changes (etcd-io/etcd#21813); listing again", w.root)
		return next{step: stepList, reason: listMissed}
	}
	// Nothing written anywhere in etcd since, or nothing missed.
	return next{step: stepEarlier}
}
