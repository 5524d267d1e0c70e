package index

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// Build answers state's question in zone from s with o, the way the etcd plugin answers
// it from etcd: its record builders over a ServiceBackend that reads s. An error means
// SERVFAIL (Snapshot.Backend).
func (s *Snapshot) Build(ctx context.Context, o *Options, zone string, state request.Request) (*Answer, error) {
	var reads []string
	v := &view{o: o, snap: s, zone: zone, cacheable: true, reads: &reads}
	a, err := v.answer(ctx, state)
	if err != nil || !v.cacheable {
		return a, err
	}
	slices.Sort(reads)
	a.reads = slices.Compact(reads)
	a.seq.Store(s.seq)
	a.until = v.until
	a.cacheable = true
	return a, nil
}

// Prepared returns the answer to q kept from s or an earlier snapshot of the same index,
// while no change since has touched what it was built from and no leased TTL in it has
// moved on; now is asked only for an answer with a leased record.
func (s *Snapshot) Prepared(q Question, now func() time.Time) *Answer {
	return s.answers.get(q, now)
}

// Keep keeps a, an answer Build made from s, as the answer to q, unless it depends on
// more than s's records (a name looked up upstream).
func (s *Snapshot) Keep(q Question, a *Answer) {
	if a.cacheable {
		s.answers.put(q, a)
	}
}

// Backend returns the ServiceBackend that Build answers zone's questions with, for
// CoreDNS's plugin.BackendError.
func (s *Snapshot) Backend(o *Options, zone string) plugin.ServiceBackend {
	return &view{o: o, snap: s, zone: zone}
}

// answer builds the response to state from v, the way the etcd plugin builds it: its
// record builders over our ServiceBackend. An error means SERVFAIL.
func (v *view) answer(ctx context.Context, state request.Request) (*Answer, error) {
	zone := v.zone
	opt := plugin.Options{NoApexFallback: v.o.NoApexFallback}
	var (
		records, extra []dns.RR
		truncated      bool
		err            error
	)
	qtype := state.QType()
	if (qtype == dns.TypeSOA || qtype == dns.TypeNS) && state.Name() != zone {
		// Only the apex holds these; the etcd plugin answers the zone's SOA to every
		// name, an answer whose owner is not the question's.
		qtype = 0
	}
	switch qtype {
	case dns.TypeA:
		records, truncated, err = plugin.A(ctx, v, zone, state, nil, opt)
	case dns.TypeAAAA:
		records, truncated, err = plugin.AAAA(ctx, v, zone, state, nil, opt)
	case dns.TypeTXT:
		records, truncated, err = plugin.TXT(ctx, v, zone, state, nil, opt)
		trimTXT(records)
	case dns.TypeCNAME:
		records, err = v.cname(ctx, state, opt)
	case dns.TypePTR:
		records, err = plugin.PTR(ctx, v, zone, state, opt)
	case dns.TypeMX:
		records, extra, err = plugin.MX(ctx, v, zone, state, opt)
		extra = v.glueAAAA(ctx, state, records, extra, opt)
	case dns.TypeSRV:
		records, extra, err = plugin.SRV(ctx, v, zone, state, opt)
		extra = v.glueAAAA(ctx, state, records, extra, opt)
	case dns.TypeSOA:
		records, err = plugin.SOA(ctx, v, zone, state, opt)
	case dns.TypeNS:
		records, extra, err = plugin.NS(ctx, v, zone, state, opt)
	default:
		// An A lookup tells NODATA (the name exists) from NXDOMAIN.
		_, _, err = plugin.A(ctx, v, zone, state, nil, opt)
	}

	if v.IsNameError(err) && v.exists(state.Name()) {
		// The lookups above read the name's own key or its apex.dns key only; the name
		// exists, so the answer is NODATA (RFC 1034 section 4.3.2), never NXDOMAIN.
		records, extra, err = nil, nil, nil
	}
	tail := chainAnswered
	if len(records) == 0 && err == nil && state.QType() != dns.TypeCNAME {
		// A CNAME answers every type (RFC 1034 section 4.3.2), also when its target has no
		// record of the type; the etcd plugin drops it then.
		records, tail = v.aliasChain(ctx, state, opt)
	}
	a := &Answer{rcode: dns.RcodeSuccess, truncated: truncated || v.capped, capped: v.capped, answer: records, extra: extra}
	switch {
	case v.IsNameError(err):
		a = &Answer{rcode: dns.RcodeNameError}
	case err != nil:
		return nil, err
	case tail == chainNXDomain:
		// The rcode is the last name's (RFC 6604 section 3), with the CNAMEs that lead
		// there.
		a.rcode = dns.RcodeNameError
	}
	if (len(a.answer) == 0 || tail != chainAnswered) && v.services == nil { // a transfer's view has no use for it
		// NXDOMAIN or NODATA, also at the end of CNAMEs in the zone: the SOA in the
		// authority section (RFC 2308 sections 2.1 and 2.2), which resolvers cache the
		// answer for.
		a.ns, _ = plugin.SOA(ctx, v, zone, state, opt)
		a.extra = nil
	}
	a.serial = len(a.ns) > 0 || qtype == dns.TypeSOA
	return a, nil
}

