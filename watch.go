package etcdsd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdsd/etcdsd/skydns"
	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// Each page of a list makes etcd count the keys from the page's start to the range's
	// end, so a list costs about keys²/(2·page) key visits: large pages keep that small.
	listPageSize = 10000
	listTimeout  = 5 * time.Second
	maxBackoff   = 5 * time.Second
	housekeeping = time.Second // how often leases and staleness are looked at

	// A watch stream is asked for progress this often, and one that has said nothing for
	// silentAfter is given up for a new one, which the client may open on another member:
	// a frozen member is left within seconds, not when TCP keepalive gives up. An index
	// that has heard nothing from etcd for staleAfter is reported stale.
	progressEvery = 250 * time.Millisecond
	silentAfter   = time.Second
	staleAfter    = 10 * time.Second
	probeTimeout  = 500 * time.Millisecond // for a member's Status, when steering
)

var (
	errWatchClosed = errors.New("watch channel closed")
	errWatchSilent = errors.New("watch silent, no progress from etcd")
)

// watcher keeps an in-memory copy of one etcd key range: it lists the range at one
// revision, then follows a watch from the next revision, and publishes an immutable
// snapshot after every batch. It is the only writer; queries only load snapshots.
type watcher struct {
	newClient  func(context.Context) (*clientv3.Client, error)
	start, end string
	leases     *leaseTable

	current atomic.Pointer[snapshot]
	fresh   atomic.Int64  // unix nanoseconds of the last word from etcd: a list, event or progress
	synced  chan struct{} // closed after the first complete list
	once    sync.Once
	cancel  context.CancelFunc
	done    chan struct{}

	// Tunables, fixed before run; tests shorten them.
	progressEvery, silentAfter, staleAfter time.Duration
	pageSize                               int64

	// Writer state, owned by the run goroutine.
	skipLog rateLimit
	cli     atomic.Pointer[clientv3.Client] // set by the run goroutine, read by housekeeping too
	all     []string                        // the configured endpoints, set once
	avoided atomic.Bool                     // the client was steered away from some of them
	tree    *btree.BTreeG[*entry]
	rev     int64
}

func newWatcher(prefix string, newClient func(context.Context) (*clientv3.Client, error)) *watcher {
	start, end := keyRange(prefix)
	return &watcher{
		newClient: newClient,
		start:     start,
		end:       end,
		leases:    newLeaseTable(),
		synced:    make(chan struct{}),
		tree:      newTree(),

		progressEvery: progressEvery,
		silentAfter:   silentAfter,
		staleAfter:    staleAfter,
		pageSize:      listPageSize,
	}
}

// age returns how long the index has heard nothing from etcd.
func (w *watcher) age(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, w.fresh.Load()))
}

func (w *watcher) markFresh(now time.Time) {
	w.fresh.Store(now.UnixNano())
	freshGauge.WithLabelValues(w.start).Set(float64(now.Unix()))
}

// client returns the current etcd client, nil before the first one is made.
func (w *watcher) client() *clientv3.Client { return w.cli.Load() }

// snapshot returns the current view of the index, or nil before the first complete list.
func (w *watcher) snapshot() *snapshot { return w.current.Load() }

// run starts the watcher's goroutines; stop ends them and closes the etcd client.
func (w *watcher) run() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.loop(ctx)
		if c := w.cli.Load(); c != nil {
			c.Close()
		}
	}()
}

func (w *watcher) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
}

// waitSynced waits up to d for the first complete list.
func (w *watcher) waitSynced(d time.Duration) bool {
	select {
	case <-w.synced:
		return true
	case <-time.After(d):
		return false
	}
}

