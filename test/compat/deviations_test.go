package compat

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/etcdsd/etcdsd/skydns"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// deviation names the documented difference (a row of docs/differences.md) that explains
// every difference between the etcd plugin's answer a and etcdsd's b to q,
// or returns "". The etcd plugin stays the oracle: what etcdsd must answer instead is
// derived from its answers to this and other questions.
func (p *pair) deviation(q query, a, b *dns.Msg, tolerance uint32) string {
	same := func(x, y []dns.RR) bool { return sectionDiff(x, y, tolerance) == "" }
	name := strings.ToLower(q.name)
	switch {
	case q.qtype == dns.TypeSOA && a.Rcode == dns.RcodeSuccess && len(a.Answer) == 1 && name != p.apex(name):
		// The etcd plugin answers the zone's SOA to every name; only the apex holds it.
		// A name that does not exist goes to the next plugin with fallthrough.
		want := dns.RcodeNameError
		if p.exists(q) {
			want = dns.RcodeSuccess
		} else if p.fallsThrough && b.Rcode == dns.RcodeServerFailure {
			return "SOA only at the apex"
		}
		if b.Rcode == want && len(b.Answer) == 0 && same(b.Ns, a.Answer) {
			return "SOA only at the apex"
		}
		// An alias answers with its CNAME, as it does for every type.
		if len(b.Answer) > 0 && allCNAMEs(b.Answer) && p.chainEnds(q, b) && p.followed(q, b.Answer[0]) {
			return "SOA only at the apex"
		}
	case (a.Rcode == dns.RcodeNameError || a.Rcode == dns.RcodeServerFailure && p.fallsThrough) && b.Rcode == dns.RcodeSuccess && p.exists(q):
		// A name with keys at or below it exists: NODATA, and its CNAME if it has one.
		// With fallthrough the etcd plugin passes it to the next plugin, which fails.
		if len(b.Answer) == 0 && len(b.Ns) == 1 && b.Ns[0].Header().Rrtype == dns.TypeSOA && b.Ns[0].Header().Name == p.apex(name) {
			return "NODATA for a name that exists"
		}
		if len(b.Answer) > 0 && allCNAMEs(b.Answer) && p.chainEnds(q, b) && p.followed(q, b.Answer[0]) {
			return "CNAME of a name whose record lies below it"
		}
	case (a.Rcode == dns.RcodeNameError || a.Rcode == dns.RcodeServerFailure && p.fallsThrough) && b.Rcode == dns.RcodeNameError &&
		len(b.Answer) > 0 && allCNAMEs(b.Answer) && p.exists(q) && p.chainEnds(q, b) && p.followed(q, b.Answer[0]):
		// The same CNAME, to a name of the zone that does not exist.
		return "CNAME of a name whose record lies below it"
	case a.Rcode == dns.RcodeSuccess && len(a.Answer) == 0 && len(b.Answer) > 0 &&
		allCNAMEs(b.Answer) && strings.EqualFold(b.Answer[0].Header().Name, q.name) && p.chainEnds(q, b) && p.followed(q, b.Answer[0]):
		// A CNAME answers every type, also when its target has no record of it.
		return "CNAME without data at its target"
	case a.Rcode == b.Rcode && same(a.Ns, b.Ns) && len(a.Answer) > 0 && chainGoesOn(a.Answer, b.Answer, tolerance):
		// The same, where the answer ends in a CNAME whose target, answered by etcdsd
		// through the upstream, is an alias without data.
		return "CNAME without data at its target"
	case (q.qtype == dns.TypeSRV || q.qtype == dns.TypeMX) && a.Rcode == b.Rcode && same(a.Ns, b.Ns) && !same(a.Answer, b.Answer) &&
		p.unstripped(a, b, tolerance):
		// targetstrip strips the labels of a target made from a key, not of a host name.
		return "targetstrip of a host name"
	case (q.qtype == dns.TypeSRV || q.qtype == dns.TypeMX) && a.Rcode == b.Rcode && same(a.Answer, b.Answer) && same(a.Ns, b.Ns):
		// The AAAA records of in-zone targets join their A records.
		extra := append([]dns.RR(nil), a.Extra...)
		for _, rr := range b.Extra {
			if t := rr.Header().Rrtype; t == dns.TypeAAAA || t == dns.TypeCNAME {
				if !containsRR(a.Extra, rr, tolerance) {
					extra = append(extra, rr)
				}
			}
		}
		if same(extra, b.Extra) {
			return "AAAA glue"
		}
	}
	return ""
}

