package etcdsd

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/coredns/coredns/plugin/transfer"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// Transfer implements transfer.Transferer: the zone as one snapshot holds it, at one
// serial (the snapshot's revision), between its SOA records (RFC 5936). A SkyDNS name
// answers with its subtree, which a zone file cannot say; the zone carries, for every name
// with keys at or below it, the records etcdsd answers for it, type by type (zoneRecords).
// A secondary that loads it answers those names and types as etcdsd does. An IXFR whose
// serial is the current one gets the SOA alone; one whose serial the journal still holds
// gets the changes since, change by change (RFC 1995 section 4); any other gets the
// whole zone, which RFC 1995 allows. Errors: transfer.ErrNotAuthoritative for a zone that
// is not e's, errNotSynced before the first complete list.
func (e *Etcdsd) Transfer(zone string, serial uint32) (<-chan []dns.RR, error) {
	zone = strings.ToLower(dns.Fqdn(zone))
	if !slices.Contains(e.Zones, zone) {
		return nil, transfer.ErrNotAuthoritative
	}
	w := e.byZone[zone]
	var steps []journalEntry
	if serial != 0 {
		steps = w.journal.since(serial)
	}
	snap := w.snapshot()
	if len(steps) > 0 {
		snap = steps[len(steps)-1].snap // the transfer and its deltas end at one serial
	}
	if snap == nil {
		return nil, errNotSynced
	}
	now := time.Now()
	v := &view{e: e, snap: snap, zone: zone, now: now}
	soa := e.soa(v)
	ch := make(chan []dns.RR)
	go func() {
		defer close(ch)
		ch <- soa
		switch {
		case serial != 0 && serial == soa[0].(*dns.SOA).Serial:
			return
		case len(steps) > 1:
			for i := 1; i < len(steps); i++ {
				from := &view{e: e, snap: steps[i-1].snap, zone: zone, now: now}
				to := &view{e: e, snap: steps[i].snap, zone: zone, now: now}
				e.delta(ch, from, to, steps[i].keys)
			}
		default:
			for _, name := range e.zoneNames(v) {
				if rrs := e.zoneRecords(v, name); len(rrs) > 0 {
					ch <- rrs
				}
			}
		}
		ch <- soa
	}()
	return ch, nil
}

func (e *Etcdsd) soa(v *view) []dns.RR {
	soa, _ := plugin.SOA(context.Background(), v, v.zone, request.Request{}, plugin.Options{})
	return soa
}

// delta sends one IXFR difference sequence (RFC 1995 section 4): the old SOA, the records
// that went, the new SOA, the records that came. Only the names of the changed keys, and
// the names above them, whose subtrees hold the keys, can have changed.
func (e *Etcdsd) delta(ch chan<- []dns.RR, from, to *view, keys []string) {
	names := map[string]bool{}
	for _, key := range keys {
		for _, s := range []*snapshot{from.snap, to.snap} {
			for _, path := range []string{key, namePath(s.root, key)} {
				for _, n := range e.owners(to.zone, path) {
					names[n] = true
				}
			}
		}
	}
	var gone, came []dns.RR
	for _, name := range canonical(names) {
		old, now := e.zoneRecords(from, name), e.zoneRecords(to, name)
		gone = append(gone, without(old, now)...)
		came = append(came, without(now, old)...)
	}
	ch <- append(e.soa(from), gone...)
	ch <- append(e.soa(to), came...)
}

// without returns the records of a that b does not hold, TTL included.
func without(a, b []dns.RR) []dns.RR {
	var out []dns.RR
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y dns.RR) bool { return dns.IsDuplicate(x, y) && x.Header().Ttl == y.Header().Ttl }) {
			out = append(out, x)
		}
	}
	return out
}

// zoneNames returns the zone's names in canonical order: the apex, and every name with a
// key at or below it, under its own path or its name path, that no other of e's zones
// holds.
func (e *Etcdsd) zoneNames(v *view) []string {
	root := rootKey(msg.Path(v.zone, e.PathPrefix))
	names := map[string]bool{v.zone: true}
	add := func(path string) {
		for _, n := range e.owners(v.zone, path) {
			names[n] = true
		}
	}
	v.snap.below(root+"/", func(en *entry) bool {
		add(en.key)
		return true
	})
	v.snap.names.Ascend(func(en *entry) bool {
		add(en.name)
		return true
	})
	return canonical(names)
}

// owners returns the names of zone whose records a key at path is part of: its own name
// and every name above it up to the apex, as a SkyDNS name answers with its subtree;
// names another of e's zones holds are left out.
func (e *Etcdsd) owners(zone, path string) []string {
	root := rootKey(msg.Path(zone, e.PathPrefix))
	rel, ok := strings.CutPrefix(path, root+"/")
	if !ok || path == "" {
		return []string{zone}
	}
	out := []string{zone}
	labels := strings.Split(rel, "/")
	for i := range labels {
		owner := dns.Fqdn(strings.Join(reversed(labels[:i+1]), ".") + "." + zone)
		if plugin.Zones(e.Zones).Matches(owner) == zone {
			out = append(out, owner)
		}
	}
	return out
}

// canonical returns names in canonical order (RFC 4034 section 6.1): label by label
// from the right.
func canonical(names map[string]bool) []string {
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	order := func(n string) string { return strings.Join(reversed(dns.SplitDomainName(n)), "\x00") }
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(order(a), order(b)) })
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// zoneTypes are the types a name of the zone is asked for; a reverse zone holds PTR
// records where a forward zone's names are aliases.
var (
	zoneTypes    = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSRV, dns.TypeMX, dns.TypeCNAME}
	reverseTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSRV, dns.TypeMX, dns.TypePTR}
)

// zoneRecords returns the records etcdsd answers for name, type by type: those the name
// owns in each answer (not the records of a CNAME's target, nor glue). A CNAME stands
// alone (RFC 1034 section 3.6.2): a name that also has other records keeps those. At the
// apex, the SOA is the transfer's own, and the NS records come from the dns/ns layout.
func (e *Etcdsd) zoneRecords(v *view, name string) []dns.RR {
	types := zoneTypes
	if reverse(v.zone) {
		types = reverseTypes
	}
	if name == v.zone {
		types = append([]uint16{dns.TypeNS}, types...)
	}
	if name != v.zone {
		m := new(dns.Msg).SetQuestion(name, dns.TypeCNAME)
		if cname := v.alias(context.Background(), request.Request{Req: m}, plugin.Options{}); cname != nil {
			return []dns.RR{cname} // an alias is nothing else
		}
	}
	var (
		rrs   []dns.RR
		cname dns.RR
		seen  = map[string]bool{}
	)
	for _, qtype := range types {
		m := new(dns.Msg).SetQuestion(name, qtype)
		a, err := e.answer(context.Background(), v, v.zone, request.Request{Req: m})
		if err != nil || a.rcode != dns.RcodeSuccess {
			continue
		}
		for _, rr := range a.answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == dns.TypeCNAME {
				if cname == nil {
					cname = rr
				}
				continue
			}
			if h.Rrtype == qtype && !seen[rr.String()] {
				seen[rr.String()] = true
				rrs = append(rrs, rr)
			}
		}
	}
	if len(rrs) == 0 && cname != nil && name != v.zone {
		return []dns.RR{cname}
	}
	return rrs
}
