package etcdsd

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdsd/etcdsd/internal/index"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	housekeeping = time.Second // how often leases and staleness are looked at

	// A watch stream is asked for progress this often, and one that has said nothing for
	// silentAfter is given up for a new one, which the client may open on another member:
	// a frozen member is left within seconds, not when TCP keepalive gives up. An index
	// that has heard nothing from etcd for staleAfter is reported stale.
	progressEvery = 250 * time.Millisecond
	silentAfter   = time.Second
	staleAfter    = 10 * time.Second
	// redialAfter is how long a client whose members all answer may deliver nothing
	// before it is replaced (watcher.unstick).
	redialAfter = 2 * silentAfter
	// relistSpread is the longest a watch that fell behind compaction waits, at random,
	// before it lists again: the replicas that were cut off from etcd together come back
	// together, and their lists, each a read of the whole zone, arrive spread over it
	// rather than as one storm. The old snapshot serves meanwhile.
	relistSpread = 2 * time.Second
	// Through a gRPC proxy a quiet watch is looked at after proxyRewatch, give or take
	// half: the proxy joins a new watch to any earlier one on the same range, even one
	// whose watch on etcd has ended, by compaction say, and which delivers nothing more
	// (etcd-io/etcd#21813, #10650); a status answer cannot tell. A read at the watch's
	// revision tells whether it was compacted, and one of the keys written since whether
	// it missed changes (watcher.missed): either way the zone is listed again. Otherwise
	// the watch is made again from one revision earlier.
	proxyRewatch = 30 * time.Second
)

var errWatchClosed = errors.New("watch channel closed")

// watcher keeps the index of one zone's keys: its loop moves list pages and watch
// responses from the etcd connection to the builder and publishes a snapshot after every
// change (publisher); queries only load snapshots.
type watcher struct {
	watchConfig
	timing
	publisher
	b       *index.Builder // written by the loop goroutine only
	peer    peer           // what the watches have learnt of etcd
	relists chan string    // from the verifier to the loop
	promote atomic.Bool    // a new leader extended every lease (Builder.PromoteLeases)
	wake    chan struct{}  // housekeeping runs at once
	cancel  context.CancelFunc
	done    chan struct{}
	skipLog rateLimit // the loop's
}

// timing is how often a watcher looks at etcd and how it reads it: fixed before run;
// tests shorten it.
type timing struct {
	progressEvery, silentAfter, staleAfter time.Duration
	relistSpread, proxyRewatch             time.Duration
	paging, checkPaging                    index.Paging // of lists, of self-checks
}

// watchConfig is what a zone's watcher is made with: its zone, its etcd, and its stanza's
// options. It does not change once the watcher is made.
type watchConfig struct {
	root    string // the zone root's key, as in builder.root
	source  string // which etcd, as whom: a reload's watcher adopts only the same source's index
	connect func(context.Context) (etcdConn, error)
	// now is the stanza's clock (Etcdsd.Now) for staleness, lease expiries and leased
	// TTLs; watch silence is timed by tickers. nil: time.Now.
	now          func() time.Time
	verifyEvery  time.Duration // verify; 0: no self-check
	journalSize  int           // ixfr_journal: changes kept for IXFR; 0: none
	answerBudget uint64        // answer_cache: bytes of prepared answers; 0: none
}

func newWatcher(cfg watchConfig) *watcher {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	w := &watcher{
		watchConfig: cfg,
		publisher:   newPublisher(cfg),
		b:           index.NewBuilder(cfg.root),
		relists:     make(chan string, 1),
		wake:        make(chan struct{}, 1),
		timing: timing{
			progressEvery: progressEvery,
			silentAfter:   silentAfter,
			staleAfter:    staleAfter,
			relistSpread:  relistSpread,
			proxyRewatch:  proxyRewatch,
			paging:        index.ListPaging,
			checkPaging:   index.Paging{Size: checkPageSize, Timeout: index.PageTimeout},
		},
	}
	w.b.Skipped = w.skipped
	return w
}

// heard hands the header of an answer from etcd's current term (a linearizable read, a
// watch response, the status of a member with a leader) to the builder, and reports
// whether it is behind the index's history (index.Builder.Heard). A new term means a new
// leader, which extends every lease (the lessor's Promote, also at every restart):
// housekeeping sets their expiries anew.
func (w *watcher) heard(h *etcdserverpb.ResponseHeader) (behind bool) {
	newTerm, behind := w.b.Heard(h)
	if newTerm {
		w.promoteLeases()
	}
	return behind
}