// unstripped reports whether etcdsd's SRV or MX answer b is the etcd plugin's a with the
// targets a took from host names by stripping labels (targetstrip) whole: every record of
// one answer that is not in the other has a twin there, the same but for a target that
// the other's is a parent of; and the glue of every target etcdsd names is what the etcd
// plugin answers for that target's addresses (an alias's CNAME among them).
func (p *pair) unstripped(a, b *dns.Msg, tolerance uint32) bool {
	target := func(rr dns.RR) string {
		switch r := rr.(type) {
		case *dns.SRV:
			return strings.ToLower(r.Target)
		case *dns.MX:
			return strings.ToLower(r.Mx)
		}
		return ""
	}
	twin := func(stripped, whole dns.RR) bool {
		s, w := dns.Copy(stripped), dns.Copy(whole)
		ts, tw := target(s), target(w)
		if ts == "" || tw == "" || ts == tw || !dns.IsSubDomain(ts, tw) {
			return false
		}
		switch r := s.(type) {
		case *dns.SRV:
			r.Target = w.(*dns.SRV).Target
		case *dns.MX:
			r.Mx = w.(*dns.MX).Mx
		}
		return sectionDiff([]dns.RR{s}, []dns.RR{w}, tolerance) == ""
	}
	onlyA, onlyB := unmatched(a.Answer, b.Answer, tolerance), unmatched(b.Answer, a.Answer, tolerance)
	if len(onlyA) != len(onlyB) || len(onlyA) == 0 {
		return false
	}
	for _, w := range onlyB {
		if !slices.ContainsFunc(onlyA, func(s dns.RR) bool { return twin(s, w) }) {
			return false
		}
	}
	targets := map[string]bool{}
	for _, rr := range b.Answer {
		targets[target(rr)] = true
	}
	for more := true; more; { // and the targets of the glue's CNAMEs
		more = false
		for _, rr := range b.Extra {
			if c, ok := rr.(*dns.CNAME); ok && targets[strings.ToLower(c.Hdr.Name)] && !targets[strings.ToLower(c.Target)] {
				targets[strings.ToLower(c.Target)], more = true, true
			}
		}
	}
	for _, rr := range b.Extra {
		if rr.Header().Rrtype == dns.TypeOPT || containsRR(a.Extra, rr, tolerance) {
			continue
		}
		name := strings.ToLower(rr.Header().Name)
		if targets[name] && p.apex(name) == "" && (rr.Header().Rrtype == dns.TypeA || rr.Header().Rrtype == dns.TypeAAAA) {
			continue // a target out of the zones, whose glue both plugins ask the upstream for
		}
		if targets[name] && rr.Header().Rrtype == dns.TypeCNAME {
			// A target's CNAME, which etcdsd gives as glue also when its own target has no
			// address ("CNAME without data at its target"), as in "AAAA glue".
			continue
		}
		if !targets[name] || !slices.ContainsFunc([]uint16{dns.TypeA, dns.TypeAAAA}, func(t uint16) bool {
			m := p.ask(name, t)
			return m != nil && containsRR(m.Answer, rr, tolerance)
		}) {
			return false
		}
	}
	return true
}

// maxChain is the most CNAMEs etcdsd follows through its zone for one answer.
const maxChain = 10

// chainEnds reports whether b's rcode and authority section are those its CNAMEs lead to:
// NXDOMAIN and the SOA at a name of q's zone that etcd has no key at or below (RFC 6604
// section 3), NOERROR and the SOA at one without data of q's type (RFC 2308 section 2.2),
// NOERROR alone at a name out of the zone, in a loop, or past maxChain CNAMEs, and to a
// CNAME query, which the CNAME answers.
func (p *pair) chainEnds(q query, b *dns.Msg) bool {
	owners := map[string]bool{}
	for _, rr := range b.Answer {
		owners[strings.ToLower(rr.Header().Name)] = true
	}
	target := strings.ToLower(b.Answer[len(b.Answer)-1].(*dns.CNAME).Target)
	zone := p.apex(strings.ToLower(q.name))
	if q.qtype == dns.TypeCNAME || !dns.IsSubDomain(zone, target) || p.apex(target) != zone || owners[target] || len(b.Answer) >= maxChain {
		return b.Rcode == dns.RcodeSuccess && len(b.Ns) == 0
	}
	want := dns.RcodeNameError
	if p.exists(query{name: target}) {
		want = dns.RcodeSuccess
	}
	return b.Rcode == want && len(b.Ns) == 1 && b.Ns[0].Header().Rrtype == dns.TypeSOA && b.Ns[0].Header().Name == zone
}

