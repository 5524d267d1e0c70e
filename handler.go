package etcdsd

import (
	"context"
	"errors"
	"time"

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
	now := time.Now()
	if e.tooStale(idx, now) {
		return dns.RcodeServerFailure, plugin.Error(e.Name(), errTooStale)
	}
	v := &view{e: e, snap: snap, now: now}
	opt := plugin.Options{NoApexFallback: e.NoApexFallback}

	var (
		records, extra []dns.RR
		truncated      bool
		err            error
	)
	switch state.QType() {
	case dns.TypeA:
		records, truncated, err = plugin.A(ctx, v, zone, state, nil, opt)
	case dns.TypeAAAA:
		records, truncated, err = plugin.AAAA(ctx, v, zone, state, nil, opt)
	case dns.TypeTXT:
		records, truncated, err = plugin.TXT(ctx, v, zone, state, nil, opt)
		trimTXT(records)
	case dns.TypeCNAME:
		records, err = plugin.CNAME(ctx, v, zone, state, opt)
	case dns.TypePTR:
		records, err = plugin.PTR(ctx, v, zone, state, opt)
	case dns.TypeMX:
		records, extra, err = plugin.MX(ctx, v, zone, state, opt)
	case dns.TypeSRV:
		records, extra, err = plugin.SRV(ctx, v, zone, state, opt)
	case dns.TypeSOA:
		records, err = plugin.SOA(ctx, v, zone, state, opt)
	case dns.TypeNS:
		if state.Name() == zone {
			records, extra, err = plugin.NS(ctx, v, zone, state, opt)
			break
		}
		_, _, err = plugin.A(ctx, v, zone, state, nil, opt)
	default:
		// An A lookup tells NODATA (the name exists) from NXDOMAIN.
		_, _, err = plugin.A(ctx, v, zone, state, nil, opt)
	}

	switch {
	case v.IsNameError(err):
		if e.Fall.Through(state.Name()) {
			return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
		}
		return plugin.BackendError(ctx, v, zone, dns.RcodeNameError, state, nil, opt)
	case err != nil:
		return plugin.BackendError(ctx, v, zone, dns.RcodeServerFailure, state, err, opt)
	case len(records) == 0:
		return plugin.BackendError(ctx, v, zone, dns.RcodeSuccess, state, nil, opt)
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Truncated = truncated
	m.Answer = records
	m.Extra = extra
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
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
