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

var (
	errWatchClosed = errors.New("watch channel closed")
	errWatchSilent = errors.New("watch silent, no progress from etcd")
	errProxyQuiet  = errors.New("watch through a gRPC proxy quiet for long")
	errClientStuck = errors.New("every endpoint answers status, but a read on the client's connection times out")
)

// relist is the verifier's request for a complete list, and why.
type relist struct{ reason string }

func (r relist) Error() string { return "list again: " + r.reason }

// watcher keeps the index of one zone's keys: the loop moves list pages and watch
// responses from the etcd connection to the builder and publishes a snapshot after every
// change; queries only load snapshots.
type watcher struct {
	watchConfig
	b *index.Builder // written by the loop goroutine only

	current atomic.Pointer[index.Snapshot]
	fresh   atomic.Int64          // unix nanoseconds of the last word from etcd: a list, event or progress
	settled chan struct{}         // closed after the first complete list or the first definitive error
	cause   atomic.Pointer[error] // the last definitive error, until a list succeeds
	settle  sync.Once             // closes settled
	relists chan string           // from the verifier to the loop
	promote atomic.Bool           // a new leader extended every lease (Builder.PromoteLeases)
	wake    chan struct{}         // housekeeping runs at once
	changed chan struct{}         // a snapshot with a new revision is out, for NOTIFY
	journal journal               // the last changes, for IXFR
	answers *index.AnswerCache    // the prepared answers of the current snapshots; the loop's
	seq     uint64                // the sequence number of the last snapshot; the loop's
	// progressAnswered is set once etcd has answered a progress request; progressless,
	// once every endpoint answers but none has answered one: an etcd gRPC proxy, which
	// does not forward them (etcd's grpcproxy/watch.go). Written by the loop.
	progressAnswered, progressless atomic.Bool
	cancel                         context.CancelFunc
	done                           chan struct{}

	// Tunables, fixed before run; tests shorten them.
	progressEvery, silentAfter, staleAfter time.Duration
	relistSpread, proxyRewatch             time.Duration
	paging, checkPaging                    index.Paging // of lists, of self-checks

	skipLog rateLimit // the loop's
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
	journal      int           // ixfr_journal: changes kept for IXFR; 0: none
	answerBudget uint64        // answer_cache: bytes of prepared answers; 0: none
}

func newWatcher(cfg watchConfig) *watcher {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	w := &watcher{
		watchConfig: cfg,
		b:           index.NewBuilder(cfg.root),
		settled:     make(chan struct{}),
		relists:     make(chan string, 1),
		wake:        make(chan struct{}, 1),
		changed:     make(chan struct{}, 1),
		journal:     journal{size: cfg.journal},

		progressEvery: progressEvery,
		silentAfter:   silentAfter,
		staleAfter:    staleAfter,
		relistSpread:  relistSpread,
		proxyRewatch:  proxyRewatch,
		paging:        index.ListPaging,
		checkPaging:   index.Paging{Size: checkPageSize, Timeout: index.PageTimeout},
	}
	w.b.Skipped = w.skipped
	return w
}

// age returns how long the index has heard nothing from etcd.
func (w *watcher) age(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, w.fresh.Load()))
}

func (w *watcher) markFresh(now time.Time) {
	w.fresh.Store(now.UnixNano())
	freshGauge.WithLabelValues(w.root).Set(float64(now.Unix()))
}

// snapshot returns the current view of the index, or nil before the first complete list.
func (w *watcher) snapshot() *index.Snapshot { return w.current.Load() }

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

// failure returns the definitive error that keeps the watcher from etcd, or nil.
func (w *watcher) failure() error {
	if err := w.cause.Load(); err != nil {
		return *err
	}
	return nil
}