func (w *watcher) promoteLeases() {
	w.promote.Store(true)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// mark prepares the next list for why it is made: a divergence or a replaced history
// means that an entry at the same revision of its key may hold another value.
func (w *watcher) mark(reason string) {
	switch reason {
	case listRestored:
		w.b.Restored()
	case listDivergence:
		w.b.Forget()
	}
}

// run starts the watcher's goroutines; stop ends them and closes the etcd client. A
// watcher that has listed before resumes its watches where they were.
func (w *watcher) run() {
	w.succeed()
	divergencesTotal.WithLabelValues(w.root) // exported at 0 from the start, for alerts on its increase
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.loop(ctx)
	}()
}

func (w *watcher) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.retire()
}

func (w *watcher) loop(ctx context.Context) {
	c := w.dial(ctx)
	if c == nil {
		return
	}
	defer c.Close()
	var helpers sync.WaitGroup
	defer helpers.Wait() // before the client closes
	helpers.Go(func() { w.housekeep(ctx, c) })
	if w.verifyEvery > 0 {
		helpers.Go(func() { w.verifyLoop(ctx, c) })
	}

	listing, watching := newRetry("listing "+w.root), newRetry("watching "+w.root)
	reason, earlier := "", int64(0)
	if w.b.Spans() == nil {
		reason = listStart
	}
	for ctx.Err() == nil {
		if reason != "" {
			if err := w.list(ctx, c, reason); err != nil {
				err = explain(ctx, c, err)
				w.noteFailure(err)
				if !definitive(err) {
					w.unstick(ctx, c, listing)
				}
				listing.fail(ctx, err)
				continue
			}
			listing.ok()
			reason = ""
		}
		n := w.watch(ctx, c, watching, earlier)
		earlier = 0
		if ctx.Err() != nil {
			return
		}
		switch n.step {
		case stepList:
			if n.err != nil {
				watching.fail(ctx, n.err)
			}
			reason = n.reason
			w.mark(reason)
		case stepListLater:
			wait := time.Duration(rand.Int64N(int64(w.relistSpread) + 1))
			log.Infof("Watch on %s fell behind compaction past revision %v, listing again in %v", w.root, w.b.Applied(), wait.Round(time.Millisecond))
			reason = n.reason
			sleep(ctx, wait)
		case stepEarlier:
			// A new watch at once, from one revision earlier than this one was (events
			// already applied are skipped): the proxy joins a watch only to one that
			// started no earlier, so never to the dead one this may have been.
			earlier = 1
		case stepSteer:
			w.unstick(ctx, c, watching)
		case stepRedial:
			log.Infof(n.why+"; making a new client", w.root)
			if err := c.redial(ctx); err != nil {
				watching.fail(ctx, err)
			}
		default:
			watching.fail(ctx, explain(ctx, c, n.err))
		}
	}
}

// unstick is called when etcd has said nothing for a while. A frozen member keeps its TCP
// connection for a while: the client is steered away from members that do not answer,
// and the watch starts again at once. When every member answers and yet nothing has come
// for redialAfter, the client itself is what is stuck: a client of etcd 3.5 or later
// keeps sending a restarted etcd 3.4 with auth on the token it forgot, and never gets a
// new one. A new client authenticates afresh.
func (w *watcher) unstick(ctx context.Context, c etcdConn, r *retry) {
	if all, _ := c.steer(ctx); !all || w.age(w.now()) < redialAfter {
		return
	}
	since := "since it started"
	if w.heardOf() {
		since = "for " + w.age(w.now()).Round(time.Second).String()
	}
	log.Infof("etcd answers, but %s has heard nothing from it %s; making a new client", w.root, since)
	if err := c.redial(ctx); err != nil {
		r.fail(ctx, err)
	}
}

// dial makes the watcher's connection, retrying until it has one or ctx is done.
func (w *watcher) dial(ctx context.Context) etcdConn {
	r := newRetry("connecting for " + w.root)
	for {
		c, err := w.connect(ctx)
		if ctx.Err() != nil { // shutting down: nothing recovered, whatever connect says
			if err == nil {
				c.Close()
			}
			return nil
		}
		if err == nil {
			r.ok()
			return c
		}
		w.noteFailure(err)
		r.fail(ctx, err)
	}
}