// trimTXT drops the empty string that the etcd plugin's record builder appends to a text
// whose length is a multiple of 255: a 255-byte text is one string, not two.
func trimTXT(rrs []dns.RR) {
	for _, rr := range rrs {
		t, ok := rr.(*dns.TXT)
		if !ok || len(t.Txt) < 2 || t.Txt[len(t.Txt)-1] != "" {
			continue
		}
		full := true
		for _, s := range t.Txt[:len(t.Txt)-1] {
			full = full && len(s) == 255
		}
		if full {
			t.Txt = t.Txt[:len(t.Txt)-1]
		}
	}
}

// Answer is a response, prepared to be written many times (Snapshot.Keep). Its records are shared
// by every response written from it, as the file plugin shares its zone's: a plugin that
// changes a response copies it first (cache, rewrite), or changes only its slices
// (loadbalance), which are the response's own.
type Answer struct {
	rcode             int
	truncated         bool
	capped            bool // a lookup stopped at max_answers: truncated for that
	answer, ns, extra []dns.RR
	// serial marks an answer holding the zone's SOA: its serial is the revision of the
	// snapshot a query reads, not of the one the answer was built from.
	serial bool
	seq    atomic.Uint64 // the snapshot it is known to be current at (Snapshot.seq)
	reads  []string      // the key paths it was built from, with the keys below them
	until  int64         // when a leased record's TTL changes, in unix nanoseconds (view.until)
	// cacheable is set when the answer depends on the snapshot's records alone.
	cacheable bool
}

// Rcode returns the answer's response code.
func (a *Answer) Rcode() int { return a.rcode }

// NameMissing reports whether the answer is NXDOMAIN for the query name itself, not for the
// end of a CNAME chain that starts at it (RFC 6604 section 3): the name has no record, which
// is what fallthrough passes on. The etcd plugin never passes on a name that holds a CNAME.
func (a *Answer) NameMissing() bool { return a.rcode == dns.RcodeNameError && len(a.answer) == 0 }

// Capped reports whether a lookup of the answer stopped after max_answers keys: the
// answer is partial, and says so with TC.
func (a *Answer) Capped() bool { return a.capped }

// Msg returns a as the response to r from snapshot s, a message of its own.
func (a *Answer) Msg(r *dns.Msg, s *Snapshot) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, a.rcode)
	m.Authoritative = true
	m.Truncated = a.truncated
	m.Answer, m.Ns, m.Extra = a.section(a.answer, s), a.section(a.ns, s), a.section(a.extra, s)
	return m
}

// section returns the response's own slice of rrs, with s's serial in an SOA record.
func (a *Answer) section(rrs []dns.RR, s *Snapshot) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := slices.Clone(rrs)
	if !a.serial {
		return out
	}
	for i, rr := range out {
		if soa, ok := rr.(*dns.SOA); ok {
			fresh := *soa
			fresh.Serial = s.Serial()
			out[i] = &fresh
		}
	}
	return out
}
