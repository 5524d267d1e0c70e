package etcdsd

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// step is what the watch loop does once a watch session has ended.
type step int

const (
	stepRetry     step = iota // watch again after the watching retry's back-off (next.err says why)
	stepList                  // list the zone again at once (next.reason), then watch
	stepListLater             // list again after a random wait within relistSpread: compaction
	stepEarlier               // watch again at once, from one revision earlier than the index reached
	stepSteer                 // steer the client from members that do not answer (watcher.unstick)
	stepRedial                // make a new client (next.why says why)
)

// next is how a watch session ended: what the loop does now and why.
type next struct {
	step   step
	reason string // of a list: listCompacted, listMissed, ...
	why    string // of a redial, for the log: what etcd did, a format of the zone root's key
	err    error  // what etcd answered, if anything
}

// afterError is the next step after a watch ended in err from etcd. A new failure mode of
// etcd gets its predicate here, and a row in TestAfterError.
func afterError(err error) next {
	switch {
	case compacted(err):
		// Events the index has not seen are gone: read everything again, serving the old
		// snapshot meanwhile.
		return next{step: stepListLater, reason: listCompacted, err: err}
	case tokenRefused(err):
		// Some servers keep refusing a token the client resends: start afresh.
		return next{step: stepRedial, why: "etcd refused the auth token of %s", err: err}
	case roleChanged(err):
		// The role changed under the watch: a list finds what it may read now, after the
		// back-off, as a role may be changed back and forth.
		return next{step: stepList, reason: listPermission, err: err}
	}
	return next{step: stepRetry, err: err}
}

// compacted reports whether err says etcd compacted the revision a read or watch is at.
func compacted(err error) bool { return errors.Is(err, rpctypes.ErrCompacted) }

// tokenRefused reports whether etcd refused the client's auth token.
func tokenRefused(err error) bool { return errors.Is(err, rpctypes.ErrInvalidAuthToken) }

// roleChanged reports whether etcd refused the watch the keys it watched.
func roleChanged(err error) bool { return errors.Is(err, rpctypes.ErrPermissionDenied) }
