package etcdsd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// defaultVerify is how often the index is checked against etcd. A check reads every
	// key of the zone without values: see the README for its cost.
	defaultVerify = 10 * time.Minute
	// confirmAfter is how long a difference found at etcd's current revision, not the
	// index's own, is given to turn out to be events still on their way.
	confirmAfter = 5 * time.Second
	// reportKeys is how many differing keys a divergence's log line names.
	reportKeys = 5
	// checkPageSize is the keys a check reads at a time. Without values a key costs some
	// 80 bytes: pages five times a list's cut the cost etcd pays to count the rest of the
	// range for every page (see listPageSize) fivefold.
	checkPageSize = 5 * listPageSize
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
		d.keys = append(d.keys, string(mark)+key)
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
func (w *watcher) compare(ctx context.Context, c etcdConn, s *snapshot) (divergence, error) {
	d := divergence{exact: true}
	for i, sp := range s.spans {
		rev, err := w.compareSpan(ctx, c, s, sp, s.applied[i], &d)
		if errors.Is(err, rpctypes.ErrCompacted) {
			d.exact = false
			rev, err = w.compareSpan(ctx, c, s, sp, 0, &d)
		}
		if err != nil {
			return d, fmt.Errorf("reading %v: %w", sp, err)
		}
		d.rev = rev
	}
	return d, nil
}

// compareSpan reads sp at rev (0: the current revision) page by page and compares each
// page with the index entries of the same keys. It returns the revision read.
func (w *watcher) compareSpan(ctx context.Context, c etcdConn, s *snapshot, sp span, rev int64, d *divergence) (int64, error) {
	from := sp.start
	var diff divergence // this read's; added to d once it is whole
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(sp.end), clientv3.WithLimit(w.checkPage), clientv3.WithKeysOnly()}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, listTimeout)
		resp, err := c.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return 0, err
		}
		rev = resp.Header.Revision
		until := sp.last()
		if resp.More && len(resp.Kvs) > 0 {
			until = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
		w.comparePage(s, resp.Kvs, from, until, &diff)
		if until == sp.last() {
			break
		}
		from = until
	}
	d.merge(diff)
	return rev, nil
}

// comparePage compares the held keys of one page, read from etcd, with the index entries
// in [from, until), both in key order.
func (w *watcher) comparePage(s *snapshot, kvs []*mvccpb.KeyValue, from, until string, d *divergence) {
	var idx []*entry
	s.tree.AscendRange(&entry{key: relBound(s.root, from)}, &entry{key: relBound(s.root, until)}, func(e *entry) bool {
		idx = append(idx, e)
		return true
	})
	j := 0
	for _, kv := range kvs {
		if !w.b.holds(kv.Key) {
			continue
		}
		key := relKey(s.root, string(kv.Key))
		for j < len(idx) && idx[j].key < key {
			d.add('-', fullKey(s.root, idx[j].key))
			j++
		}
		switch {
		case j == len(idx) || idx[j].key > key:
			d.add('+', fullKey(s.root, key))
		case idx[j].modRev != kv.ModRevision:
			d.add('~', fullKey(s.root, key))
			j++
		default:
			j++
		}
	}
	for ; j < len(idx); j++ {
		d.add('-', fullKey(s.root, idx[j].key))
	}
}
