package etcdsd

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdsd/etcdsd/internal/index"
)

// publisher owns what queries, transfers, NOTIFY and readiness read of one zone's index:
// the current snapshot and its prepared answers, the IXFR journal, the change signal, and
// how fresh and how settled the index is. Only the watch loop publishes; everything else
// only loads. It knows nothing of etcd: the loop tells it what it heard and when.
type publisher struct {
	key    string // the zone root's key (watchConfig.root), naming the zone's metrics
	budget uint64 // answer_cache, in bytes; 0: no prepared answers

	current atomic.Pointer[index.Snapshot]
	fresh   atomic.Int64          // unix nanoseconds of the last word from etcd: a list, event or progress
	settled chan struct{}         // closed after the first snapshot or the first definitive error
	settle  sync.Once             // closes settled
	cause   atomic.Pointer[error] // the last definitive error, until a list succeeds
	changed chan struct{}         // a snapshot with a new revision is out, for NOTIFY
	journal journal               // the last changes, for IXFR
	answers *index.AnswerCache    // the prepared answers of the current snapshots; the loop's
	seq     uint64                // the sequence number of the last snapshot; the loop's
}

func newPublisher(cfg watchConfig) publisher {
	return publisher{
		key:     cfg.root,
		budget:  cfg.answerBudget,
		settled: make(chan struct{}),
		changed: make(chan struct{}, 1),
		journal: journal{size: cfg.journalSize},
	}
}

// snapshot returns the current view of the index, or nil before the first complete list.
func (p *publisher) snapshot() *index.Snapshot { return p.current.Load() }

// age returns how long the index has heard nothing from etcd.
func (p *publisher) age(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, p.fresh.Load()))
}

// heardOf reports whether the index has heard from etcd at all (a list, event or progress).
func (p *publisher) heardOf() bool { return p.fresh.Load() != 0 }

func (p *publisher) markFresh(now time.Time) {
	p.fresh.Store(now.UnixNano())
	freshGauge.WithLabelValues(p.key).Set(float64(now.Unix()))
}

// failure returns the definitive error that keeps the index from etcd, or nil.
func (p *publisher) failure() error {
	if err := p.cause.Load(); err != nil {
		return *err
	}
	return nil
}

// noteFailure records err: a definitive one (definitive) settles the wait at start-up.
// A complete list clears it (listed).
func (p *publisher) noteFailure(err error) {
	if !definitive(err) {
		return
	}
	p.cause.Store(&err)
	p.settle.Do(func() { close(p.settled) })
}

// listed records a complete list at now: the index is fresh and no failure holds it.
func (p *publisher) listed(now time.Time) {
	p.cause.Store(nil)
	p.markFresh(now)
	staleGauge.WithLabelValues(p.key).Set(0)
}

// publish makes b's index the one queries and transfers read: after a complete list, or
// after a change to keys. The journal has it first, so that a secondary that hears NOTIFY
// and asks for an IXFR at once finds the new serial in it.
func (p *publisher) publish(b *index.Builder, keys []string, listed bool) {
	p.seq++
	// Answers stay prepared across changes that did not touch what they read; after a
	// complete list anything may have changed.
	if listed || p.answers == nil || !p.answers.Touch(p.seq, p.key, keys) {
		p.answers = index.NewAnswerCache(p.budget)
	}
	s := b.Snapshot(p.seq, p.answers)
	if listed {
		p.journal.reset(s)
	} else {
		p.journal.add(s, keys)
	}
	if old := p.current.Swap(s); old == nil || old.Rev() != s.Rev() {
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
	revisionGauge.WithLabelValues(p.key).Set(float64(s.Rev()))
	keysGauge.WithLabelValues(p.key).Set(float64(s.Len()))
	p.settle.Do(func() { close(p.settled) })
}

// adopt serves prev's snapshot, with prepared answers of p's own (its options may differ),
// until p's first publish, and returns it; nil when p has a snapshot or prev none. A
// reload's new instance answers from the old one's index meanwhile and does not hold
// start-up for a list.
func (p *publisher) adopt(prev *publisher) *index.Snapshot {
	s := prev.snapshot()
	if s == nil || p.snapshot() != nil {
		return nil
	}
	p.answers = index.NewAnswerCache(p.budget)
	p.current.Store(s.WithAnswers(0, p.answers))
	p.fresh.Store(prev.fresh.Load())
	p.settle.Do(func() { close(p.settled) })
	return s
}