// noteFailure records err: a definitive one settles the wait at start-up.
func (w *watcher) noteFailure(err error) {
	if !definitive(err) {
		return
	}
	w.cause.Store(&err)
	w.settle.Do(func() { close(w.settled) })
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
		err := w.watch(ctx, c, watching, earlier)
		earlier = 0
		var again relist
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, rpctypes.ErrInvalidAuthToken):
			// Some servers keep refusing a token the client resends: start afresh.
			log.Infof("etcd refused the auth token of %s; making a new client", w.root)
			if err := c.redial(ctx); err != nil {
				watching.fail(ctx, err)
			}
		case errors.Is(err, rpctypes.ErrCompacted):
			// Events we have not seen are gone: read everything again, serving the old
			// snapshot meanwhile.
			wait := time.Duration(rand.Int64N(int64(w.relistSpread) + 1))
			log.Infof("Watch on %s fell behind compaction past revision %v, listing again in %v", w.root, w.b.Applied(), wait.Round(time.Millisecond))
			reason = listCompacted
			sleep(ctx, wait)
		case errors.As(err, &again):
			reason = again.reason
			w.mark(reason)
		case errors.Is(err, rpctypes.ErrPermissionDenied):
			// The role changed under the watch: a list finds what it may read now.
			watching.fail(ctx, err)
			reason = listPermission
		case errors.Is(err, errWatchSilent):
			w.unstick(ctx, c, watching)
		case errors.Is(err, errClientStuck):
			// Status answers come on connections of their own: the client's connection is
			// dead, which its keepalive would find only minutes later (keepaliveTime).
			log.Infof("etcd answers, but the client of %s hears nothing on its connection; making a new client", w.root)
			if err := c.redial(ctx); err != nil {
				watching.fail(ctx, err)
			}
		case errors.Is(err, errProxyQuiet):
			// A new watch at once, from one revision earlier than this one was (events
			// already applied are skipped): the proxy joins a watch only to one that
			// started no earlier, so never to the dead one this may have been.
			earlier = 1
		default:
			watching.fail(ctx, explain(ctx, c, err))
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
	if w.fresh.Load() != 0 {
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
	w.cause.Store(nil)
	w.markFresh(w.now())
	// The list's metrics before the index it read is served: whoever sees the zone ready
	// sees them.
	listsTotal.WithLabelValues(reason).Inc()
	listDuration.WithLabelValues(reason).Observe(time.Since(started).Seconds())
	listTimestamp.WithLabelValues(w.root).SetToCurrentTime()
	staleGauge.WithLabelValues(w.root).Set(0) // a complete list is fresh
	w.publish(nil, true)
	if listed.Restored {
		log.Warningf("etcd's history is not the one the index of %s was built from (the index had reached revision %d, etcd is at %d): "+
			"restored from a snapshot, or started on empty data? Read anew; the SOA serial goes on at %d",
			w.root, reached, listed.Rev, w.snapshot().Serial())
	}
	return nil
}

// watch follows the spans of the last list from the revision after the one each has
// reached (less earlier), until a watch fails, falls silent, the verifier asks for a list,
// or ctx is done.
func (w *watcher) watch(ctx context.Context, c etcdConn, r *retry, earlier int64) error {
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
	// ahead is set while a watch starts past etcd's current revision, as one from the
	// revision after a list does until the next write anywhere in etcd: etcd answers its
	// progress requests only from then on.
	heard, created, ahead := time.Now(), false, false
	delivered, quiet := heard, time.Duration(float64(w.proxyRewatch)*(0.5+rand.Float64()))
	var confirmed time.Time // when a header behind the index's history was last looked into
	for {
		var (
			sr spanResponse
			ok bool
		)
		select {
		case o := <-opened:
			if o.err != nil {
				return o.err
			}
			ws, responses, opened = o.ws, o.ws.responses, nil
			continue
		case sr, ok = <-responses:
		case reason := <-w.relists:
			return relist{reason}
		case now := <-tick.C:
			if now.Sub(heard) > w.silentAfter {
				alive, behind := w.alive(ctx, c, created, ahead)
				if behind {
					if err := w.confirm(ctx, c, &confirmed); err != nil {
						return err
					}
				}
				if !alive {
					return errWatchSilent
				}
				if now.Sub(delivered) > quiet {
					v, current := w.history(ctx, c)
					if err := v.err(); err != nil {
						return err
					}
					if v == historyUnknown {
						return errClientStuck
					}
					// Nothing written anywhere in etcd since: nothing can be missed.
					if current > w.b.Reached() && w.missed(ctx, c) {
						log.Warningf("The watch of %s through a gRPC proxy missed changes (etcd-io/etcd#21813); listing again", w.root)
						return relist{listMissed}
					}
					return errProxyQuiet
				}
				heard = now
				w.markFresh(w.now())
				continue
			}
			if w.progressless.Load() || ws == nil {
				continue
			}
			ws.requestProgress() // an answer, or none, comes through responses
			continue
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return err
			}
			return ws.err
		}
		i, resp := sr.span, sr.WatchResponse
		if resp.CompactRevision != 0 {
			return rpctypes.ErrCompacted
		}
		if err := resp.Err(); err != nil {
			return err
		}
		heard = time.Now()
		if !resp.IsProgressNotify() {
			delivered = heard
		}
		w.markFresh(w.now())
		if w.heard(resp.Header) {
			if err := w.confirm(ctx, c, &confirmed); err != nil {
				return err
			}
		}
		switch {
		case resp.Created:
			// etcd before 3.4.34 and 3.5.16 takes a watch from its compacted revision
			// for a current one and drops a DELETE at that revision (etcd-io/etcd#18089):
			// once the server holds the watch, a read at the revision the index has
			// reached tells whether that revision, or the index's history, is gone.
			if v, _ := w.history(ctx, c); v.err() != nil {
				return v.err()
			}
			created = true
			ahead = ahead || resp.Header.Revision < applied[i]+1-earlier
			r.ok()
		case resp.IsProgressNotify():
			w.progressAnswered.Store(true)
			ahead = false
			// A sign of life, never a revision to resume from: a requested notification
			// can run ahead of events still to come on the same watch (etcd-io/etcd#15220,
			// fixed only in 3.4.25 and 3.5.8), and one from a member the client moved to
			// can lead a watch into old events (etcd-io/etcd#20221).
		default:
			ahead = false
			w.apply(ctx, c, i, resp.Events)
		}
	}
}

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