// reconnect replaces the etcd client, retrying until it has one or ctx is done.
func (w *watcher) reconnect(ctx context.Context) error {
	if c := w.cli.Swap(nil); c != nil {
		c.Close()
	}
	b := backoff{}
	for {
		cli, err := w.newClient(ctx)
		if err == nil {
			w.cli.Store(cli)
			if w.all == nil { // the configured endpoints, before housekeeping reads them
				w.all = cli.Endpoints()
			}
			w.avoided.Store(false)
			b.recovered("connecting for " + w.start)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.fail("connecting for "+w.start, err)
		b.wait(ctx)
	}
}

func (w *watcher) loop(ctx context.Context) {
	if err := w.reconnect(ctx); err != nil {
		return
	}
	b := backoff{}

	var keeper sync.WaitGroup
	keeper.Go(func() { w.housekeep(ctx) })
	defer keeper.Wait()

	// A watcher that already holds an index (a test primes one) resumes it.
	listReason := ""
	if w.snapshot() == nil {
		listReason = "start"
	}
	for ctx.Err() == nil {
		if listReason != "" {
			if err := w.list(ctx, listReason); err != nil {
				if ctx.Err() == nil {
					b.fail("listing "+w.start, err)
					b.wait(ctx)
				}
				continue
			}
			b.recovered("listed " + w.start)
			listReason = ""
		}
		err := w.watch(ctx, &b)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrInvalidAuthToken) {
			// Some servers keep refusing a token the client resends: start afresh.
			log.Infof("etcd refused the auth token of %s; making a new client", w.start)
			if err := w.reconnect(ctx); err != nil {
				return
			}
			continue
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			// Events we have not seen are gone: read everything again, serving the old
			// snapshot meanwhile.
			log.Infof("Watch on %s fell behind compaction at revision %d, listing again", w.start, w.rev)
			listReason = "compacted"
			continue
		}
		if errors.Is(err, errWatchSilent) {
			// A frozen member keeps its TCP connection for a while: steer the client
			// away from members that do not answer, then watch again at once.
			w.steer(ctx)
			continue
		}
		b.fail("watching "+w.start, err)
		b.wait(ctx)
	}
}

// list reads the whole range at one revision in pages, builds a new tree aside and swaps
// it in whole, so that a reader never sees a partial list.
func (w *watcher) list(ctx context.Context, reason string) error {
	started := time.Now()
	tree := newTree()
	// New leases are resolved while the next pages arrive.
	var (
		leaseq   = make(chan []*lease, 4)
		resolved = make(chan int)
	)
	go func() {
		n := 0
		for batch := range leaseq {
			resolveLeases(ctx, w.client(), batch)
			n += len(batch)
		}
		resolved <- n
	}()
	rev, err := w.listPages(ctx, tree, leaseq)
	close(leaseq)
	leases := <-resolved
	if err != nil {
		// Drop the references taken so far; the old tree keeps its own.
		tree.Ascend(func(e *entry) bool { w.leases.release(e.lease); return true })
		return err
	}
	log.Infof("Listed %d keys and %d new leases under %s at revision %d in %v",
		tree.Len(), leases, w.start, rev, time.Since(started).Round(time.Millisecond))

	old := w.tree
	w.tree, w.rev = tree, rev
	old.Ascend(func(e *entry) bool { w.leases.release(e.lease); return true })
	w.publish()
	listsTotal.WithLabelValues(reason).Inc()
	listDuration.WithLabelValues(reason).Observe(time.Since(started).Seconds())
	listTimestamp.WithLabelValues(w.start).SetToCurrentTime()
	staleGauge.WithLabelValues(w.start).Set(0) // a complete list is fresh
	return nil
}

