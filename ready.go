package etcdsd

import "time"

// Ready implements ready.Readiness: ready once the first complete list of every zone is
// in (or, after a reload, the previous instance's index), while no index has gone without
// word from etcd for longer than max_stale, and while no zone fails for a reason only an
// operator can fix. The
// ready plugin keeps one Readiness per plugin name, so it asks one etcdsd stanza of all
// those CoreDNS runs; each therefore answers for all of them (its group).
func (e *Etcdsd) Ready() bool {
	if e.group == nil {
		return e.ownReady(e.Now())
	}
	return e.group.ready()
}

func (e *Etcdsd) ownReady(now time.Time) bool {
	for _, w := range e.watchers {
		if w.snapshot() == nil || w.failure() != nil || e.tooStale(w, now) {
			return false
		}
	}
	return true
}

// tooStale reports whether w has heard nothing from etcd for longer than max_stale.
func (e *Etcdsd) tooStale(w *watcher, now time.Time) bool {
	return e.MaxStale > 0 && w.age(now) > e.MaxStale
}
