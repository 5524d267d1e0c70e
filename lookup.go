package etcdsd

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

var errKeyNotFound = errors.New("key not found")

// view answers one query from one snapshot. It implements plugin.ServiceBackend, so the
// record building of plugin.A, plugin.SRV, ... is the etcd plugin's own, and every lookup
// a query makes (the apex, CNAME and SRV targets) sees the same revision.
type view struct {
	e    *Etcdsd
	snap *snapshot
	now  time.Time
	// cacheable is cleared when the answer depends on more than the snapshot: a lease
	// that counts down, or a name looked up outside the zone.
	cacheable bool
}

var _ plugin.ServiceBackend = (*view)(nil)

// Services implements plugin.ServiceBackend.
func (v *view) Services(ctx context.Context, state request.Request, exact bool, _ plugin.Options) ([]msg.Service, error) {
	sx, err := v.Records(ctx, state, exact)
	if err != nil {
		return nil, err
	}
	return msg.Group(sx), nil
}

// Reverse implements plugin.ServiceBackend; PTR data lives in the same tree.
func (v *view) Reverse(ctx context.Context, state request.Request, exact bool, opt plugin.Options) ([]msg.Service, error) {
	return v.Services(ctx, state, exact, opt)
}

// Lookup implements plugin.ServiceBackend: names outside our zones go to the upstream.
func (v *view) Lookup(ctx context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error) {
	v.cacheable = false
	return v.e.Upstream.Lookup(ctx, state, name, typ)
}

// IsNameError implements plugin.ServiceBackend.
func (v *view) IsNameError(err error) bool { return errors.Is(err, errKeyNotFound) }

// Serial implements plugin.ServiceBackend. The etcd revision of the snapshot changes
// only when the data does and is the same on every replica reading the same etcd.
func (v *view) Serial(request.Request) uint32 { return uint32(v.snap.rev) } // #nosec G115 -- serial arithmetic wraps by design

// MinTTL implements plugin.ServiceBackend.
func (v *view) MinTTL(request.Request) uint32 { return 30 }

// Records implements plugin.ServiceBackend. It selects the same keys as the etcd plugin's
// range reads: the name's subtree, else the name's own key; with a "*" or "any" label,
// the subtree above the first one, filtered label by label.
func (v *view) Records(_ context.Context, state request.Request, exact bool) ([]msg.Service, error) {
	name := state.Name()
	if strings.Contains(name, "/") {
		// A label with a '/' would read keys of other names: it matches nothing.
		return nil, errKeyNotFound
	}
	path, star := msg.PathWithWildcard(name, v.e.PathPrefix)
	found, capped := v.snap.lookup(path, !exact, v.e.MaxAnswers)
	if capped {
		cappedTotal.Inc()
	}
	if len(found) == 0 {
		return nil, errKeyNotFound
	}

	var labels []string
	if star {
		labels = strings.Split(msg.Path(name, v.e.PathPrefix), "/")
	}
	qtype := state.QType()
	sx := make([]msg.Service, 0, len(found))
	for _, en := range found {
		if en.bad || (star && !matchesWildcard(en.key, labels)) {
			continue
		}
		// Only TXT answers may come from a value without a host.
		if en.svc.Host == "" && (qtype != dns.TypeTXT || en.svc.Text == "") {
			continue
		}
		s := en.svc
		if en.aliasText && qtype != dns.TypeTXT {
			// The etcd plugin types a host name with a text as a TXT record, so the CNAME
			// is lost for every other type. external-dns (v0.12-v0.17) writes exactly that:
			// its ownership text in the value of a CNAME. Here it stays a CNAME.
			s.Text = ""
		}
		s.TTL = v.ttl(en)
		sx = append(sx, s)
	}
	return sx, nil
}

// matchesWildcard reports whether key matches the query path split into labels, where
// "*" and "any" match any one label and a key may go deeper than the query.
func matchesWildcard(key string, labels []string) bool {
	parts := strings.Split(key, "/")
	for i, l := range labels {
		if i >= len(parts) {
			return false
		}
		if l != "*" && l != "any" && parts[i] != l {
			return false
		}
	}
	return true
}

// ttl is the record's TTL: its own "ttl", bounded by what is left of its lease (clamped
// to min/max-lease-ttl), or defaultTTL when neither is set.
func (v *view) ttl(en *entry) uint32 {
	var leased uint32
	if en.lease != nil {
		v.cacheable = false
		if left := en.lease.remaining(v.now); left > 0 {
			leased = clampLease(left, v.e.MinLeaseTTL, v.e.MaxLeaseTTL)
		}
	}
	own := en.svc.TTL
	switch {
	case leased == 0 && own == 0:
		return defaultTTL
	case leased == 0:
		return own
	case own == 0:
		return leased
	}
	return min(leased, own)
}

// clampLease bounds a lease's remaining seconds; a zero bound means its default.
func clampLease(left int64, lo, hi uint32) uint32 {
	if lo == 0 {
		lo = defaultMinLeaseTTL
	}
	if hi == 0 {
		hi = defaultMaxLeaseTTL
	}
	switch {
	case left < int64(lo):
		return lo
	case left > int64(hi):
		return hi
	}
	return uint32(left) // #nosec G115 -- bounded by hi above
}
