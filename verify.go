package etcdsd

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/skydns"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// confirmAfter is how long a difference found at etcd's current revision, not the
	// index's own, is given to turn out to be events still on their way.
	confirmAfter = 5 * time.Second
	// reportKeys is how many differing keys a divergence's log line names.
	reportKeys = 5
	// checkPageSize is the keys a check reads at a time. Without values a key costs some
	// 80 bytes: pages five times a list's cut the cost etcd pays to count the rest of the
	// range for every page (see index.ListPageSize) fivefold.
	checkPageSize = 5 * index.ListPageSize
)

// divergence is what one check found between the index and etcd.
type divergence struct {
	rev   int64 // the revision etcd was read at (the last span's)
	exact bool  // every span was read at the revision the index holds for it
	count int
	keys  []string // the first few: "+key" only etcd has it, "-key" only the index, "~key" at another revision
}

func (d *divergence) add(mark byte, key string) {
	d.count++
	if len(d.keys) < reportKeys {
		d.keys = append(d.keys, string(mark)+skydns.Quote(key))
	}
}

func (d *divergence) merge(o divergence) {
	d.count += o.count
	d.keys = append(d.keys, o.keys[:min(len(o.keys), reportKeys-len(d.keys))]...)
}

// verifyLoop checks the index every verifyEvery, spread by a tenth either way so that
// replicas started together do not read etcd together.
func (w *watcher) verifyLoop(ctx context.Context, c etcdConn) {
	t := time.NewTimer(spread(w.verifyEvery))
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.check(ctx, c)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warningf("Could not check the index of %s against etcd: %v", w.root, err)
			failing = true
		case err == nil:
			failing = false
		}
		t.Reset(spread(w.verifyEvery))
	}
}

func spread(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// check compares the current snapshot with etcd; on a divergence it counts and logs it
// and asks the loop for a complete list, which repairs the index while this one serves.
func (w *watcher) check(ctx context.Context, c etcdConn) error {
	s := w.snapshot()
	if s == nil {
		return nil
	}
	started := time.Now()
	d, err := w.compare(ctx, c, s)
	if err == nil && d.count > 0 && !d.exact {
		// The index's own revision is compacted away, so etcd was read at its current
		// one: events up to it may still be on their way to the watch. A difference
		// that outlasts confirmAfter is not one of them.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(confirmAfter):
		}
		d, err = w.compare(ctx, c, w.snapshot())
	}
	if err != nil {
		return err
	}
	verifyDuration.Observe(time.Since(started).Seconds())
	if d.count == 0 {
		return nil
	}
	divergencesTotal.WithLabelValues(w.root).Inc()
	log.Errorf("Index of %s differs from etcd at revision %d in %d keys (%s); listing again",
		w.root, d.rev, d.count, strings.Join(d.keys, " "))
	select {
	case w.relists <- listDivergence:
	default:
	}
	return nil
}

// compare reads the keys and mod revisions of every span of s from etcd, without values,
// at the revision s holds for the span, and compares them with s's entries.
func (w *watcher) compare(ctx context.Context, c etcdConn, s *index.Snapshot) (divergence, error) {
	d := divergence{exact: true}
	spans, applied := s.Spans()
	for i, sp := range spans {
		rev, err := w.compareSpan(ctx, c, s, sp, applied[i], &d)
		if errors.Is(err, rpctypes.ErrCompacted) {
			d.exact = false
			rev, err = w.compareSpan(ctx, c, s, sp, 0, &d)
		}
		if err != nil {
			return d, err
		}
		d.rev = rev
	}
	return d, nil
}

// compareSpan reads sp at rev (0: the current revision) page by page and compares each
// page with the index entries of the same keys. It returns the revision read.
func (w *watcher) compareSpan(ctx context.Context, c etcdConn, s *index.Snapshot, sp index.Span, rev int64, d *divergence) (int64, error) {
	from := sp.Start
	var diff divergence // this read's; added to d once it is whole
	for resp, err := range index.Pages(ctx, c, sp, rev, w.checkPaging, clientv3.WithKeysOnly()) {
		if err != nil {
			return 0, err
		}
		rev = resp.Rev
		until := sp.Last()
		if resp.More && len(resp.Kvs) > 0 {
			until = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
		s.Compare(resp.Kvs, from, until, diff.add)
		from = until
	}
	d.merge(diff)
	return rev, nil
}
