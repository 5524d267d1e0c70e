package index

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/miekg/dns"
)

// DefaultAnswerCache is the memory, in bytes, that the prepared answers of one index may
// take (answer_cache): make bench's 10,000 services ask about 62,000 questions, whose
// answers weigh about 30 MiB (of Go heap: about 400 bytes each).
const DefaultAnswerCache = 64 << 20

// maxTouched bounds the paths an answer cache remembers changes of; past it, the next
// change starts a new cache.
const maxTouched = 1 << 18

// Question is what a prepared answer is kept under.
type Question struct {
	Name string // as asked: the owner names of the answer keep the question's case
	Type uint16
}

// AnswerCache holds the prepared answers of one index across its snapshots, up to a
// weight in bytes, evicting the least useful (otter's S3-FIFO). Every change marks the
// key paths it touched, its keys and the paths above them, with the snapshot's sequence
// number; an answer is current while no path it read was touched after the snapshot it
// was built from. A complete list starts a new cache.
type AnswerCache struct {
	c        *otter.Cache[Question, *Answer] // nil: answers are not kept
	touched  sync.Map                        // key path -> uint64, the seq of its last change
	nTouched int                             // the publisher's
	last     atomic.Uint64                   // the seq of the last change marked
}

// NewAnswerCache returns a cache of up to budget bytes of answers; 0 keeps none.
func NewAnswerCache(budget uint64) *AnswerCache {
	c := &AnswerCache{}
	if budget > 0 {
		c.c = otter.Must(&otter.Options[Question, *Answer]{MaximumWeight: budget, Weigher: weight})
	}
	return c
}

// get returns the prepared answer to k, when it is current; now is asked only for an
// answer with a leased record.
func (c *AnswerCache) get(k Question, now func() time.Time) *Answer {
	if c == nil || c.c == nil {
		return nil
	}
	a, ok := c.c.GetIfPresent(k)
	if !ok {
		return nil
	}
	if a.until != 0 && now().UnixNano() >= a.until {
		c.c.Invalidate(k)
		return nil
	}
	// Every change up to last is marked: when none of those after a.seq touched what a
	// read, a is current at last, which the next get need not check again.
	last, seq := c.last.Load(), a.seq.Load()
	if seq >= last {
		return a
	}
	for _, p := range a.reads {
		if t, ok := c.touched.Load(p); ok && t.(uint64) > seq {
			c.c.Invalidate(k)
			return nil
		}
	}
	a.seq.CompareAndSwap(seq, last)
	return a
}

func (c *AnswerCache) put(k Question, a *Answer) {
	if c != nil && c.c != nil {
		c.c.Set(k, a)
	}
}

// Touch marks the paths a change of keys in the index rooted at root affects, as
// changed at seq: each key and name path (namePath), and the paths above them up to root.
// It reports false when the cache remembers too many paths and should be replaced.
func (c *AnswerCache) Touch(seq uint64, root string, keys []string) bool {
	mark := func(p string) {
		for {
			if _, loaded := c.touched.Swap(p, seq); !loaded {
				c.nTouched++
			}
			i := strings.LastIndexByte(p, '/')
			if len(p) <= len(root) || i <= 0 {
				return
			}
			p = p[:i]
		}
	}
	for _, k := range keys {
		mark(k)
		if n := namePath(root, k); n != "" {
			mark(n)
		}
	}
	c.last.Store(seq)
	return c.nTouched <= maxTouched
}

// weight estimates the bytes an answer holds: its records as packed, twice over
// for their Go structures and strings, the paths it read, and the entry itself.
func weight(k Question, a *Answer) uint32 {
	n := 96 + len(k.Name)
	for _, rrs := range [][]dns.RR{a.answer, a.ns, a.extra} {
		for _, rr := range rrs {
			n += 2 * dns.Len(rr)
		}
	}
	for _, p := range a.reads {
		n += 16 + len(p)
	}
	return uint32(n) // #nosec G115 -- an answer holds at most 64 KiB of records
}
