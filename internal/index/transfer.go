package index

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// Transfer is one transfer of one zone (RFC 5936, RFC 1995): the records of the zone's
// names in its snapshots, at the TTLs their leases were granted. The records of a name in
// a snapshot are read once, as an IXFR's steps meet each snapshot twice.
type Transfer struct {
	o     *Options
	zones []string // every zone of the stanza: their names are left out of the others'
	zone  string
	types []uint16 // ZoneTypes(zone)
	now   time.Time
	memo  map[memoKey][]dns.RR
	views map[*Snapshot]*view // one per snapshot, whose services of a name are read once
}

// NewTransfer returns a transfer of zone, one of zones, answered with o at o.Now().
func NewTransfer(o *Options, zones []string, zone string) *Transfer {
	return &Transfer{o: o, zones: zones, zone: zone, types: ZoneTypes(zone), now: o.Now(), memo: map[memoKey][]dns.RR{}, views: map[*Snapshot]*view{}}
}

type memoKey struct {
	snap *Snapshot
	name string
}

// view returns the transfer's view of s. Every name of the zone is asked for each of its
// types, and the record builders look up SRV and MX targets too: the view reads the
// services and the path of a name once (view.services, view.paths) and builds no glue,
// which a transfer drops.
func (x *Transfer) view(s *Snapshot) *view {
	v, ok := x.views[s]
	if !ok {
		v = &view{o: x.o, snap: s, zone: x.zone, now: x.now, granted: true,
			services: map[servicesKey][]msg.Service{}, paths: map[string]namedPath{}}
		x.views[s] = v
	}
	return v
}

// SOA returns the zone's SOA record in s, with s's serial.
func (x *Transfer) SOA(s *Snapshot) []dns.RR {
	soa, _ := plugin.SOA(context.Background(), x.view(s), x.zone, request.Request{}, plugin.Options{})
	return soa
}

// Delta sends one IXFR difference sequence (RFC 1995 section 4): the old SOA, the records
// that went, the new SOA, the records that came. Only the names of the changed keys, and
// the names above them, whose subtrees hold the keys, can have changed.
func (x *Transfer) Delta(ch chan<- []dns.RR, from, to *Snapshot, keys []string) {
	names := map[string]bool{}
	for _, key := range keys {
		for _, s := range []*Snapshot{from, to} {
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
		old, now := x.Records(from, name), x.Records(to, name)
		gone = append(gone, without(old, now)...)
		came = append(came, without(now, old)...)
	}
	ch <- append(x.SOA(from), gone...)
	ch <- append(x.SOA(to), came...)
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

// Names returns the zone's names in canonical order: the apex, and every name with a key
// at or below it, under its DNS name (namePath for keys with capitals or dotted labels),
// that no other zone of the stanza holds, and that the zone holds (Transfer.holds).
func (x *Transfer) Names(s *Snapshot) []string {
	root := RootKey(msg.Path(x.zone, x.o.PathPrefix))
	names := map[string]bool{x.zone: true}
	s.below(root+"/", func(en *entry) bool {
		path := fullKey(s.root, en.key)
		if en.name() != "" {
			path = en.name()
		}
		for _, n := range x.owners(path) {
			if _, done := names[n]; !done {
				names[n] = x.holds(s, n)
			}
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
// answers with its subtree; names another zone of the stanza holds are left out, and so
// are those of a key that is no DNS name.
func (x *Transfer) owners(path string) []string {
	root := RootKey(msg.Path(x.zone, x.o.PathPrefix))
	out := []string{x.zone}
	rel, ok := strings.CutPrefix(path, root+"/")
	if !ok {
		return out
	}
	labels := strings.Split(strings.ToLower(rel), "/")
	for i := range labels {
		owner := dns.Fqdn(strings.Join(reversed(labels[:i+1]), ".") + "." + x.zone)
		if _, ok := dns.IsDomainName(owner); !ok || strings.Contains(owner, "..") {
			break // a key that is no name (skydns.CheckKey), nor is any below it
		}
		if plugin.Zones(x.zones).Matches(owner) == x.zone {
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
	order := make(map[string]string, len(names))
	for n := range names {
		order[n] = strings.Join(reversed(dns.SplitDomainName(n)), "\x00")
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(order[a], order[b]) })
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// Records returns the records etcdsd answers for name in s, type by type: those the name
// owns in each answer (not the records of a CNAME's target, nor glue), each RRset without
// repeats and at one TTL, the lowest (RFC 2181 section 5). An alias carries its CNAME
// alone, and a CNAME is left out beside other records (RFC 1034 section 3.6.2). At the
// apex, the SOA is the transfer's own; the NS records come from the dns/ns layout, or are
// the SOA's name server when there is none, as a zone must have them (RFC 1034 section
// 4.2.1).
func (x *Transfer) Records(s *Snapshot, name string) []dns.RR {
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

// Zone sends the records of every name of the zone in s (Names, Records), in canonical
// order, and keeps nothing of a name once sent: an AXFR holds one name's records and
// services at a time, not the zone's.
func (x *Transfer) Zone(s *Snapshot, send func([]dns.RR)) {
	v := x.view(s)
	for _, name := range x.Names(s) {
		if rrs := x.read(v, name); len(rrs) > 0 {
			send(rrs)
		}
		clear(v.services)
		clear(v.paths)
	}
}

// holds reports whether the zone in s has name: the apex, or a name with a key at or
// below it, under its own path, never one a wildcard answers; without the wildcards
// option, no name with a "*" label, which a secondary would make a wildcard.
func (x *Transfer) holds(s *Snapshot, name string) bool {
	if name == x.zone {
		return true
	}
	if !x.o.Wildcards && slices.Contains(dns.SplitDomainName(name), "*") {
		return false
	}
	return s.exists(msg.Path(name, x.o.PathPrefix))
}

func (x *Transfer) read(v *view, name string) []dns.RR {
	ctx := context.Background()
	if name != x.zone {
		m := new(dns.Msg).SetQuestion(name, dns.TypeCNAME)
		if cname := v.alias(ctx, request.Request{Req: m}, plugin.Options{}); cname != nil {
			cname.Header().Name = name
			return []dns.RR{cname}
		}
	}
	types := x.types
	if name == x.zone {
		types = append([]uint16{dns.TypeNS}, types...)
	}
	var rrs []dns.RR
	for _, qtype := range types {
		a, err := v.answer(ctx, request.Request{Req: new(dns.Msg).SetQuestion(name, qtype)})
		if err != nil || a.rcode != dns.RcodeSuccess {
			continue
		}
		var set []dns.RR
		seen := map[string]dns.RR{} // by the record without its TTL
		for _, rr := range a.answer {
			h := rr.Header()
			if h.Rrtype != qtype || !strings.EqualFold(h.Name, name) {
				continue
			}
			c := dns.Copy(rr)
			c.Header().Name, c.Header().Ttl = name, 0
			k := c.String()
			c.Header().Ttl = h.Ttl
			if o, ok := seen[k]; ok {
				o.Header().Ttl = min(o.Header().Ttl, h.Ttl)
				continue
			}
			seen[k] = c
			set = append(set, c)
		}
		if qtype == dns.TypeNS && len(set) == 0 {
			soa := x.SOA(v.snap)[0].(*dns.SOA)
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
