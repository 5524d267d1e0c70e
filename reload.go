package etcdsd

import "sync"

// On a reload CoreDNS starts the new instance before it stops the old one. A watcher of
// the new instance adopts the index that its predecessor for the same zone and etcd
// serves, and answers from it until its own first list completes, as the old one would
// have: a reload while etcd is away must not throw the last good copy away. The series of
// a zone's metrics belong to its newest watcher; when the last one stops, they go.
var newest sync.Map // zone root key -> *watcher

// succeed makes w the newest watcher of its zone. When its predecessor reads the same
// etcd, w answers from its index until its own first list (publisher.adopt), and its
// builder follows that index.
func (w *watcher) succeed() {
	old, ok := newest.Swap(w.root, w)
	if !ok {
		return
	}
	prev := old.(*watcher)
	if prev.source != w.source {
		return
	}
	if s := w.adopt(&prev.publisher); s != nil {
		w.b.Follow(s)
	}
}

// retire ends w's tenure: when no watcher succeeded it, its zone's series are removed, so
// that a zone a reload dropped stops reporting frozen values.
func (w *watcher) retire() {
	if newest.CompareAndDelete(w.root, w) {
		deleteSeries(w.root)
	}
}
