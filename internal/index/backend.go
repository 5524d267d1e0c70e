package index

import (
	"cmp"
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

var (
	errKeyNotFound = errors.New("key not found")
	errNoUpstream  = errors.New("no upstream to look up names outside the zone")
)

// Options are what answers depend on besides the records: the Corefile stanza's options
// and the clock.
type Options struct {
	PathPrefix  string
	MinLeaseTTL uint32 // lower bound for lease-derived TTLs, in seconds; 0: 30
	MaxLeaseTTL uint32 // upper bound for lease-derived TTLs, in seconds; 0: 86400
	// NegativeTTL is the SOA's MINIMUM, in seconds: how long resolvers keep an NXDOMAIN or
	// NODATA (RFC 2308 section 5); 0: DefaultNegativeTTL.
	NegativeTTL    uint32
	NoApexFallback bool
	// Wildcards serves a "*" key as an RFC 4592 wildcard: it answers the names below its
	// parent that do not exist, and a "*" in a query is a label like any other.
	Wildcards  bool
	MaxAnswers int // keys one lookup reads at most; 0: DefaultMaxAnswers
	// Upstream looks up names outside the zone, such as a CNAME's target; nil: none,
	// and such lookups fail.
	Upstream Upstream
	// Now is the clock of leased TTLs and of the expiry of prepared answers; tests move a
	// fake one. It must be set.
	Now func() time.Time
}

// Upstream resolves a name outside the zone: CoreDNS's upstream.Upstream.
type Upstream interface {
	Lookup(ctx context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error)
}

// view answers one query from one snapshot. It implements plugin.ServiceBackend, so the
// record building of plugin.A, plugin.SRV, ... is the etcd plugin's own, and every lookup
// a query makes (the apex, CNAME and SRV targets) sees the same revision.
type view struct {
	o    *Options
	snap *Snapshot
	zone string
	now  time.Time // when the answer is built; zero until a leased record asks (view.clock)
	// capped is set when a lookup stopped at max_answers: the answer is partial.
	capped bool
	// cacheable is cleared when the answer depends on more than the snapshot: a name
	// looked up outside the zone.
	cacheable bool
	// until is when the TTL of a leased record in the answer changes next, in unix
	// nanoseconds; 0: no record's TTL counts down.
	until int64
	// granted gives leased records their lease's granted TTL rather than what is left of
	// it: a zone transfer's records must not change with the moment of the transfer.
	granted bool
	// reads collects the key paths the answer is built from, each with the keys below
	// it, for AnswerCache.get to tell when a change makes the answer old; nil: not kept.
	reads *[]string
	// services keeps what Services returned for a name, for a transfer, which asks every
	// name for every type (Transfer.view); with it, no glue is built. nil on the query path.
	services map[servicesKey][]msg.Service
	paths    map[string]namedPath
}

// servicesKey is what view.Services's result depends on besides the view: the question's
// type decides whether a host name with a text is a CNAME (txt) and whether keys that are
// no name may take part (targets: SRV, MX and NS answers name targets after keys).
type servicesKey struct {
	name                string
	exact, txt, targets bool
}

// namesTargets reports whether answers of qtype name targets, which the record builders
// name after the key of a value with an address.
func namesTargets(qtype uint16) bool {
	return qtype == dns.TypeSRV || qtype == dns.TypeMX || qtype == dns.TypeNS
}

// clock returns the time the answer is built at: only leased records' TTLs depend on it.
func (v *view) clock() time.Time {
	if v.now.IsZero() {
		v.now = v.o.Now()
	}
	return v.now
}

// depends notes that the answer depends on the keys at and below path.
func (v *view) depends(path string) {
	if v.reads != nil {
		*v.reads = append(*v.reads, strings.TrimSuffix(path, "/"))
	}
}

var _ plugin.ServiceBackend = (*view)(nil)

// Services implements plugin.ServiceBackend.
func (v *view) Services(ctx context.Context, state request.Request, exact bool, _ plugin.Options) ([]msg.Service, error) {
	qtype := state.QType()
	k := servicesKey{state.Name(), exact, qtype == dns.TypeTXT, namesTargets(qtype)}
	// The record builders range over the services by value: the slice is never written.
	if sx, ok := v.services[k]; ok {
		if sx == nil {
			return nil, errKeyNotFound
		}
		return sx, nil
	}
	sx, err := v.Records(ctx, state, exact)
	if err == nil {
		sx = msg.Group(sx)
	}
	if v.services != nil && (err == nil || v.IsNameError(err)) {
		v.services[k] = sx
	}
	return sx, err
}

// Reverse implements plugin.ServiceBackend; PTR data lives in the same tree.
func (v *view) Reverse(ctx context.Context, state request.Request, exact bool, opt plugin.Options) ([]msg.Service, error) {
	return v.Services(ctx, state, exact, opt)
}

// Lookup implements plugin.ServiceBackend: names outside our zones go to the upstream.
func (v *view) Lookup(ctx context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error) {
	v.cacheable = false
	if v.o.Upstream == nil {
		return nil, errNoUpstream
	}
	return v.o.Upstream.Lookup(ctx, state, name, typ)
}

// IsNameError implements plugin.ServiceBackend.
func (v *view) IsNameError(err error) bool { return errors.Is(err, errKeyNotFound) }

// Serial implements plugin.ServiceBackend. The etcd revision of the snapshot changes
// only when the data does and is the same on every replica reading the same etcd.
func (v *view) Serial(request.Request) uint32 { return v.snap.Serial() }

// DefaultNegativeTTL is the built-in etcd plugin's SOA MINIMUM, in seconds.
const DefaultNegativeTTL = 30

// MinTTL implements plugin.ServiceBackend: plugin.SOA makes it the SOA's MINIMUM, and its
// TTL up to 300 s.
func (v *view) MinTTL(request.Request) uint32 { return cmp.Or(v.o.NegativeTTL, DefaultNegativeTTL) }

// path returns the key path a query for name reads, and whether name has a "*" or "any"
// label. With wildcards there is no such label, and a name that does not exist reads the
// wildcard that answers it (view.wildcard). A label with a '/' below the zone would read
// keys of other names: such a name has no path. The zone's own labels may hold one (an RFC 2317 zone such as
// 128/27.2.0.192.in-addr.arpa), as they map to the keys the operator configured.
func (v *view) path(name string) (path string, star, ok bool) {
	if p, ok := v.paths[name]; ok {
		return p.path, p.star, p.ok
	}
	path, star, ok = v.pathOf(name)
	if v.paths != nil {
		v.paths[name] = namedPath{path, star, ok}
	}
	return path, star, ok
}

// namedPath is a result of view.path, which a transfer's view keeps.
type namedPath struct {
	path     string
	star, ok bool
}

func (v *view) pathOf(name string) (path string, star, ok bool) {
	if strings.Contains(strings.TrimSuffix(name, v.zone), "/") {
		return "", false, false
	}
	if !v.o.Wildcards {
		path, star = msg.PathWithWildcard(name, v.o.PathPrefix)
		return path, star, true
	}
	path = msg.Path(name, v.o.PathPrefix)
	if v.depends(path); name == v.zone || v.snap.exists(path) || dns.IsSubDomain("dns."+v.zone, name) {
		// The etcd plugin's record builders look up the apex's records and name servers
		// as apex.dns and ns.dns below the zone: no wildcard stands in for those.
		return path, false, true
	}
	return v.wildcard(name), false, true
}

// wildcard returns the path of the wildcard that answers name, a name that does not
// exist, or name's own path when there is none (RFC 4592 section 3.3.1): "*" below the
// closest encloser, the nearest ancestor of name that exists.
func (v *view) wildcard(name string) string {
	for encloser := name; encloser != v.zone; {
		off, _ := dns.NextLabel(encloser, 0)
		encloser = encloser[off:]
		at := msg.Path(encloser, v.o.PathPrefix)
		if v.depends(at); encloser == v.zone || v.snap.exists(at) {
			source := msg.Path("*."+encloser, v.o.PathPrefix)
			if v.depends(source); v.snap.exists(source) {
				return source
			}
			break
		}
	}
	return msg.Path(name, v.o.PathPrefix)
}

// exists reports whether name has a key at or below it: the zone's apex always does,
// as it holds the SOA. A name with a "*" or "any" label keeps the etcd plugin's meaning,
// a pattern whose lookups alone say whether anything matches.
func (v *view) exists(name string) bool {
	if name == v.zone {
		return true
	}
	path, star, ok := v.path(name)
	if !ok || star {
		return false
	}
	v.depends(path)
	return v.snap.exists(path)
}

// Records implements plugin.ServiceBackend. It selects the keys of the etcd plugin's
// range reads, the name's subtree (and its own key, snapshot.lookup), else the name's own
// key; with a "*" or "any" label, the subtree above the first one, filtered label by
// label.
func (v *view) Records(_ context.Context, state request.Request, exact bool) ([]msg.Service, error) {
	name := state.Name()
	path, star, ok := v.path(name)
	if !ok {
		return nil, errKeyNotFound
	}
	v.depends(path)
	limit := v.o.MaxAnswers
	if limit <= 0 {
		limit = DefaultMaxAnswers
	}
	found, capped := v.snap.lookup(path, !exact, limit)
	if capped {
		v.capped = true
	}
	if len(found) == 0 {
		return nil, errKeyNotFound
	}

	var labels []string
	if star {
		labels = strings.Split(msg.Path(name, v.o.PathPrefix), "/")
	}
	qtype := state.QType()
	sx := make([]msg.Service, 0, len(found))
	for _, en := range found {
		if en.bad {
			continue
		}
		if star || v.o.Wildcards {
			key := fullKey(v.snap.root, en.key)
			if star && !matchesWildcard(key, labels) && (en.name() == "" || !matchesWildcard(en.name(), labels)) {
				continue
			}
			if v.o.Wildcards && (wildcardBelow(key, path) || en.name() != "" && wildcardBelow(en.name(), path)) {
				continue // a wildcard's records are its own, not those of the names above it
			}
		}
		// Only TXT answers may come from a value without a host.
		if en.host == "" && (qtype != dns.TypeTXT || en.text() == "") {
			continue
		}
		if en.unnamed && namesTargets(qtype) && net.ParseIP(en.host) != nil {
			continue // the record builders would name its target after the key, which is no name
		}
		s := en.service(v.snap.root)
		if s.TargetStrip != 0 && net.ParseIP(s.Host) == nil {
			// targetstrip drops labels of a target made from the key (external-dns's
			// value id); the record builders drop them of a host name too, so that an SRV
			// query of an alias named the zone's apex, with every address of the zone as
			// its glue. A host name is the target as it stands.
			s.TargetStrip = 0
		}
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

// wildcardBelow reports whether key has a "*" label below path.
func wildcardBelow(key, path string) bool {
	rest, ok := strings.CutPrefix(key, strings.TrimSuffix(path, "/"))
	return ok && (strings.Contains(rest, "/*/") || strings.HasSuffix(rest, "/*"))
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
		left := en.lease.remaining(v.clock())
		if v.granted {
			left = en.lease.granted.Load()
		} else if next := en.lease.tick(v.now); v.until == 0 || next < v.until {
			v.until = next
		}
		if left > 0 {
			leased = clampLease(left, v.o.MinLeaseTTL, v.o.MaxLeaseTTL)
		}
	}
	own := en.ttl
	if own > math.MaxInt32 {
		// A TTL with the top bit set is zero (RFC 2181 section 8): as a resolver would
		// take it, a record of "ttl":4294967295 is not cached.
		return 0
	}
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
		lo = DefaultMinLeaseTTL
	}
	if hi == 0 {
		hi = DefaultMaxLeaseTTL
	}
	switch {
	case left < int64(lo):
		return lo
	case left > int64(hi):
		return hi
	}
	return uint32(left) // #nosec G115 -- bounded by hi above
}

// cname answers a CNAME query. The etcd plugin reads the name's own key alone, so a name
// whose record lies below it (external-dns writes alias.example.local as
// .../alias/0a1b2c3d) got NXDOMAIN although its A query answers with the CNAME
// (coredns#2849). Without an own key, a name that is an alias (view.alias) has its CNAME.
func (v *view) cname(ctx context.Context, state request.Request, opt plugin.Options) ([]dns.RR, error) {
	records, err := plugin.CNAME(ctx, v, v.zone, state, opt)
	if !v.IsNameError(err) {
		return records, err
	}
	if cname := v.alias(ctx, state, opt); cname != nil {
		return []dns.RR{cname}, nil
	}
	return nil, err
}

// alias returns the CNAME of state's name when the name is an alias and nothing else:
// every record at and below it is a host name without port or mail flag, and all name the
// same target (RFC 1034 section 3.6.2: a CNAME stands alone). A text beside the host is
// external-dns's ownership text (entry.aliasText); a text alone is other data. A name that also
// holds addresses, SRV instances or mail exchangers is none, nor are the apex, the
// dns.ZONE layouts and names with a "*" or "any" label, which keep the etcd plugin's
// meaning, nor names of a reverse zone, where a host name is a PTR target.
func (v *view) alias(ctx context.Context, state request.Request, opt plugin.Options) dns.RR {
	name := state.Name()
	if _, star, _ := v.path(name); star || name == v.zone || dns.IsSubDomain("dns."+v.zone, name) || reverse(v.zone) {
		return nil
	}
	// As a TXT query reads them, so that values with a text alone are seen.
	sx, err := v.Services(ctx, state.NewWithQuestion(name, dns.TypeTXT), false, opt)
	if err != nil || len(sx) == 0 {
		return nil
	}
	target := dns.Fqdn(sx[0].Host)
	for _, s := range sx {
		if net.ParseIP(s.Host) != nil || s.Host == "" || s.Port != 0 || s.Mail || !strings.EqualFold(dns.Fqdn(s.Host), target) {
			return nil
		}
	}
	if lower := strings.ToLower(target); lower != name && plugin.Name(name).Matches(lower) {
		return nil // a name below x, whose keys are x's too
	}
	return sx[0].NewCNAME(state.QName(), sx[0].Host)
}

// reverse reports whether zone is a reverse zone, where a host name is the target of a
// PTR record, not an alias.
func reverse(zone string) bool {
	return dns.IsSubDomain("in-addr.arpa.", zone) || dns.IsSubDomain("ip6.arpa.", zone)
}

// maxChain bounds the CNAMEs of one answer, as the etcd plugin's record builders do.
const maxChain = 10

// chainEnd is where the CNAMEs of an answer (view.aliasChain) lead.
type chainEnd int

const (
	chainAnswered chainEnd = iota // out of the zone, or nowhere new: nothing more to say
	chainNoData                   // to a name of the zone without a record of the type
	chainNXDomain                 // to a name the zone does not have
)

// aliasChain returns the CNAMEs a query for state's name follows through the zone, in
// order, and where they end; nothing when the name is no alias (view.alias) or has a "*"
// or "any" label. Its callers have found no record of the type at the chain's end.
func (v *view) aliasChain(ctx context.Context, state request.Request, opt plugin.Options) ([]dns.RR, chainEnd) {
	if _, star, _ := v.path(state.Name()); star {
		return nil, chainAnswered
	}
	var chain []dns.RR
	seen := map[string]bool{state.Name(): true}
	for st := state; len(chain) < maxChain; {
		cname := v.alias(ctx, st, opt)
		if cname == nil {
			break
		}
		chain = append(chain, cname)
		target := strings.ToLower(cname.(*dns.CNAME).Target)
		if seen[target] || !dns.IsSubDomain(v.zone, target) {
			return chain, chainAnswered
		}
		seen[target] = true
		st = state.NewWithQuestion(target, dns.TypeCNAME)
	}
	if len(chain) == 0 || len(chain) == maxChain {
		return chain, chainAnswered
	}
	if !v.exists(strings.ToLower(chain[len(chain)-1].(*dns.CNAME).Target)) {
		return chain, chainNXDomain
	}
	return chain, chainNoData
}

// addressKey reports whether name is the name of a key whose host is an address: an SRV
// or MX target built from the key, whose glue the record builders made from that address.
func (v *view) addressKey(name string) bool {
	path, _, ok := v.path(name)
	if !ok {
		return false
	}
	v.depends(path)
	en := v.snap.get(path)
	return en != nil && !en.bad && net.ParseIP(en.host) != nil
}

// glueAAAA adds the AAAA records of the SRV and MX targets in the zone to extra: the etcd
// plugin adds their A records only (a TODO in plugin/backend_lookup.go), so a target with
// an IPv6 address alone had no glue. Records already in extra are not added twice.
func (v *view) glueAAAA(ctx context.Context, state request.Request, records, extra []dns.RR, opt plugin.Options) []dns.RR {
	if v.services != nil {
		return extra // a transfer's: no glue
	}
	have := make(map[string]bool, len(extra))
	for _, rr := range extra {
		have[rr.String()] = true
	}
	asked := map[string]bool{}
	for _, rr := range records {
		var target string
		switch r := rr.(type) {
		case *dns.SRV:
			target = r.Target
		case *dns.MX:
			target = r.Mx
		}
		lower := strings.ToLower(target)
		if asked[lower] || !dns.IsSubDomain(v.zone, lower) || v.addressKey(lower) {
			continue
		}
		asked[lower] = true
		addrs, _, err := plugin.AAAA(ctx, v, v.zone, state.NewWithQuestion(target, dns.TypeAAAA), nil, opt)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if s := a.String(); !have[s] {
				have[s] = true
				extra = append(extra, a)
			}
		}
	}
	return extra
}
