package etcdsd

import (
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// maxCachedAnswers bounds the answers one snapshot keeps, so that a flood of queries for
// random names cannot grow it without end.
const maxCachedAnswers = 20000

// answer is a prepared response: built once per snapshot, name and type, written many
// times. Its records are never handed out, only copies of them, as later plugins may
// shuffle or rewrite what they get.
type answer struct {
	rcode             int
	truncated         bool
	answer, ns, extra []dns.RR
}

type answerKey struct {
	name  string // as asked: the owner names of the answer keep the question's case
	qtype uint16
}

// answerCache holds the answers of one snapshot. A change in etcd makes a new snapshot
// with an empty cache, so an answer never outlives the data it was built from.
type answerCache struct {
	m sync.Map // answerKey -> *answer
	n atomic.Int32
}

func (c *answerCache) get(k answerKey) *answer {
	if a, ok := c.m.Load(k); ok {
		return a.(*answer)
	}
	return nil
}

func (c *answerCache) put(k answerKey, a *answer) {
	if c.n.Load() >= maxCachedAnswers {
		return
	}
	if _, loaded := c.m.LoadOrStore(k, a); !loaded {
		c.n.Add(1)
	}
}

func (a *answer) write(w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, a.rcode)
	m.Authoritative = true
	m.Truncated = a.truncated
	m.Answer, m.Ns, m.Extra = copyRRs(a.answer), copyRRs(a.ns), copyRRs(a.extra)
	w.WriteMsg(m)
	// The response is written: the server must not write one of its own.
	return dns.RcodeSuccess, nil
}

func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
