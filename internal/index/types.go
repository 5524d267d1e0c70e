package index

import (
	"slices"

	"github.com/miekg/dns"
)

// answered are the types a SkyDNS value answers, in the order a zone transfer and
// etcdsdctl ls give a name's records. A new type goes here and into view.answer.
var answered = []uint16{dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypePTR}

// Types returns the types whose queries a name of zone is answered from SkyDNS values,
// in the order etcdsdctl ls and zone transfers give them. Every zone answers PTR, as the
// etcd plugin does; see ZoneTypes for what a zone holds.
func Types() []uint16 { return slices.Clone(answered) }

// ZoneTypes returns the types zone holds records of, in a zone transfer: Types without
// CNAME, which an alias holds alone (view.alias), and, outside a reverse zone, without PTR:
// there a host name is the target of an address or SRV, not a PTR record of the name.
func ZoneTypes(zone string) []uint16 {
	return slices.DeleteFunc(Types(), func(t uint16) bool {
		return t == dns.TypeCNAME || t == dns.TypePTR && !reverse(zone)
	})
}