// list reads the zone's keys at one revision and swaps them in whole, so that a reader
// never sees a partial list; the old snapshot serves meanwhile.
func (w *watcher) list(ctx context.Context, c etcdConn, reason string) error {
	select {
	case r := <-w.relists: // this list is what the verifier asked for
		w.mark(r)
	default:
	}
	started := time.Now()
	before, reached := w.b.Spans(), w.b.Reached()
	listed, err := w.b.List(ctx, c, w.paging, w.now)
	if err != nil {
		return err
	}
	if listed.Promoted {
		w.promoteLeases()
	}
	if listed.Restored {
		reason = listRestored
	}
	switch spans := w.b.Spans(); {
	case slices.Equal(spans, before):
	case spans[0] != index.ZoneSpan(w.root):
		// The README's read-only role grants the keys below the zone: nothing is wrong.
		log.Infof("Reading %s as %v, the part of %v the etcd role grants", w.root, spans, index.ZoneSpan(w.root))
	case before != nil:
		log.Infof("Reading %s as %v again", w.root, spans)
	}
	log.Infof("Listed %d keys and %d new leases under %s at revision %d in %v",
		w.b.Len(), listed.Leases, w.root, listed.Rev, time.Since(started).Round(time.Millisecond))
	w.listed(w.now())
	// The list's metrics before the index it read is served: whoever sees the zone ready
	// sees them.
	listsTotal.WithLabelValues(reason).Inc()
	listDuration.WithLabelValues(reason).Observe(time.Since(started).Seconds())
	listTimestamp.WithLabelValues(w.root).SetToCurrentTime()
	w.skipLog.flush()
	w.publish(w.b, nil, true)
	if listed.Restored {
		log.Warningf("etcd's history is not the one the index of %s was built from (the index had reached revision %d, etcd is at %d): "+
			"restored from a snapshot, or started on empty data? Read anew; the SOA serial goes on at %d",
			w.root, reached, listed.Rev, w.snapshot().Serial())
	}
	return nil
}

// watch follows the spans of the last list from the revision after the one each has
// reached (less earlier), until a watch fails, falls silent, the verifier asks for a list,
// or ctx is done, and returns what the loop does next.
func (w *watcher) watch(ctx context.Context, c etcdConn, r *retry, earlier int64) next {
	// RequireLeader ends the watch when its member loses the cluster's leader, so that the
	// client moves to a member that has one.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The stream waits for a connection, which a client that cannot authenticate never
	// has: it is opened aside, and silence counts from now.
	type open struct {
		ws  *watchStream
		err error
	}
	opened := make(chan open, 1)
	spans, applied := w.b.Spans(), slices.Clone(w.b.Applied())
	go func() {
		from := make([]int64, len(spans))
		for i := range spans {
			from[i] = max(applied[i]+1-earlier, 1)
		}
		ws, err := openWatch(wctx, c, spans, from)
		opened <- open{ws, err}
	}()
	var (
		ws        *watchStream
		responses chan spanResponse // nil, which never delivers, until opened
	)
	tick := time.NewTicker(w.progressEvery)
	defer tick.Stop()
	l := newLiveness(time.Now(), w.silentAfter, time.Duration(float64(w.proxyRewatch)*(0.5+rand.Float64())), &w.peer)
	var confirmed time.Time // when a header behind the index's history was last looked into
	for {
		var (
			sr spanResponse
			ok bool
		)
		select {
		case o := <-opened:
			if o.err != nil {
				return afterError(o.err)
			}
			ws, responses, opened = o.ws, o.ws.responses, nil
			continue
		case sr, ok = <-responses:
		case reason := <-w.relists:
			return next{step: stepList, reason: reason}
		case now := <-tick.C:
			if n, end := w.ticked(ctx, c, &l, now, ws, &confirmed); end {
				return n
			}
			continue
		}
		if !ok {
			return afterError(ws.err)
		}
		i, resp := sr.span, sr.WatchResponse
		if resp.CompactRevision != 0 {
			return afterError(rpctypes.ErrCompacted)
		}
		if err := resp.Err(); err != nil {
			return afterError(err)
		}
		now := time.Now()
		w.markFresh(w.now())
		if w.heard(resp.Header) {
			if n, end := w.confirm(ctx, c, &confirmed); end {
				return n
			}
		}
		switch {
		case resp.Created:
			// etcd before 3.4.34 and 3.5.16 takes a watch from its compacted revision
			// for a current one and drops a DELETE at that revision (etcd-io/etcd#18089):
			// once the server holds the watch, a read at the revision the index has
			// reached tells whether that revision, or the index's history, is gone.
			if v, _ := w.history(ctx, c); v.ends() {
				return v.next()
			}
			l.responded(now, responseCreated, resp.Header.Revision < applied[i]+1-earlier)
			r.ok()
		case resp.IsProgressNotify():
			// A sign of life, never a revision to resume from: a requested notification
			// can run ahead of events still to come on the same watch (etcd-io/etcd#15220,
			// fixed only in 3.4.25 and 3.5.8), and one from a member the client moved to
			// can lead a watch into old events (etcd-io/etcd#20221).
			l.responded(now, responseProgress, false)
		default:
			l.responded(now, responseEvents, false)
			w.apply(ctx, c, i, resp.Events)
		}
	}
}

