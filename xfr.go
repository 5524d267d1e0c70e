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

// maxIXFRSteps bounds the changes one IXFR answers change by change: each step reads the
// names above the changed keys twice, the apex included, which answers with up to
// max_answers keys; past it, the whole zone costs less.
const maxIXFRSteps = 16

// Transfer implements transfer.Transferer: the zone as one snapshot holds it, at one
// serial (the snapshot's revision), between its SOA records (RFC 5936). A SkyDNS name
// answers with its subtree, which a zone file cannot say; the zone carries, for every name
// with keys at or below it, the records etcdsd answers for it, type by type (zoneRecords).
// A secondary that loads it answers those names and types as etcdsd does. An IXFR whose
// serial is the current one or newer gets the SOA alone (RFC 1995 section 2); one whose
// serial the journal holds, no more than maxIXFRSteps changes back, gets the changes
// since, change by change (section 4); any other gets the whole zone, which RFC 1995
// allows. The CoreDNS transfer plugin asks one handler per plugin name: a zone of another
// etcdsd stanza of the instance is answered by that stanza. Errors:
// transfer.ErrNotAuthoritative for a zone no stanza serves, errNotSynced before the
// first complete list.
func (e *Etcdsd) Transfer(zone string, serial uint32) (<-chan []dns.RR, error) {
	zone = strings.ToLower(dns.Fqdn(zone))
	if !slices.Contains(e.Zones, zone) {
		if other := e.stanzaOf(zone); other != nil {
			return other.Transfer(zone, serial)
		}
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
	x := &zoneTransfer{e: e, zone: zone, now: e.now(), memo: map[memoKey][]dns.RR{}}
	soa := x.soa(snap)
	current := soa[0].(*dns.SOA).Serial
	ch := make(chan []dns.RR)
	go func() {
		defer close(ch)
		ch <- soa
		switch {
		case serial != 0 && int32(serial-current) >= 0: // #nosec G115 -- RFC 1982 serial arithmetic
			return
		case len(steps) > 1 && len(steps) <= maxIXFRSteps+1:
			for i := 1; i < len(steps); i++ {
				x.delta(ch, steps[i-1].snap, steps[i].snap, steps[i].keys)
			}
		default:
			for _, name := range x.names(snap) {
				if rrs := x.records(snap, name); len(rrs) > 0 {
					ch <- rrs
				}
			}
		}
		ch <- soa
	}()
	return ch, nil
}

// stanzaOf returns the etcdsd stanza of e's instance that serves zone, or nil.
func (e *Etcdsd) stanzaOf(zone string) *Etcdsd {
	if e.group == nil {
		return nil
	}
	e.group.mu.Lock()
	defer e.group.mu.Unlock()
	for _, m := range e.group.members {
		if slices.Contains(m.Zones, zone) {
			return m
		}
	}
	return nil
}

// zoneTransfer is one transfer of one zone: the records of a name in a snapshot are read
// once, as an IXFR's steps meet each snapshot twice.
type zoneTransfer struct {
	e    *Etcdsd
	zone string
	now  time.Time
	memo map[memoKey][]dns.RR
}

type memoKey struct {
	snap *snapshot
	name string
}

func (x *zoneTransfer) view(s *snapshot) *view {
	return &view{e: x.e, snap: s, zone: x.zone, now: x.now, granted: true}
}

func (x *zoneTransfer) soa(s *snapshot) []dns.RR {
	soa, _ := plugin.SOA(context.Background(), x.view(s), x.zone, request.Request{}, plugin.Options{})
	return soa
}

// delta sends one IXFR difference sequence (RFC 1995 section 4): the old SOA, the records
// that went, the new SOA, the records that came. Only the names of the changed keys, and
// the names above them, whose subtrees hold the keys, can have changed.
func (x *zoneTransfer) delta(ch chan<- []dns.RR, from, to *snapshot, keys []string) {
	names := map[string]bool{}
	for _, key := range keys {
		for _, s := range []*snapshot{from, to} {
			path := namePath(s.root, key)
			if path == "" {
				path = key
			}
			for _, n := range x.owners(path) {
				names[n] = true
			}
		}
	}
	var gone, came []dns.RR
	for _, name := range canonical(names) {
		old, now := x.records(from, name), x.records(to, name)
		gone = append(gone, without(old, now)...)
		came = append(came, without(now, old)...)
	}
	ch <- append(x.soa(from), gone...)
	ch <- append(x.soa(to), came...)
}

// without returns the records of a that b does not hold, TTL included: a secondary
// deletes a record only as it holds it.
func without(a, b []dns.RR) []dns.RR {
	var out []dns.RR
	for _, r := range a {
		if !slices.ContainsFunc(b, func(o dns.RR) bool { return dns.IsDuplicate(r, o) && r.Header().Ttl == o.Header().Ttl }) {
			out = append(out, r)
		}
	}
	return out
}

// names returns the zone's names in canonical order: the apex, and every name with a key
// at or below it, under its DNS name (namePath for keys with capitals or dotted labels),
// that no other of e's zones holds, and that the zone holds (zoneTransfer.holds).
func (x *zoneTransfer) names(s *snapshot) []string {
	root := rootKey(msg.Path(x.zone, x.e.PathPrefix))
	names := map[string]bool{x.zone: true}
	s.below(root+"/", func(en *entry) bool {
		path := fullKey(s.root, en.key)
		if en.name() != "" {
			path = en.name()
		}
		for _, n := range x.owners(path) {
			names[n] = x.holds(s, n)
		}
		return true
	})
	for n, held := range names {
		if !held {
			delete(names, n)
		}
	}
	return canonical(names)
}

// owners returns the names of the zone whose records a key at path is part of, in
// lower case: its own name and every name above it up to the apex, as a SkyDNS name
// answers with its subtree; names another of e's zones holds are left out.
func (x *zoneTransfer) owners(path string) []string {
	root := rootKey(msg.Path(x.zone, x.e.PathPrefix))
	out := []string{x.zone}
	rel, ok := strings.CutPrefix(path, root+"/")
	if !ok {
		return out
	}
	labels := strings.Split(strings.ToLower(rel), "/")
	for i := range labels {
		owner := dns.Fqdn(strings.Join(reversed(labels[:i+1]), ".") + "." + x.zone)
		if plugin.Zones(x.e.Zones).Matches(owner) == x.zone {
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
// records too. An alias's CNAME comes from view.alias.
var (
	zoneTypes    = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSRV, dns.TypeMX}
	reverseTypes = append(zoneTypes[:len(zoneTypes):len(zoneTypes)], dns.TypePTR)
)

// records returns the records etcdsd answers for name in s, type by type: those the name
// owns in each answer (not the records of a CNAME's target, nor glue), each RRset without
// repeats and at one TTL, the lowest (RFC 2181 section 5). An alias carries its CNAME
// alone, and a CNAME is left out beside other records (RFC 1034 section 3.6.2). At the
// apex, the SOA is the transfer's own; the NS records come from the dns/ns layout, or are
// the SOA's name server when there is none, as a zone must have them (RFC 1034 section
// 4.2.1).
func (x *zoneTransfer) records(s *snapshot, name string) []dns.RR {
	k := memoKey{s, name}
	if rrs, ok := x.memo[k]; ok {
		return rrs
	}
	var rrs []dns.RR
	if x.holds(s, name) {
		rrs = x.read(x.view(s), name)
	}
	x.memo[k] = rrs
	return rrs
}

// holds reports whether the zone in s has name: the apex, or a name with a key at or
// below it, under its own path, never one a wildcard answers; without the wildcards
// option, no name with a "*" label, which a secondary would make a wildcard.
func (x *zoneTransfer) holds(s *snapshot, name string) bool {
	if name == x.zone {
		return true
	}
	if !x.e.Wildcards && slices.Contains(dns.SplitDomainName(name), "*") {
		return false
	}
	return s.exists(msg.Path(name, x.e.PathPrefix))
}

func (x *zoneTransfer) read(v *view, name string) []dns.RR {
	ctx := context.Background()
	if name != x.zone {
		m := new(dns.Msg).SetQuestion(name, dns.TypeCNAME)
		if cname := v.alias(ctx, request.Request{Req: m}, plugin.Options{}); cname != nil {
			cname.Header().Name = name
			return []dns.RR{cname}
		}
	}
	types := zoneTypes
	if reverse(x.zone) {
		types = reverseTypes
	}
	if name == x.zone {
		types = append([]uint16{dns.TypeNS}, types...)
	}
	var rrs []dns.RR
	for _, qtype := range types {
		a, err := x.e.answer(ctx, v, x.zone, request.Request{Req: new(dns.Msg).SetQuestion(name, qtype)})
		if err != nil || a.rcode != dns.RcodeSuccess {
			continue
		}
		var set []dns.RR
		for _, rr := range a.answer {
			h := rr.Header()
			if h.Rrtype != qtype || !strings.EqualFold(h.Name, name) {
				continue
			}
			if i := slices.IndexFunc(set, func(o dns.RR) bool { return dns.IsDuplicate(rr, o) }); i >= 0 {
				set[i].Header().Ttl = min(set[i].Header().Ttl, h.Ttl)
				continue
			}
			c := dns.Copy(rr)
			c.Header().Name = name
			set = append(set, c)
		}
		if qtype == dns.TypeNS && len(set) == 0 {
			soa := x.soa(v.snap)[0].(*dns.SOA)
			set = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: soa.Hdr.Ttl}, Ns: soa.Ns}}
		}
		lowest := ^uint32(0)
		for _, rr := range set {
			lowest = min(lowest, rr.Header().Ttl)
		}
		for _, rr := range set {
			rr.Header().Ttl = lowest
		}
		rrs = append(rrs, set...)
	}
	return rrs
}
