package etcdsd

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/skydns"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Answers where the etcd plugin breaks the DNS standards (issue 11). Each case states the
// data of the issue and the answer the RFC asks for; test/compat's TestAgainstFile asks the
// file plugin, serving the same records as a zone file, the same questions.
func TestAnswersFollowTheRFCs(t *testing.T) {
	soa := func(zone string) dns.RR {
		return test.SOA(fmt.Sprintf("%s 30 IN SOA ns.dns.%s hostmaster.%s 0 7200 1800 86400 30", zone, zone, zone))
	}
	for _, tc := range []struct {
		name   string
		stanza string
		data   [][2]string
		cases  []test.Case
	}{{
		// RFC 1034 section 4.3.2: a name with keys below it exists; its CNAME query gets
		// the CNAME (coredns#2849), other types NODATA.
		name:   "external-dns alias",
		stanza: "etcdsd example.local {\n path /rfc-xdns\n}",
		data: [][2]string{
			{"/rfc-xdns/local/example/www/25d8864c", `{"host":"10.9.0.1","targetstrip":1}`},
			{"/rfc-xdns/local/example/alias/0a1b2c3d", `{"host":"www.example.local","text":"","targetstrip":1}`},
		},
		cases: []test.Case{
			{Qname: "alias.example.local.", Qtype: dns.TypeCNAME,
				Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")}},
			{Qname: "alias.example.local.", Qtype: dns.TypeA, Answer: []dns.RR{
				test.CNAME("alias.example.local. 300 IN CNAME www.example.local."),
				test.A("www.example.local. 300 IN A 10.9.0.1")}},
			// A CNAME answers every type, also when its target has no record of it: NODATA
			// at its end, with the SOA to cache it by (RFC 2308 section 2.2).
			{Qname: "alias.example.local.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa("example.local.")},
				Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")}},
			{Qname: "alias.example.local.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("example.local.")},
				Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")}},
			{Qname: "alias.example.local.", Qtype: dns.TypeMX, Ns: []dns.RR{soa("example.local.")},
				Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")}},
			{Qname: "www.example.local.", Qtype: dns.TypeCNAME, Ns: []dns.RR{soa("example.local.")}},
			{Qname: "www.example.local.", Qtype: dns.TypePTR, Ns: []dns.RR{soa("example.local.")}},
			{Qname: "alias.example.local.", Qtype: dns.TypePTR, Ns: []dns.RR{soa("example.local.")},
				Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")}},
			{Qname: "nothere.example.local.", Qtype: dns.TypeCNAME, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("example.local.")}},
		},
	}, {
		// Only a name that is an alias and nothing else is a CNAME: not one that also holds
		// addresses, SRV instances or mail exchangers (RFC 1034 section 3.6.2).
		name:   "no CNAME beside other data",
		stanza: "etcdsd example.org {\n path /rfc-mixed\n}",
		data: [][2]string{
			{"/rfc-mixed/org/example/www", `{"host":"192.0.2.7"}`},
			{"/rfc-mixed/org/example/svc/a", `{"host":"192.0.2.150"}`},
			{"/rfc-mixed/org/example/svc/b", `{"host":"www.example.org"}`},
			{"/rfc-mixed/org/example/_tcp/_svc/s1", `{"host":"www.example.org","port":80}`},
			{"/rfc-mixed/org/example/mail/m1", `{"host":"www.example.org","mail":true}`},
			{"/rfc-mixed/org/example/dns/apex/y", `{"host":"www.example.org"}`},
			{"/rfc-mixed/org/example/two/a", `{"host":"www.example.org"}`},
			{"/rfc-mixed/org/example/two/b", `{"host":"other.example.org"}`},
			{"/rfc-mixed/org/example/txtmix/a", `{"host":"www.example.org"}`},
			{"/rfc-mixed/org/example/txtmix/t", `{"text":"v=spf1 -all"}`},
		},
		cases: []test.Case{
			{Qname: "svc.example.org.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "_svc._tcp.example.org.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "_tcp.example.org.", Qtype: dns.TypeCNAME, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "mail.example.org.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "dns.example.org.", Qtype: dns.TypeHINFO, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "two.example.org.", Qtype: dns.TypeCNAME, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "txtmix.example.org.", Qtype: dns.TypeMX, Ns: []dns.RR{soa("example.org.")}},
			{Qname: "txtmix.example.org.", Qtype: dns.TypeCNAME, Ns: []dns.RR{soa("example.org.")}},
		},
	}, {
		// The apex holds the SOA: it exists whatever no_apex_fallback says.
		name:   "apex without apex record",
		stanza: "etcdsd myzone.example.com {\n path /rfc-apex\n no_apex_fallback\n}",
		data:   [][2]string{{"/rfc-apex/com/example/myzone/svc1/5d3f0a1b", `{"host":"192.0.2.41","targetstrip":1}`}},
		cases: []test.Case{
			{Qname: "myzone.example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soa("myzone.example.com.")}},
			{Qname: "myzone.example.com.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("myzone.example.com.")}},
			{Qname: "myzone.example.com.", Qtype: dns.TypeCNAME, Ns: []dns.RR{soa("myzone.example.com.")}},
			{Qname: "svc1.myzone.example.com.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("svc1.myzone.example.com. 300 IN A 192.0.2.41")}},
		},
	}, {
		// A name's own record answers with its children's.
		name:   "own record and children",
		stanza: "etcdsd example.com {\n path /rfc-own\n}",
		data: [][2]string{
			{"/rfc-own/com/example/ttdd1", `{"host":"192.0.2.101"}`},
			{"/rfc-own/com/example/ttdd1/t1", `{"host":"192.0.2.102"}`},
		},
		cases: []test.Case{
			{Qname: "ttdd1.example.com.", Qtype: dns.TypeA, Answer: []dns.RR{
				test.A("ttdd1.example.com. 300 IN A 192.0.2.101"),
				test.A("ttdd1.example.com. 300 IN A 192.0.2.102")}},
			{Qname: "t1.ttdd1.example.com.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("t1.ttdd1.example.com. 300 IN A 192.0.2.102")}},
		},
	}, {
		// The SRV target built from a key with dots in its label resolves.
		name:   "MinIO bucket",
		stanza: "etcdsd minio.example.com {\n path /rfc-minio\n}",
		data:   [][2]string{{"/rfc-minio/com/example/minio/photos/192.0.2.61", `{"host":"192.0.2.61","port":9000,"ttl":30}`}},
		cases: []test.Case{
			{Qname: "photos.minio.example.com.", Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV("photos.minio.example.com. 30 IN SRV 10 100 9000 192.0.2.61.photos.minio.example.com.")},
				Extra:  []dns.RR{test.A("192.0.2.61.photos.minio.example.com. 30 IN A 192.0.2.61")}},
			{Qname: "photos.minio.example.com.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("photos.minio.example.com. 30 IN A 192.0.2.61")}},
			{Qname: "192.0.2.61.photos.minio.example.com.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("192.0.2.61.photos.minio.example.com. 30 IN A 192.0.2.61")}},
			{Qname: "192.0.2.61.photos.minio.example.com.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa("minio.example.com.")}},
			// The names between the zone and the target exist.
			{Qname: "61.photos.minio.example.com.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("minio.example.com.")}},
			{Qname: "2.61.photos.minio.example.com.", Qtype: dns.TypeA, Ns: []dns.RR{soa("minio.example.com.")}},
			{Qname: "192.0.2.62.photos.minio.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("minio.example.com.")}},
		},
	}, {
		// SRV and MX targets get their AAAA glue, and both kinds when dual-stack.
		name:   "AAAA glue",
		stanza: "etcdsd example.org {\n path /rfc-glue\n}",
		data: [][2]string{
			{"/rfc-glue/org/example/v6only/a", `{"host":"2001:db8::82"}`},
			{"/rfc-glue/org/example/_tcp/_xmpp-client/a", `{"host":"v6only.example.org","port":5222}`},
			{"/rfc-glue/org/example/dual/a", `{"host":"192.0.2.83"}`},
			{"/rfc-glue/org/example/dual/b", `{"host":"2001:db8::83"}`},
			{"/rfc-glue/org/example/_tcp/_imap/a", `{"host":"dual.example.org","port":143}`},
			{"/rfc-glue/org/example/mail/a", `{"host":"dual.example.org","mail":true}`},
		},
		cases: []test.Case{
			{Qname: "_xmpp-client._tcp.example.org.", Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV("_xmpp-client._tcp.example.org. 300 IN SRV 10 100 5222 v6only.example.org.")},
				Extra:  []dns.RR{test.AAAA("v6only.example.org. 300 IN AAAA 2001:db8::82")}},
			{Qname: "_imap._tcp.example.org.", Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV("_imap._tcp.example.org. 300 IN SRV 10 100 143 dual.example.org.")},
				Extra: []dns.RR{test.A("dual.example.org. 300 IN A 192.0.2.83"),
					test.AAAA("dual.example.org. 300 IN AAAA 2001:db8::83")}},
			{Qname: "mail.example.org.", Qtype: dns.TypeMX,
				Answer: []dns.RR{test.MX("mail.example.org. 300 IN MX 10 dual.example.org.")},
				Extra: []dns.RR{test.A("dual.example.org. 300 IN A 192.0.2.83"),
					test.AAAA("dual.example.org. 300 IN AAAA 2001:db8::83")}},
		},
	}, {
		// RFC 2317: a zone whose own name holds a '/', which stands for its key levels.
		name:   "classless reverse zone",
		stanza: "etcdsd 128/27.2.0.192.in-addr.arpa {\n path /rfc-2317\n}",
		data: [][2]string{
			{"/rfc-2317/arpa/in-addr/192/0/2/128/27/130", `{"host":"host130.example.org"}`},
			{"/rfc-2317/arpa/in-addr/192/0/2/128/27/x/y", `{"host":"secret.example.org"}`},
		},
		cases: []test.Case{
			{Qname: "130.128/27.2.0.192.in-addr.arpa.", Qtype: dns.TypePTR,
				Answer: []dns.RR{test.PTR("130.128/27.2.0.192.in-addr.arpa. 300 IN PTR host130.example.org.")}},
			// Below the zone a label still never reads keys it does not stand for.
			{Qname: "x/y.128/27.2.0.192.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError,
				Ns: []dns.RR{soa("128/27.2.0.192.in-addr.arpa.")}},
		},
	}, {
		// RFC 4343: names compare without regard to case, keys included.
		name:   "letter case",
		stanza: "etcdsd example.org {\n path /rfc-case\n}",
		data: [][2]string{
			{"/rfc-case/org/example/MixedCase", `{"host":"192.0.2.21"}`},
			{"/rfc-case/org/example/_tcp/_x/Web1", `{"host":"192.0.2.22","port":80}`},
		},
		cases: []test.Case{
			{Qname: "mixedcase.example.org.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("mixedcase.example.org. 300 IN A 192.0.2.21")}},
			{Qname: "MIXEDcase.example.org.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("MIXEDcase.example.org. 300 IN A 192.0.2.21")}},
			{Qname: "_x._tcp.example.org.", Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV("_x._tcp.example.org. 300 IN SRV 10 100 80 Web1._x._tcp.example.org.")},
				Extra:  []dns.RR{test.A("Web1._x._tcp.example.org. 300 IN A 192.0.2.22")}},
			{Qname: "web1._x._tcp.example.org.", Qtype: dns.TypeA,
				Answer: []dns.RR{test.A("web1._x._tcp.example.org. 300 IN A 192.0.2.22")}},
		},
	}, {
		// RFC 4592, opt-in: the examples of its section 2.2.1 that SkyDNS keys can hold.
		name:   "wildcards",
		stanza: "etcdsd example {\n path /rfc-wild\n wildcards\n}",
		data: [][2]string{
			{"/rfc-wild/example/*/t", `{"text":"this is a wildcard"}`},
			{"/rfc-wild/example/*/a", `{"host":"192.0.2.9"}`},
			{"/rfc-wild/example/host1", `{"host":"192.0.2.1"}`},
			{"/rfc-wild/example/host1/_tcp/_ssh/s", `{"host":"host1.example","port":22}`},
			{"/rfc-wild/example/alias/*", `{"host":"host1.example"}`},
			{"/rfc-wild/example/Caps/*", `{"host":"192.0.2.10"}`},
		},
		cases: []test.Case{
			{Qname: "host3.example.", Qtype: dns.TypeTXT,
				Answer: []dns.RR{test.TXT(`host3.example. 300 IN TXT "this is a wildcard"`)}},
			{Qname: "host3.example.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("host3.example. 300 IN A 192.0.2.9")}},
			{Qname: "host3.example.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa("example.")}},
			{Qname: "foo.bar.example.", Qtype: dns.TypeTXT,
				Answer: []dns.RR{test.TXT(`foo.bar.example. 300 IN TXT "this is a wildcard"`)}},
			// The name exists: no wildcard answers it.
			{Qname: "host1.example.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("example.")}},
			// _tcp.host1.example exists and has no wildcard below it.
			{Qname: "_telnet._tcp.host1.example.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("example.")}},
			{Qname: "ghost.*.example.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("example.")}},
			// A "*" in a query is a label like any other: the wildcard's own name.
			{Qname: "*.example.", Qtype: dns.TypeTXT, Answer: []dns.RR{test.TXT(`*.example. 300 IN TXT "this is a wildcard"`)}},
			// A CNAME wildcard, chased.
			{Qname: "www.alias.example.", Qtype: dns.TypeA, Answer: []dns.RR{
				test.A("host1.example. 300 IN A 192.0.2.1"), test.CNAME("www.alias.example. 300 IN CNAME host1.example.")}},
			{Qname: "www.alias.example.", Qtype: dns.TypeCNAME,
				Answer: []dns.RR{test.CNAME("www.alias.example. 300 IN CNAME host1.example.")}},
			{Qname: "www.alias.example.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("example.")},
				Answer: []dns.RR{test.CNAME("www.alias.example. 300 IN CNAME host1.example.")}},
			// The names above a wildcard do not answer with its records.
			{Qname: "alias.example.", Qtype: dns.TypeA, Ns: []dns.RR{soa("example.")}},
			{Qname: "caps.example.", Qtype: dns.TypeA, Ns: []dns.RR{soa("example.")}},
			{Qname: "x.caps.example.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("x.caps.example. 300 IN A 192.0.2.10")}},
		},
	}, {
		// Where CNAMEs through the zone end (issue 21): at a name the zone does not have,
		// NXDOMAIN (RFC 6604 section 3); at one without data of the type, NODATA; both
		// with the CNAMEs and the SOA (RFC 2308 sections 2.1 and 2.2). Out of the zone,
		// the CNAME alone, as the zone cannot say more.
		name:   "CNAME chains",
		stanza: "etcdsd example.net {\n path /rfc-chain\n}",
		data: [][2]string{
			{"/rfc-chain/net/example/addr/x", `{"host":"192.0.2.1"}`},
			{"/rfc-chain/net/example/tomissing/x", `{"host":"nothere.example.net"}`},
			{"/rfc-chain/net/example/toaddr/x", `{"host":"addr.example.net"}`},
			{"/rfc-chain/net/example/totomissing/x", `{"host":"tomissing.example.net"}`},
			{"/rfc-chain/net/example/out/x", `{"host":"www.example.org"}`},
		},
		cases: []test.Case{
			{Qname: "tomissing.example.net.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("example.net.")},
				Answer: []dns.RR{test.CNAME("tomissing.example.net. 300 IN CNAME nothere.example.net.")}},
			{Qname: "totomissing.example.net.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("example.net.")},
				Answer: []dns.RR{test.CNAME("tomissing.example.net. 300 IN CNAME nothere.example.net."),
					test.CNAME("totomissing.example.net. 300 IN CNAME tomissing.example.net.")}},
			{Qname: "toaddr.example.net.", Qtype: dns.TypeTXT, Ns: []dns.RR{soa("example.net.")},
				Answer: []dns.RR{test.CNAME("toaddr.example.net. 300 IN CNAME addr.example.net.")}},
			{Qname: "toaddr.example.net.", Qtype: dns.TypeA, Answer: []dns.RR{
				test.A("addr.example.net. 300 IN A 192.0.2.1"), test.CNAME("toaddr.example.net. 300 IN CNAME addr.example.net.")}},
			{Qname: "out.example.net.", Qtype: dns.TypeTXT,
				Answer: []dns.RR{test.CNAME("out.example.net. 300 IN CNAME www.example.org.")}},
		},
	}, {
		// external-dns writes an alias as a host name with "targetstrip":1, meant for the
		// targets made from its keys' value ids. The etcd plugin strips the host name too:
		// the SRV target of www was the apex, with every address of the zone as glue.
		name:   "targetstrip of a host name",
		stanza: "etcdsd example.org {\n path /rfc-strip\n}",
		data: [][2]string{
			{"/rfc-strip/org/example/nginx/1f3a9c07", `{"host":"192.0.2.10","ttl":60,"targetstrip":1}`},
			{"/rfc-strip/org/example/www/0c4b7e92", `{"host":"nginx.example.org","targetstrip":1}`},
			{"/rfc-strip/org/example/db/3e8a5f12", `{"host":"192.0.2.40","targetstrip":1}`},
		},
		cases: []test.Case{
			{Qname: "www.example.org.", Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV("www.example.org. 300 IN SRV 10 100 0 nginx.example.org.")},
				Extra:  []dns.RR{test.A("nginx.example.org. 60 IN A 192.0.2.10")}},
			{Qname: "db.example.org.", Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV("db.example.org. 300 IN SRV 10 100 0 db.example.org.")},
				Extra:  []dns.RR{test.A("db.example.org. 300 IN A 192.0.2.40")}},
		},
	}, {
		// RFC 2181 section 8: a TTL with the top bit set is zero.
		name:   "TTL above 2^31-1",
		stanza: "etcdsd example.org {\n path /rfc-ttl\n}",
		data: [][2]string{
			{"/rfc-ttl/org/example/big", `{"host":"192.0.2.41","ttl":4294967295}`},
			{"/rfc-ttl/org/example/top", `{"host":"192.0.2.42","ttl":2147483648}`},
			{"/rfc-ttl/org/example/max", `{"host":"192.0.2.43","ttl":2147483647}`},
		},
		cases: []test.Case{
			{Qname: "big.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("big.example.org. 0 IN A 192.0.2.41")}},
			{Qname: "top.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("top.example.org. 0 IN A 192.0.2.42")}},
			{Qname: "max.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("max.example.org. 2147483647 IN A 192.0.2.43")}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			serveExact(t, fixturePlugin(t, tc.stanza, tc.data), tc.cases)
		})
	}
}

// serveExact is serve with owner names compared as written: test.SortAndCheck compares
// them without regard to case, which would hide an answer that loses the question's case.
func serveExact(t *testing.T, e *Etcdsd, cases []test.Case) {
	t.Helper()
	serve(t, e, cases)
	for _, tc := range cases {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := e.ServeDNS(t.Context(), rec, tc.Msg()); err != nil || rec.Msg == nil {
			continue
		}
		owners := func(rrs []dns.RR) []string {
			var out []string
			for _, rr := range rrs {
				out = append(out, rr.Header().Name)
			}
			slices.Sort(out)
			return out
		}
		if got, want := owners(rec.Msg.Answer), owners(tc.Answer); !slices.Equal(got, want) {
			t.Errorf("%s %s: owners %q, want %q", tc.Qname, dns.TypeToString[tc.Qtype], got, want)
		}
	}
}

// aliasTo returns where the CNAMEs of m's answer that start at name end, in lower case, or
// "" when it holds none.
func aliasTo(m *dns.Msg, name string) string {
	end, next := "", name
	for range m.Answer { // a loop ends somewhere too
		i := slices.IndexFunc(m.Answer, func(rr dns.RR) bool {
			return rr.Header().Rrtype == dns.TypeCNAME && strings.EqualFold(rr.Header().Name, next)
		})
		if i < 0 {
			break
		}
		end = strings.ToLower(m.Answer[i].(*dns.CNAME).Target)
		next = end
	}
	return end
}

// Every name with a key at or below it exists, for every type (RFC 1034 section 4.3.2):
// over generated key trees, the names the keys make and every name between them and the
// zone answer NOERROR, unless they are aliases of a name that does not exist (RFC 6604
// section 3), and names beside them NXDOMAIN.
func TestNamesThatExistAreNeverNXDOMAIN(t *testing.T) {
	labels := []string{"a", "b", "_tcp", "_web", "x1", "Mixed", "10.0.0.1", "srv"}
	values := []string{`{"host":"10.1.0.1"}`, `{"host":"2001:db8::1"}`, `{"host":"a.example.local"}`,
		`{"text":"t"}`, `{"host":"ext.example.org","port":80}`, `{"host":`, `{"host":"10.1.0.2","mail":true}`}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypePTR, dns.TypeSRV, dns.TypeMX, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeHINFO}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 11))
		prefix := fmt.Sprintf("/rfc-exists-%d", seed)
		var data [][2]string
		exist := map[string]bool{"example.local.": true}
		for range 3 + rng.IntN(12) {
			name := "example.local."
			key := prefix + "/local/example"
			for range 1 + rng.IntN(4) {
				l := labels[rng.IntN(len(labels))]
				key += "/" + l
				name = strings.ToLower(dns.Fqdn(l + "." + name))
				// A dotted label makes every name between it and its parent exist too.
				for n := name; n != "example.local."; n = n[strings.IndexByte(n, '.')+1:] {
					exist[n] = true
				}
			}
			data = append(data, [2]string{key, values[rng.IntN(len(values))]})
		}
		var options string
		if rng.IntN(2) == 0 {
			options = "\n no_apex_fallback"
		}
		e := fixturePlugin(t, "etcdsd example.local {\n path "+prefix+options+"\n}", data)
		names := []string{"nothere.example.local.", "x.nothere.example.local."}
		for n := range exist {
			names = append(names, n, "zz."+n)
		}
		for _, n := range names {
			for _, qt := range types {
				rec := dnstest.NewRecorder(&test.ResponseWriter{})
				if _, err := e.ServeDNS(t.Context(), rec, new(dns.Msg).SetQuestion(n, qt)); err != nil || rec.Msg == nil {
					t.Fatalf("seed %d: %s %s: no answer (%v)", seed, n, dns.TypeToString[qt], err)
				}
				want := dns.RcodeNameError
				if exist[n] {
					want = dns.RcodeSuccess
				}
				if alias := aliasTo(rec.Msg, n); exist[n] && qt != dns.TypeCNAME && alias != "" && !exist[alias] {
					want = dns.RcodeNameError // the rcode of the alias's target (RFC 6604 section 3)
				}
				if got := rec.Msg.Rcode; got != want {
					t.Errorf("seed %d: %s %s: %s, want %s", seed, n, dns.TypeToString[qt], dns.RcodeToString[got], dns.RcodeToString[want])
				}
			}
		}
		if t.Failed() {
			t.Fatalf("seed %d data: %q", seed, data)
		}
	}
}

// Keys that are no DNS name (an empty label, as coredns#6055's ".../sub/x2.", or a label
// over 63 bytes) name no record, but count for the names above them, as in the etcd
// plugin; SRV and MX answers, whose targets would be named after the key, leave them out.
// A trailing '/' (coredns#2982's ".../a/b/") is no label. Such keys are counted and logged,
// escaped: a key's newline cannot forge a log line.
func TestKeysThatAreNoName(t *testing.T) {
	logs := captureLog(t)
	invalid := testutil.ToFloat64(skippedTotal.WithLabelValues(skydns.ReasonInvalidKey))
	e := fixturePlugin(t, "etcdsd machine.local {\n path /rfc-noname\n}", [][2]string{
		{"/rfc-noname/local/machine/sub/x1", `{"host":"10.7.0.12"}`},
		{"/rfc-noname/local/machine/sub/x2.", `{"host":"10.7.0.13"}`},
		{"/rfc-noname/local/machine/a/b/", `{"host":"10.7.0.14"}`},
		{"/rfc-noname/local/machine/deep/" + strings.Repeat("k", 64) + "\n[INFO] forged", `{"text":"deep"}`},
	})
	serve(t, e, []test.Case{
		{Qname: "sub.machine.local.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("sub.machine.local. 300 IN A 10.7.0.12"), test.A("sub.machine.local. 300 IN A 10.7.0.13")}},
		{Qname: "sub.machine.local.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("sub.machine.local. 300 IN SRV 10 100 0 x1.sub.machine.local.")},
			Extra:  []dns.RR{test.A("x1.sub.machine.local. 300 IN A 10.7.0.12")}},
		{Qname: "b.a.machine.local.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("b.a.machine.local. 300 IN SRV 10 100 0 b.a.machine.local.")},
			Extra:  []dns.RR{test.A("b.a.machine.local. 300 IN A 10.7.0.14")}},
		{Qname: "deep.machine.local.", Qtype: dns.TypeTXT, Answer: []dns.RR{test.TXT(`deep.machine.local. 300 IN TXT "deep"`)}},
	})
	if got := testutil.ToFloat64(skippedTotal.WithLabelValues(skydns.ReasonInvalidKey)); got != invalid+2 {
		t.Errorf("skipped_values_total{reason=invalid_key} went from %v to %v, want +2", invalid, got)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "forged") && !strings.Contains(line, `\n[INFO] forged`) || strings.HasPrefix(line, "[INFO] forged") {
			t.Errorf("a key's newline reached the log raw:\n%s", logs)
		}
	}
	if !strings.Contains(logs.String(), `\n[INFO] forged`) {
		t.Errorf("the key that is no name was not logged:\n%s", logs)
	}
	// A zone transfer holds the names above them, and none named after them.
	ch, err := e.Transfer("machine.local.", 0)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	for rrs := range ch {
		m := new(dns.Msg)
		m.Answer = rrs
		if _, err := m.Pack(); err != nil { // a secondary would get SERVFAIL
			t.Errorf("the transfer's records do not pack: %v\n%v", err, rrs)
		}
		for _, rr := range rrs {
			owners[rr.Header().Name] = true
			if _, ok := dns.IsDomainName(rr.Header().Name); !ok || strings.Contains(rr.Header().Name, "..") {
				t.Errorf("the transfer holds %q", rr.Header().Name)
			}
		}
	}
	if !owners["sub.machine.local."] || !owners["deep.machine.local."] || !owners["b.a.machine.local."] {
		t.Errorf("the transfer lacks names above keys that are no name: %v", owners)
	}
}

// negative_ttl sets the SOA's MINIMUM and TTL, which bound how long a resolver keeps an
// NXDOMAIN or NODATA (RFC 2308 section 5): a service looked up just before it registers
// is found again within that time. Without it, the built-in plugin's 30 s holds.
func TestNegativeTTL(t *testing.T) {
	data := [][2]string{{"/rfc-negttl/local/example/web", `{"host":"10.7.1.1"}`}}
	for _, tc := range []struct {
		option string
		soa    string
	}{
		{"", "example.local. 30 IN SOA ns.dns.example.local. hostmaster.example.local. 0 7200 1800 86400 30"},
		{"negative_ttl 5", "example.local. 5 IN SOA ns.dns.example.local. hostmaster.example.local. 0 7200 1800 86400 5"},
		{"negative_ttl 5m", "example.local. 300 IN SOA ns.dns.example.local. hostmaster.example.local. 0 7200 1800 86400 300"},
	} {
		t.Run(tc.option, func(t *testing.T) {
			e := fixturePlugin(t, "etcdsd example.local {\n path /rfc-negttl\n "+tc.option+"\n}", data)
			soa := []dns.RR{test.SOA(tc.soa)}
			for _, c := range []test.Case{
				{Qname: "new.example.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
				{Qname: "web.example.local.", Qtype: dns.TypeAAAA, Ns: soa},
				{Qname: "example.local.", Qtype: dns.TypeSOA, Answer: soa},
			} {
				serveIgnoringSerial(t, e, c)
			}
		})
	}
}