// err returns what the watch loop returns for h: a list again, or nil.
func (h history) err() error {
	switch h {
	case historyCompacted:
		return rpctypes.ErrCompacted
	case historyRestored:
		return relist{listRestored}
	}
	return nil
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
// watch moved to may (etcd-io/etcd#20221), sends several. It returns what the watch loop
// returns: a list again, or nil.
func (w *watcher) confirm(ctx context.Context, c etcdConn, last *time.Time) error {
	if time.Since(*last) < w.silentAfter {
		return nil
	}
	*last = time.Now()
	v, _ := w.history(ctx, c)
	return v.err()
}

// alive tells a quiet watch of a live etcd from a stuck one, once the watch has been silent
// for silentAfter: it is alive when etcd cannot answer progress requests yet (ahead) or at
// all (progressless) and every endpoint answers a status request. An endpoint that answers
// status but has never answered a progress request to a watch it created is an etcd gRPC
// proxy: from then on, a status answer every silentAfter stands for progress. A frozen
// member answers neither; a member that answers progress requests is never taken for a
// proxy.
func (w *watcher) alive(ctx context.Context, c etcdConn, created, ahead bool) (alive, behind bool) {
	if !ahead && !w.progressless.Load() && (!created || w.progressAnswered.Load()) {
		return false, false
	}
	all, heard := c.steer(ctx)
	for _, h := range heard {
		behind = w.heard(h) || behind
	}
	if ahead || !all {
		return all, behind
	}
	if !w.progressless.Load() {
		w.progressless.Store(true)
		log.Infof("etcd answers but does not answer watch progress requests (an etcd gRPC proxy?); following %s with a status request every %v of quiet instead", w.root, w.silentAfter)
	}
	return true, behind
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
	w.publish(ch.Keys, false)
}

// publish makes the builder's index the one queries and transfers read: after a complete
// list, or after a change to keys. The journal has it first, so that a secondary that
// hears NOTIFY and asks for an IXFR at once finds the new serial in it.
func (w *watcher) publish(keys []string, listed bool) {
	w.skipLog.flush()
	w.seq++
	// Answers stay prepared across changes that did not touch what they read; after a
	// complete list anything may have changed.
	if listed || w.answers == nil || !w.answers.Touch(w.seq, w.root, keys) {
		w.answers = index.NewAnswerCache(w.answerBudget)
	}
	s := w.b.Snapshot(w.seq, w.answers)
	if listed {
		w.journal.reset(s)
	} else {
		w.journal.add(s, keys)
	}
	if old := w.current.Swap(s); old == nil || old.Rev() != s.Rev() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	revisionGauge.WithLabelValues(w.root).Set(float64(s.Rev()))
	keysGauge.WithLabelValues(w.root).Set(float64(s.Len()))
	w.settle.Do(func() { close(w.settled) })
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
