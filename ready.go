package etcdsd

import "time"

// Ready implements ready.Readiness: ready once every zone's first complete list is in,
// and while no index has gone without word from etcd for longer than max_stale.
func (e *Etcdsd) Ready() bool {
	now := time.Now()
	for _, w := range e.watchers {
		if w.snapshot() == nil || e.tooStale(w, now) {
			return false
		}
	}
	return true
}

// tooStale reports whether w has heard nothing from etcd for longer than max_stale.
func (e *Etcdsd) tooStale(w *watcher, now time.Time) bool {
	return e.MaxStale > 0 && w.age(now) > e.MaxStale
}
