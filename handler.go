package etcdsd

import (
	"context"
	"errors"

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
	zone := plugin.Zones(e.zones).Matches(state.Name())
	if zone == "" {
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}
	idx := e.byZone[zone]
	snap := idx.snapshot()
	if snap == nil {
		// Without a complete list we cannot tell a missing name from a missing index.
		return dns.RcodeServerFailure, plugin.Error(e.Name(), errNotSynced)
	}
	if e.MaxStale > 0 && e.tooStale(idx, e.Now()) {
		return dns.RcodeServerFailure, plugin.Error(e.Name(), errTooStale)
	}

	a, err := e.lookup(ctx, snap, zone, state)
	if err != nil {
		return plugin.BackendError(ctx, snap.Backend(&e.Options, zone), zone, dns.RcodeServerFailure, state, err, plugin.Options{NoApexFallback: e.NoApexFallback})
	}
	if a.NameMissing() && e.Fall.Through(state.Name()) {
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}
	w.WriteMsg(a.Msg(r, snap))
	// The response is written: the server must not write one of its own.
	return dns.RcodeSuccess, nil
}

// Name implements plugin.Handler.
func (e *Etcdsd) Name() string { return pluginName }