// unanswered names the documented difference that explains why the etcd plugin gave no
// answer to q at all where etcdsd gave b, or returns "". An SRV, MX or NS answer with a
// record of a key that is no DNS name, whose target the etcd plugin names after the key,
// does not pack, and CoreDNS sends nothing: etcdsd leaves that record out of those answers
// and answers with the rest.
func (p *pair) unanswered(q query, b *dns.Msg) string {
	if q.qtype != dns.TypeSRV && q.qtype != dns.TypeMX && q.qtype != dns.TypeNS || b.Rcode != dns.RcodeSuccess {
		return ""
	}
	key, _ := msg.PathWithWildcard(strings.ToLower(q.name), p.path) // above a "*" or "any" label
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := p.cli.Get(ctx, key, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return ""
	}
	for _, kv := range resp.Kvs {
		if skydns.CheckKey(string(kv.Key)) != nil {
			return "a key that is no DNS name"
		}
	}
	return ""
}

// apex returns the origin of the pair's zone that holds name.
func (p *pair) apex(name string) string {
	best := ""
	for _, z := range p.origins {
		if dns.IsSubDomain(z, name) && len(z) > len(best) {
			best = z
		}
	}
	return best
}

// exists reports whether q's name has a key at or below it, as etcd itself says.
func (p *pair) exists(q query) bool {
	if strings.EqualFold(q.name, p.apex(strings.ToLower(q.name))) {
		return true
	}
	labels := dns.SplitDomainName(strings.ToLower(q.name))
	slices.Reverse(labels)
	key := p.path + "/" + strings.Join(labels, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	own, err1 := p.cli.Get(ctx, key, clientv3.WithCountOnly())
	below, err2 := p.cli.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err1 == nil && err2 == nil && own.Count+below.Count > 0
}

// followed reports whether the etcd plugin's answers for q's name show the alias cname:
// address and text queries follow it (when its target has such data), and an SRV query
// lists every record below the name, an alias with its target as the SRV target.
func (p *pair) followed(q query, cname dns.RR) bool {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
		if m := p.ask(q.name, t); m != nil && containsRR(m.Answer, cname, 1) {
			return true
		}
	}
	target := strings.ToLower(cname.(*dns.CNAME).Target)
	if m := p.ask(q.name, dns.TypeSRV); m != nil {
		for _, rr := range m.Answer {
			// targetstrip drops labels of the SRV target, never of the CNAME's.
			if srv, ok := rr.(*dns.SRV); ok && dns.IsSubDomain(strings.ToLower(srv.Target), target) {
				return true
			}
		}
	}
	return false
}

// ask returns the etcd plugin's answer to name and qtype, or nil, whole: over TCP.
func (p *pair) ask(name string, qtype uint16) *dns.Msg {
	m, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(new(dns.Msg).SetQuestion(name, qtype), p.builtin)
	if err != nil {
		return nil
	}
	return m
}

// chainGoesOn reports whether b is a and more CNAMEs, each owned by the target of a CNAME
// before it.
func chainGoesOn(a, b []dns.RR, tolerance uint32) bool {
	targets := map[string]bool{}
	var more []dns.RR
	for _, rr := range b {
		if !containsRR(a, rr, tolerance) {
			if rr.Header().Rrtype != dns.TypeCNAME || !targets[strings.ToLower(rr.Header().Name)] {
				return false
			}
			more = append(more, rr)
		}
		if c, ok := rr.(*dns.CNAME); ok {
			targets[strings.ToLower(c.Target)] = true
		}
	}
	return len(more) > 0 && len(a)+len(more) == len(b)
}

func allCNAMEs(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeCNAME {
			return false
		}
	}
	return true
}

// unmatched returns the records of rrs without a counterpart in other, each record of other
// the counterpart of one at most: both plugins repeat a record that two keys hold alike,
// and an unstripped target can repeat another record's.
func unmatched(rrs, other []dns.RR, tolerance uint32) []dns.RR {
	left := slices.Clone(other)
	var out []dns.RR
	for _, rr := range rrs {
		i := slices.IndexFunc(left, func(x dns.RR) bool { return sectionDiff([]dns.RR{x}, []dns.RR{rr}, tolerance) == "" })
		if i < 0 {
			out = append(out, rr)
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	return out
}

// containsRR reports whether rrs holds rr, with a TTL within tolerance.
func containsRR(rrs []dns.RR, rr dns.RR, tolerance uint32) bool {
	for _, x := range rrs {
		if sectionDiff([]dns.RR{x}, []dns.RR{rr}, tolerance) == "" {
			return true
		}
	}
	return false
}

// origins lists the zone names of a stanza's zones argument.
func origins(zones string) []string {
	var out []string
	for _, z := range strings.Fields(zones) {
		out = append(out, plugin.Host(z).NormalizeExact()...)
	}
	return out
}