// ticked does what l asks of etcd at a tick at now, and reports whether the watch ends,
// and how.
func (w *watcher) ticked(ctx context.Context, c etcdConn, l *liveness, now time.Time, ws *watchStream, confirmed *time.Time) (next, bool) {
	switch l.tick(now) {
	case tickNothing:
		return next{}, false
	case tickProgress:
		if ws != nil {
			ws.requestProgress() // an answer, or none, comes through responses
		}
		return next{}, false
	case tickSilent:
		return next{step: stepSteer}, true
	}
	all, headers := c.steer(ctx)
	behind := false
	for _, h := range headers {
		behind = w.heard(h) || behind
	}
	if behind {
		if n, end := w.confirm(ctx, c, confirmed); end {
			return n, true
		}
	}
	step, newProxy := l.statusAnswered(now, all)
	if newProxy {
		log.Infof("etcd answers but does not answer watch progress requests (an etcd gRPC proxy?); following %s with a status request every %v of quiet instead", w.root, w.silentAfter)
	}
	switch step {
	case quietSilent:
		return next{step: stepSteer}, true
	case quietLookInto:
		return w.lookInto(ctx, c), true
	}
	w.markFresh(w.now())
	return next{}, false
}

// apply hands one watch response of span i to the builder and publishes the result.
func (w *watcher) apply(ctx context.Context, c etcdConn, i int, events []*clientv3.Event) {
	ch := w.b.Apply(i, events)
	eventsTotal.WithLabelValues("put").Add(float64(ch.Puts))
	eventsTotal.WithLabelValues("delete").Add(float64(ch.Deletes))
	if !ch.Changed() {
		return
	}
	// A key's TTL is bounded by its lease: learn the lease before the key is served.
	index.ResolveLeases(ctx, c, ch.Fresh, w.now)
	w.skipLog.flush()
	w.publish(w.b, ch.Keys, false)
}

// housekeep refreshes due leases, notes when the index turns stale or fresh again, and
// gives the client back the members it left out once they answer.
func (w *watcher) housekeep(ctx context.Context, c etcdConn) {
	t := time.NewTicker(housekeeping)
	defer t.Stop()
	stale := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
			if w.promote.Swap(false) {
				w.b.PromoteLeases(ctx, c, w.now)
			}
			index.ResolveLeases(ctx, c, w.b.DueLeases(w.now()), w.now)
		case <-t.C:
			if w.snapshot() == nil {
				continue
			}
			now := w.now()
			if age := w.age(now); (age > w.staleAfter) != stale {
				stale = !stale
				if stale {
					cause := ""
					if why := c.why(ctx); why != nil {
						cause = " (" + why.Error() + ")"
					}
					log.Warningf("Index of %s is stale: no word from etcd for %s%s; answering from it", w.root, age.Round(time.Second), cause)
					staleGauge.WithLabelValues(w.root).Set(1)
				} else {
					log.Infof("Index of %s is fresh again", w.root)
					staleGauge.WithLabelValues(w.root).Set(0)
				}
			}
			index.ResolveLeases(ctx, c, w.b.DueLeases(now), w.now)
			c.restore(ctx)
		}
	}
}
