package etcdsd

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
)

// txt is a TXT record of one string as the handler builds it: the text itself, where a
// record parsed from zone-file syntax would keep its escapes.
func txt(name string, ttl uint32, text string) *dns.TXT {
	return &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: []string{text}}
}

const ownership = `"heritage=external-dns,external-dns/owner=default,external-dns/resource=`

// What external-dns users expect from the records its CoreDNS provider writes
// (testdata/external-dns.records): the random 8-hex label never shows, the ownership TXT
// records resolve with their quotes, groups keep services apart, unknown fields are ignored,
// and a CNAME that carries its ownership text is still a CNAME.
var externalDNSCases = []test.Case{
	{
		Qname: "nginx.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("nginx.example.org. 60 IN A 192.0.2.10"),
			test.A("nginx.example.org. 60 IN A 192.0.2.11"),
		},
	},
	{
		Qname: "nginx.example.org.", Qtype: dns.TypeAAAA,
		Answer: []dns.RR{test.AAAA("nginx.example.org. 60 IN AAAA 2001:db8::10")},
	},
	{
		// targetstrip 1 drops the random label from the synthesized targets.
		Qname: "nginx.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("nginx.example.org. 60 IN SRV 10 33 0 nginx.example.org.")},
		Extra: []dns.RR{
			test.A("nginx.example.org. 60 IN A 192.0.2.10"),
			test.A("nginx.example.org. 60 IN A 192.0.2.11"),
			test.AAAA("nginx.example.org. 60 IN AAAA 2001:db8::10"),
		},
	},
	{
		Qname: "a-nginx.example.org.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{txt("a-nginx.example.org.", 300, ownership+`service/default/nginx"`)},
	},
	{
		Qname: "www.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("nginx.example.org. 60 IN A 192.0.2.10"),
			test.A("nginx.example.org. 60 IN A 192.0.2.11"),
			test.CNAME("www.example.org. 300 IN CNAME nginx.example.org."),
		},
	},
	{
		// external-dns v0.12-v0.17 put the ownership text into the CNAME's value; the etcd
		// plugin answers NODATA here (docs/differences.md).
		Qname: "shop.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("nginx.example.org. 60 IN A 192.0.2.10"),
			test.A("nginx.example.org. 60 IN A 192.0.2.11"),
			test.CNAME("shop.example.org. 300 IN CNAME nginx.example.org."),
		},
	},
	{
		Qname: "shop.example.org.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{txt("shop.example.org.", 300, ownership+`ingress/default/shop"`)},
	},
	{
		Qname: "info.example.org.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(`info.example.org. 120 IN TXT "owner-team=platform; contact=dns@example.org"`)},
	},
	{
		// Group g1 leaves out api.app's g2 address.
		Qname: "app.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("app.example.org. 300 IN A 192.0.2.30")},
	},
	{
		Qname: "api.app.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("api.app.example.org. 300 IN A 192.0.2.31")},
	},
	{
		// --coredns-strictly-owned adds "owner", which no SkyDNS reader knows.
		Qname: "db.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("db.example.org. 300 IN A 192.0.2.40")},
	},
	{
		Qname: "metrics.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("metrics.example.org. 30 IN A 192.0.2.50")},
	},
	{
		Qname: "gone.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA("example.org. 30 IN SOA ns.dns.example.org. hostmaster.example.org. 0 7200 1800 86400 30")},
	},
}

func TestExternalDNSRecords(t *testing.T) {
	rs, err := devetcd.ReadRecords("testdata/external-dns.records")
	if err != nil {
		t.Fatal(err)
	}
	var kvs [][2]string
	for _, r := range rs {
		kvs = append(kvs, [2]string{strings.Replace(r.Key, "/skydns/", "/xdns/", 1), r.Value})
	}
	rev := putAll(t, kvs)
	e := startPlugin(t, "etcdsd example.org {\n path /xdns\n}")
	waitRevision(t, e, rev)
	serve(t, e, externalDNSCases)
}
