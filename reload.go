package etcdsd

import (
	"sync"

	"github.com/etcdsd/etcdsd/internal/index"
)

// On a reload CoreDNS starts the new instance before it stops the old one. A watcher of
// the new instance adopts the index that its predecessor for the same zone and etcd
// serves, and answers from it until its own first list completes, as the old one would
// have: a reload while etcd is away must not throw the last good copy away. The series of
// a zone's metrics belong to its newest watcher; when the last one stops, they go.
var newest sync.Map // zone root key -> *watcher

// succeed makes w the newest watcher of its zone. When its predecessor reads the same
// etcd, w answers from its index meanwhile, with prepared answers of its own (its options
// may differ), and does not hold start-up for a list.
func (w *watcher) succeed() {
	old, ok := newest.Swap(w.root, w)
	if !ok {
		return
	}
	prev := old.(*watcher)
	s := prev.snapshot()
	if prev.source != w.source || s == nil || w.snapshot() != nil {
		return
	}
	w.answers = index.NewAnswerCache(w.answerBudget)
	w.current.Store(s.WithAnswers(0, w.answers))
	w.b.Follow(s)
	w.fresh.Store(prev.fresh.Load())
	w.settle.Do(func() { close(w.settled) })
}

// retire ends w's tenure: when no watcher succeeded it, its zone's series are removed, so
// that a zone a reload dropped stops reporting frozen values.
func (w *watcher) retire() {
	if newest.CompareAndDelete(w.root, w) {
		deleteSeries(w.root)
	}
}
