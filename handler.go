package etcdsd

import (
	"context"
	"errors"
	"slices"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

var (
	errNotSynced = errors.New("no complete list from etcd yet")
	errTooStale  = errors.New("no word from etcd for longer than max_stale")
)

// ServeDNS implements plugin.Handler.
func (e *Etcdsd) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	zone := plugin.Zones(e.Zones).Matches(state.Name())
	if zone == "" {
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}
	idx := e.byZone[zone]
	snap := idx.snapshot()
	if snap == nil {
		// Without a complete list we cannot tell a missing name from a missing index.
		return dns.RcodeServerFailure, plugin.Error(e.Name(), errNotSynced)
	}
	if e.MaxStale > 0 && e.tooStale(idx, e.now()) {
		return dns.RcodeServerFailure, plugin.Error(e.Name(), errTooStale)
	}

	key := answerKey{name: state.QName(), qtype: state.QType()}
	if a := snap.answers.get(key, e.now); a != nil {
		return a.write(w, r, snap)
	}
	var reads []string
	v := &view{e: e, snap: snap, zone: zone, cacheable: true, reads: &reads}
	a, err := e.answer(ctx, v, zone, state)
	if err != nil {
		return plugin.BackendError(ctx, v, zone, dns.RcodeServerFailure, state, err, plugin.Options{NoApexFallback: e.NoApexFallback})
	}
	if a.rcode == dns.RcodeNameError && e.Fall.Through(state.Name()) {
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}
	if v.cacheable {
		slices.Sort(reads)
		a.reads = slices.Compact(reads)
		a.seq.Store(snap.seq)
		a.until = v.until
		snap.answers.put(key, a)
	}
	return a.write(w, r, snap)
}

// answer builds the response to state from v, the way the etcd plugin builds it: its
// record builders over our ServiceBackend. An error means SERVFAIL.
func (e *Etcdsd) answer(ctx context.Context, v *view, zone string, state request.Request) (*answer, error) {
	opt := plugin.Options{NoApexFallback: e.NoApexFallback}
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
	if len(records) == 0 && err == nil && state.QType() != dns.TypeCNAME {
		// A CNAME answers every type (RFC 1034 section 4.3.2), also when its target has no
		// record of the type; the etcd plugin drops it then.
		records = v.aliasChain(ctx, state, opt)
	}
	if v.capped {
		cappedTotal.Inc()
		truncated = true
	}
	a := &answer{rcode: dns.RcodeSuccess, truncated: truncated, answer: records, extra: extra}
	switch {
	case v.IsNameError(err):
		a = &answer{rcode: dns.RcodeNameError}
	case err != nil:
		return nil, err
	}
	if len(a.answer) == 0 {
		// NXDOMAIN or NODATA: the SOA in the authority section.
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

// Name implements plugin.Handler.
func (e *Etcdsd) Name() string { return pluginName }