// listPages reads the range into tree page by page at the revision of the first page,
// which it returns, and sends each page's new leases to leaseq.
func (w *watcher) listPages(ctx context.Context, tree *btree.BTreeG[*entry], leaseq chan<- []*lease) (int64, error) {
	var rev int64
	from := w.start
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(w.end), clientv3.WithLimit(w.pageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		resp, err := w.client().Get(lctx, from, opts...)
		cancel()
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		var fresh []*lease
		for _, kv := range resp.Kvs {
			if !w.holds(kv.Key) {
				continue
			}
			e, l := w.reuse(kv)
			if l != nil {
				fresh = append(fresh, l)
			}
			tree.ReplaceOrInsert(e)
		}
		if len(fresh) > 0 {
			leaseq <- fresh
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// reuse returns the entry for kv, taking the one already indexed when it is the same
// revision of the key: a re-list then neither decodes nor logs a bad value again. The
// lease it returns is one seen for the first time, to resolve.
func (w *watcher) reuse(kv *mvccpb.KeyValue) (*entry, *lease) {
	if old, ok := w.tree.Get(&entry{key: string(kv.Key)}); ok && old.modRev == kv.ModRevision {
		if old.lease != nil {
			w.leases.acquire(old.lease.id)
		}
		return old, nil
	}
	return w.decode(kv)
}

// decode turns kv into an index entry. A value that does not decode is kept as a bad
// entry, counted and logged once for this revision of the key. The lease it returns is
// one seen for the first time, to resolve.
func (w *watcher) decode(kv *mvccpb.KeyValue) (*entry, *lease) {
	e := &entry{key: string(kv.Key), modRev: kv.ModRevision}
	svc, err := decodeService(e.key, kv.Value)
	if err != nil {
		e.bad = true
		skippedTotal.WithLabelValues(skydns.Reason(err)).Inc()
		if w.skipLog.allow(time.Now()) {
			log.Warningf("Skipping %s at revision %d: %v", e.key, kv.ModRevision, err)
		}
		return e, nil
	}
	e.svc = svc
	e.aliasText = svc.Text != "" && svc.Host != "" && net.ParseIP(svc.Host) == nil
	if kv.Lease == 0 {
		return e, nil
	}
	l, first := w.leases.acquire(clientv3.LeaseID(kv.Lease))
	e.lease = l
	if !first {
		return e, nil
	}
	return e, l
}

// watch follows the range from the revision after the last applied one until the watch
// fails, falls silent, or ctx is done.
func (w *watcher) watch(ctx context.Context, b *backoff) error {
	// RequireLeader ends the watch when its member loses the cluster's leader, so that the
	// client moves to a member that has one.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.client().Watch(wctx, w.start,
		clientv3.WithRange(w.end), clientv3.WithRev(w.rev+1),
		clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	tick := time.NewTicker(w.progressEvery)
	defer tick.Stop()
	heard := time.Now()
	for {
		select {
		case resp, ok := <-wch:
			if !ok {
				if err := ctx.Err(); err != nil {
					return err
				}
				return errWatchClosed
			}
			if resp.CompactRevision != 0 {
				return rpctypes.ErrCompacted
			}
			if err := resp.Err(); err != nil {
				return err
			}
			heard = time.Now()
			w.markFresh(heard)
			switch {
			case resp.Created:
				b.recovered("watching " + w.start)
			case resp.IsProgressNotify():
				// Every event up to the header revision has been delivered.
				w.rev = max(w.rev, resp.Header.Revision)
			default:
				w.apply(ctx, resp.Events)
			}
		case now := <-tick.C:
			if now.Sub(heard) > w.silentAfter {
				return errWatchSilent
			}
			// The request must carry wctx's metadata to reach this watch's stream; an
			// answer (or none) comes through wch.
			pctx, pcancel := context.WithTimeout(wctx, w.progressEvery)
			w.client().RequestProgress(pctx)
			pcancel()
		}
	}
}

// holds reports whether key is the range's root key or lies below it. The range also
// takes siblings that sort before "root0", such as "/skydns-old/x": those are not ours.
func (w *watcher) holds(key []byte) bool {
	n := len(w.start)
	return w.start == "/" || bytes.HasPrefix(key, []byte(w.start)) && (len(key) == n || key[n] == '/')
}

// apply applies one batch of events in order and publishes the result.
func (w *watcher) apply(ctx context.Context, events []*clientv3.Event) {
	var fresh []*lease
	for _, ev := range events {
		kv := ev.Kv
		if kv.ModRevision <= w.rev {
			continue
		}
		if !w.holds(kv.Key) {
			w.rev = kv.ModRevision
			continue
		}
		var old *entry
		switch ev.Type {
		case clientv3.EventTypePut:
			e, l := w.decode(kv)
			if l != nil {
				fresh = append(fresh, l)
			}
			old, _ = w.tree.ReplaceOrInsert(e)
			eventsTotal.WithLabelValues("put").Inc()
		case clientv3.EventTypeDelete:
			old, _ = w.tree.Delete(&entry{key: string(kv.Key)})
			eventsTotal.WithLabelValues("delete").Inc()
		}
		if old != nil {
			w.leases.release(old.lease)
		}
		w.rev = kv.ModRevision
	}
	// A key's TTL is bounded by its lease: learn the lease before the key is served.
	resolveLeases(ctx, w.client(), fresh)
	w.publish()
}

func (w *watcher) publish() {
	w.skipLog.flush()
	w.markFresh(time.Now())
	w.current.Store(&snapshot{tree: w.tree.Clone(), rev: w.rev})
	revisionGauge.WithLabelValues(w.start).Set(float64(w.rev))
	keysGauge.WithLabelValues(w.start).Set(float64(w.tree.Len()))
	w.once.Do(func() { close(w.synced) })
}

// steer points the client at the members that answer a Status call, when some do not.
func (w *watcher) steer(ctx context.Context) {
	answering := probe(ctx, w.client(), w.all)
	if len(answering) == 0 || len(answering) == len(w.all) {
		return
	}
	log.Warningf("etcd members %v do not answer; watching %s through %v", missing(w.all, answering), w.start, answering)
	w.client().SetEndpoints(answering...)
	w.avoided.Store(true)
}

// restore gives the client all configured endpoints back once they all answer.
func (w *watcher) restore(ctx context.Context) {
	cli := w.client()
	if cli == nil || !w.avoided.Load() {
		return
	}
	all := cli.Endpoints()
	if len(probe(ctx, cli, w.all)) == len(w.all) {
		log.Infof("etcd members answer again; using all of %v for %s (was %v)", w.all, w.start, all)
		cli.SetEndpoints(w.all...)
		w.avoided.Store(false)
	}
}

// probe returns the endpoints that answer a Status call in time.
func probe(ctx context.Context, cli *clientv3.Client, endpoints []string) []string {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out []string
	)
	for _, ep := range endpoints {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if _, err := cli.Status(pctx, ep); err == nil {
				mu.Lock()
				out = append(out, ep)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(out)
	return out
}

func missing(all, some []string) []string {
	var out []string
	for _, e := range all {
		if !slices.Contains(some, e) {
			out = append(out, e)
		}
	}
	return out
}

// housekeep refreshes due leases and notes when the index turns stale or fresh again.
func (w *watcher) housekeep(ctx context.Context) {
	t := time.NewTicker(housekeeping)
	defer t.Stop()
	stale := false
	for {
		select {
		case <-ctx.Done():
			// The series stays, like the other gauges: after a reload the new instance
			// of the same prefix owns it.
			return
		case now := <-t.C:
			if w.snapshot() == nil {
				continue
			}
			if age := w.age(now); (age > w.staleAfter) != stale {
				stale = !stale
				if stale {
					log.Warningf("Index of %s is stale: no word from etcd for %s; answering from it", w.start, age.Round(time.Second))
					staleGauge.WithLabelValues(w.start).Set(1)
				} else {
					log.Infof("Index of %s is fresh again", w.start)
					staleGauge.WithLabelValues(w.start).Set(0)
				}
			}
			resolveLeases(ctx, w.client(), w.leases.due(now))
			w.restore(ctx)
		}
	}
}

// rateLimit lets a few log lines a second through and says how many it held back, so
// that a storm of bad values cannot flood the log.
type rateLimit struct {
	second time.Time
	n      int
	held   int
}

const logsPerSecond = 10

func (r *rateLimit) allow(now time.Time) bool {
	if s := now.Truncate(time.Second); !s.Equal(r.second) {
		r.flush()
		r.second, r.n = s, 0
	}
	if r.n < logsPerSecond {
		r.n++
		return true
	}
	r.held++
	return false
}

// flush reports the lines held back so far.
func (r *rateLimit) flush() {
	if r.held > 0 {
		log.Warningf("%d more skipped values not logged; see coredns_etcdsd_skipped_values_total", r.held)
		r.held = 0
	}
}

// backoff spaces out retries and logs a failure once when it starts, not on every retry.
type backoff struct {
	delay   time.Duration
	failing bool
}

func (b *backoff) fail(what string, err error) {
	if !b.failing {
		log.Warningf("Failed %s, retrying: %v", what, err)
		b.failing = true
	}
}

func (b *backoff) recovered(what string) {
	if b.failing {
		log.Infof("Recovered: %s", what)
	}
	b.failing = false
	b.delay = 0
}

func (b *backoff) wait(ctx context.Context) {
	b.delay = min(max(2*b.delay, 100*time.Millisecond), maxBackoff)
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
