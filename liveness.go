package etcdsd

import (
	"sync/atomic"
	"time"
)

// peer is what a watcher has learnt of the etcd its watches go through, kept from one
// watch session to the next. Written by the watch loop, read by tests.
type peer struct {
	// answersProgress is set once etcd has answered a progress request; proxy, once every
	// endpoint answers status but none has answered one to a watch it created: an etcd
	// gRPC proxy, which does not forward them (etcd's grpcproxy/watch.go). From then on a
	// status answer every silentAfter stands for progress.
	answersProgress, proxy atomic.Bool
}

// liveness tells a quiet watch of a live etcd from a stuck one, for one watch session. It
// is fed the session's responses and the clock, and says on each tick what the loop
// should ask of etcd next; it reads nothing itself.
type liveness struct {
	silentAfter time.Duration // silence after which a watch is looked into
	quiet       time.Duration // through a proxy, how long a watch may deliver no event before it is looked into
	peer        *peer
	heard       time.Time // the last response, or the session's start
	delivered   time.Time // the last response that was no progress notification
	created     bool      // etcd holds the watch
	// ahead is set while a watch starts past etcd's current revision, as one from the
	// revision after a list does until the next write anywhere in etcd: etcd answers its
	// progress requests only from then on.
	ahead bool
}

func newLiveness(now time.Time, silentAfter, quiet time.Duration, p *peer) liveness {
	return liveness{silentAfter: silentAfter, quiet: quiet, peer: p, heard: now, delivered: now}
}

// response is the kind of a watch response, as liveness weighs it.
type response int

const (
	responseCreated  response = iota // the watch is created
	responseProgress                 // a progress notification
	responseEvents                   // events
)

// responded notes a response at now. startsAhead says, of a created response, that the
// watch starts past etcd's revision.
func (l *liveness) responded(now time.Time, r response, startsAhead bool) {
	l.heard = now
	switch r {
	case responseCreated:
		l.created = true
		l.ahead = l.ahead || startsAhead
		l.delivered = now
	case responseProgress:
		l.peer.answersProgress.Store(true)
		l.ahead = false
	case responseEvents:
		l.ahead = false
		l.delivered = now
	}
}

// tick is what a tick of the progress ticker asks of the loop.
type tick int

const (
	tickProgress tick = iota // ask the stream for progress
	tickNothing              // wait: a proxy, which does not answer progress requests
	tickStatus               // silent: ask every endpoint for its status (statusAnswered)
	tickSilent               // silent, and no status answer can stand for progress: give the watch up
)

// silent reports whether the watch has said nothing for longer than silentAfter.
func (l *liveness) silent(now time.Time) bool { return now.Sub(l.heard) > l.silentAfter }

// statusStandsIn reports whether a status answer of every endpoint says the watch is
// alive: while etcd cannot answer progress requests yet (ahead), or at all (a proxy), or
// has never answered one to a watch it created (and may be a proxy). A frozen member
// answers neither; a member that answers progress requests is never taken for a proxy.
func (l *liveness) statusStandsIn() bool {
	return l.ahead || l.peer.proxy.Load() || l.created && !l.peer.answersProgress.Load()
}

// tick says what the loop asks of etcd at now.
func (l *liveness) tick(now time.Time) tick {
	switch {
	case !l.silent(now) && l.peer.proxy.Load():
		return tickNothing
	case !l.silent(now):
		return tickProgress
	case l.statusStandsIn():
		return tickStatus
	}
	return tickSilent
}

// quietStep is what a silent watch whose endpoints answered status leads to.
type quietStep int

const (
	quietAlive    quietStep = iota // alive: the index is fresh
	quietSilent                    // not every endpoint answered: give the watch up
	quietLookInto                  // through a proxy, no event for long: look into the watch (watcher.lookInto)
)

// statusAnswered notes the status answers to a tickStatus at now (all: every endpoint
// answered) and says what follows. newProxy is set when the answers have just shown the
// endpoint to be a proxy.
func (l *liveness) statusAnswered(now time.Time, all bool) (step quietStep, newProxy bool) {
	if !all {
		return quietSilent, false
	}
	if !l.ahead && !l.peer.proxy.Load() {
		l.peer.proxy.Store(true)
		newProxy = true
	}
	if now.Sub(l.delivered) > l.quiet {
		return quietLookInto, newProxy
	}
	l.heard = now
	return quietAlive, newProxy
}
