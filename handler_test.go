package etcdsd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// handlerData covers every record type and rule the handler serves, under /h.
var handlerData = [][2]string{
	// The README's walk-through.
	{"/h/local/example/_tcp/_web/web-server01", `{"host":"1.1.1.1","port":80}`},
	{"/h/local/example/_tcp/_web/web-server02", `{"host":"1.1.1.2","port":80}`},
	{"/h/local/example/_tcp/_web/web-server03", `{"host":"1.1.1.3","port":80}`},
	// Addresses, a TTL, a TXT.
	{"/h/local/example/a/x1", `{"host":"10.0.0.1"}`},
	{"/h/local/example/v6/x1", `{"host":"2001:db8::1"}`},
	{"/h/local/example/ttl/x1", `{"host":"10.0.0.4","ttl":60}`},
	{"/h/local/example/txt/x1", `{"text":"hello world"}`},
	// An in-zone CNAME and its target.
	{"/h/local/example/alias", `{"host":"www.example.local"}`},
	{"/h/local/example/www", `{"host":"10.0.0.2"}`},
	// MX with an in-zone exchanger.
	{"/h/local/example/mail/mx1", `{"host":"mx1.example.local","priority":20,"mail":true}`},
	{"/h/local/example/mx1", `{"host":"10.0.0.3"}`},
	// SRV with a name target and explicit weights in one priority.
	{"/h/local/example/_tcp/_db/db1", `{"host":"db.example.local","port":5432}`},
	{"/h/local/example/db", `{"host":"10.0.0.5"}`},
	{"/h/local/example/_udp/_w/a", `{"host":"10.1.0.1","port":53,"weight":25}`},
	{"/h/local/example/_udp/_w/b", `{"host":"10.1.0.2","port":53,"weight":75}`},
	{"/h/local/example/_udp/_w/c", `{"host":"10.1.0.3","port":53,"priority":20}`},
	// targetstrip shortens the synthesized target.
	{"/h/local/example/_tcp/_ts/x1", `{"host":"10.3.0.1","port":80,"targetstrip":1}`},
	// Groups: the shortest key's group wins.
	{"/h/local/example/grp/a", `{"host":"10.2.0.1","group":"g1"}`},
	{"/h/local/example/grp/sub/b", `{"host":"10.2.0.2","group":"g1"}`},
	{"/h/local/example/grp/sub/c", `{"host":"10.2.0.3","group":"g2"}`},
	// Apex and name servers.
	{"/h/local/example/dns/apex/x1", `{"host":"10.9.9.9"}`},
	{"/h/local/example/dns/ns/ns1", `{"host":"10.9.0.1"}`},
	// Reverse zone.
	{"/h/arpa/in-addr/10/0/0/1", `{"host":"reverse.example.local"}`},
	// One bad value among good siblings.
	{"/h/local/example/bad/good", `{"host":"10.4.0.1"}`},
	{"/h/local/example/bad/broken", `{"host":`},
	// A name that has a record and children: both answer.
	{"/h/local/example/both", `{"host":"10.5.0.1"}`},
	{"/h/local/example/both/kid", `{"host":"10.5.0.2"}`},
	// A sibling whose name extends another one must not show up under it.
	{"/h/local/example/sib", `{"host":"10.6.0.1"}`},
	{"/h/local/example/sibling", `{"host":"10.6.0.2"}`},
}

var soaExample = test.SOA("example.local. 30 IN SOA ns.dns.example.local. hostmaster.example.local. 0 7200 1800 86400 30")

var handlerCases = []test.Case{
	{
		Qname: "_web._tcp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_web._tcp.example.local. 300 IN SRV 10 33 80 web-server01._web._tcp.example.local."),
			test.SRV("_web._tcp.example.local. 300 IN SRV 10 33 80 web-server02._web._tcp.example.local."),
			test.SRV("_web._tcp.example.local. 300 IN SRV 10 33 80 web-server03._web._tcp.example.local."),
		},
		Extra: []dns.RR{
			test.A("web-server01._web._tcp.example.local. 300 IN A 1.1.1.1"),
			test.A("web-server02._web._tcp.example.local. 300 IN A 1.1.1.2"),
			test.A("web-server03._web._tcp.example.local. 300 IN A 1.1.1.3"),
		},
	},
	{
		Qname: "_web._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("_web._tcp.example.local. 300 IN A 1.1.1.1"),
			test.A("_web._tcp.example.local. 300 IN A 1.1.1.2"),
			test.A("_web._tcp.example.local. 300 IN A 1.1.1.3"),
		},
	},
	{
		Qname: "web-server02._web._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("web-server02._web._tcp.example.local. 300 IN A 1.1.1.2")},
	},
	{
		Qname: "A.Example.Local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("A.Example.Local. 300 IN A 10.0.0.1")},
	},
	{
		Qname: "v6.example.local.", Qtype: dns.TypeAAAA,
		Answer: []dns.RR{test.AAAA("v6.example.local. 300 IN AAAA 2001:db8::1")},
	},
	{
		Qname: "ttl.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("ttl.example.local. 60 IN A 10.0.0.4")},
	},
	{
		Qname: "txt.example.local.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(`txt.example.local. 300 IN TXT "hello world"`)},
	},
	{
		// A value without host has no address: the name exists, so NODATA.
		Qname: "txt.example.local.", Qtype: dns.TypeA,
		Ns: []dns.RR{soaExample},
	},
	{
		Qname: "alias.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.CNAME("alias.example.local. 300 IN CNAME www.example.local."),
			test.A("www.example.local. 300 IN A 10.0.0.2"),
		},
	},
	{
		Qname: "alias.example.local.", Qtype: dns.TypeCNAME,
		Answer: []dns.RR{test.CNAME("alias.example.local. 300 IN CNAME www.example.local.")},
	},
	{
		Qname: "mail.example.local.", Qtype: dns.TypeMX,
		Answer: []dns.RR{test.MX("mail.example.local. 300 IN MX 20 mx1.example.local.")},
		Extra:  []dns.RR{test.A("mx1.example.local. 300 IN A 10.0.0.3")},
	},
	{
		Qname: "_db._tcp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_db._tcp.example.local. 300 IN SRV 10 100 5432 db.example.local.")},
		Extra:  []dns.RR{test.A("db.example.local. 300 IN A 10.0.0.5")},
	},
	{
		Qname: "_w._udp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_w._udp.example.local. 300 IN SRV 10 25 53 a._w._udp.example.local."),
			test.SRV("_w._udp.example.local. 300 IN SRV 10 75 53 b._w._udp.example.local."),
			test.SRV("_w._udp.example.local. 300 IN SRV 20 100 53 c._w._udp.example.local."),
		},
		Extra: []dns.RR{
			test.A("a._w._udp.example.local. 300 IN A 10.1.0.1"),
			test.A("b._w._udp.example.local. 300 IN A 10.1.0.2"),
			test.A("c._w._udp.example.local. 300 IN A 10.1.0.3"),
		},
	},
	{
		Qname: "_ts._tcp.example.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_ts._tcp.example.local. 300 IN SRV 10 100 80 _ts._tcp.example.local.")},
		Extra:  []dns.RR{test.A("_ts._tcp.example.local. 300 IN A 10.3.0.1")},
	},
	{
		Qname: "grp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("grp.example.local. 300 IN A 10.2.0.1"),
			test.A("grp.example.local. 300 IN A 10.2.0.2"),
		},
	},
	{
		// Wildcard label: every instance below _web.
		Qname: "*._web._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{
			test.A("*._web._tcp.example.local. 300 IN A 1.1.1.1"),
			test.A("*._web._tcp.example.local. 300 IN A 1.1.1.2"),
			test.A("*._web._tcp.example.local. 300 IN A 1.1.1.3"),
		},
	},
	{
		Qname: "web-server01.any._tcp.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("web-server01.any._tcp.example.local. 300 IN A 1.1.1.1")},
	},
	{
		Qname: "example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("example.local. 300 IN A 10.9.9.9")},
	},
	{
		Qname: "example.local.", Qtype: dns.TypeNS,
		Answer: []dns.RR{test.NS("example.local. 300 IN NS ns1.ns.dns.example.local.")},
		Extra:  []dns.RR{test.A("ns1.ns.dns.example.local. 300 IN A 10.9.0.1")},
	},
	{
		Qname: "example.local.", Qtype: dns.TypeSOA,
		Answer: []dns.RR{soaExample},
	},
	{
		Qname: "1.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR,
		Answer: []dns.RR{test.PTR("1.0.0.10.in-addr.arpa. 300 IN PTR reverse.example.local.")},
	},
	{
		Qname: "bad.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("bad.example.local. 300 IN A 10.4.0.1")},
	},
	{
		Qname: "both.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("both.example.local. 300 IN A 10.5.0.1"), test.A("both.example.local. 300 IN A 10.5.0.2")},
	},
	{
		Qname: "sib.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("sib.example.local. 300 IN A 10.6.0.1")},
	},
	{
		Qname: "nothere.example.local.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError,
		Ns:    []dns.RR{soaExample},
	},
	{
		// AAAA of a name with only an A record: NODATA.
		Qname: "a.example.local.", Qtype: dns.TypeAAAA,
		Ns: []dns.RR{soaExample},
	},
	{
		// A type the plugin does not serve: NODATA for a name that exists...
		Qname: "a.example.local.", Qtype: dns.TypeHINFO,
		Ns: []dns.RR{soaExample},
	},
	{
		// ...NXDOMAIN for one that does not.
		Qname: "nothere.example.local.", Qtype: dns.TypeHINFO,
		Rcode: dns.RcodeNameError,
		Ns:    []dns.RR{soaExample},
	},
	{
		// NS below the apex is answered like an A lookup: NODATA here.
		Qname: "a.example.local.", Qtype: dns.TypeNS,
		Ns: []dns.RR{soaExample},
	},
}

func TestServeDNS(t *testing.T) {
	rev := putAll(t, handlerData)
	e := startPlugin(t, "etcdsd example.local 10.0.0.0/8 {\n path /h\n}")
	waitRevision(t, e, rev)
	e.Next = test.NextHandler(dns.RcodeRefused, nil)
	serve(t, e, handlerCases)
}

// serve runs cases through e and checks every answer.
func serve(t *testing.T, e *Etcdsd, cases []test.Case) {
	t.Helper()
	for _, tc := range cases {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := e.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
			t.Errorf("%s %s: unexpected error %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
			continue
		}
		if rec.Msg == nil {
			t.Errorf("%s %s: no answer written", tc.Qname, dns.TypeToString[tc.Qtype])
			continue
		}
		if err := test.SortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}
}

func TestServeDNSOutsideZoneAndFallthrough(t *testing.T) {
	put(t, "/f/local/example/x", `{"host":"10.7.0.1"}`)
	e := startPlugin(t, "etcdsd example.local {\n path /f\n fallthrough\n}")
	e.Next = test.NextHandler(dns.RcodeRefused, nil)

	for _, q := range []string{"example.org.", "nothere.example.local."} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		m := new(dns.Msg).SetQuestion(q, dns.TypeA)
		rcode, err := e.ServeDNS(context.Background(), rec, m)
		if err != nil || rcode != dns.RcodeRefused {
			t.Errorf("%s: want the next plugin's REFUSED, got rcode %d, err %v", q, rcode, err)
		}
	}
	serve(t, e, []test.Case{{
		Qname: "x.example.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("x.example.local. 300 IN A 10.7.0.1")},
	}})
}

func TestServeDNSBeforeFirstList(t *testing.T) {
	// Parsed but not started: there is no index yet, which must not read as NXDOMAIN.
	e := parsePlugin(t, "etcdsd example.local {\n path /never\n}")
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := e.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("x.example.local.", dns.TypeA))
	if rcode != dns.RcodeServerFailure || err == nil {
		t.Fatalf("want SERVFAIL and an error before the first list, got rcode %d, err %v", rcode, err)
	}
	if e.Ready() {
		t.Fatal("Ready before the first list")
	}
}

// No query name, however its labels are escaped, reads keys it does not stand for: the
// secrets lie in the watched range, in the zone (below "other") and in a sibling prefix
// that the range holds too ("example-old"). (A name with an empty label, which reads the
// zone's whole subtree as its apex does, cannot come off the wire.)
func TestEscapedNamesStayInTheirZone(t *testing.T) {
	put(t, "/esc/local/example/other/secret", `{"host":"10.60.0.1","port":1,"text":"secret"}`)
	put(t, "/esc/local/example-old/secret", `{"host":"10.60.0.1","port":1,"text":"secret"}`)
	put(t, "/esc/local/example/a/b", `{"host":"10.60.0.2"}`)
	e := startPlugin(t, "etcdsd example.local {\n path /esc\n}")
	e.Next = test.NextHandler(dns.RcodeRefused, nil)
	names := []string{
		`secret/../../other.example.local.`, `a/b.example.local.`, `\.\./other/secret.example.local.`,
		`other/secret.example.local.`, `secret/x/../../other.example.local.`, `\.\..\.\..other.example.local.`,
		`\000.example.local.`, `\/.example.local.`, `secret.other.local.`,
		`secret.\.\./example-old.example.local.`, `secret.-old.example.local.`, `a.example.local.`,
	}
	for _, name := range names {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypeTXT} {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			m := new(dns.Msg)
			m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
			e.ServeDNS(context.Background(), rec, m)
			if rec.Msg == nil {
				continue
			}
			for _, rr := range append(rec.Msg.Answer, rec.Msg.Extra...) {
				if s := rr.String(); strings.Contains(s, "10.60.0.1") || strings.Contains(s, "secret\"") {
					t.Errorf("%s %s read another zone's key: %s", name, dns.TypeToString[qtype], s)
				}
			}
		}
	}
	// The label with a '/' does not read a/b either.
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	e.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("a/b.example.local.", dns.TypeA))
	if rec.Msg.Rcode != dns.RcodeNameError {
		t.Errorf("a/b.example.local.: want NXDOMAIN, got %v", rec.Msg)
	}
}

// An answer from a leased key is not prepared: its TTL counts down.
func TestLeasedAnswersCountDown(t *testing.T) {
	l, err := testEtcd.Client().Grant(context.Background(), 120)
	if err != nil {
		t.Fatal(err)
	}
	put(t, "/cd/local/example/x", `{"host":"10.70.0.1"}`, clientv3.WithLease(l.ID))
	clock := newFakeClock()
	e := startPluginAt(t, "etcdsd example.local {\n path /cd\n min-lease-ttl 1\n}", clock.Now)
	ttl := func() uint32 {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		e.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("x.example.local.", dns.TypeA))
		return rec.Msg.Answer[0].Header().Ttl
	}
	first := ttl()
	clock.Add(2 * time.Second)
	if second := ttl(); second != first-2 {
		t.Fatalf("TTL of a leased record did not count down 2 s in 2 s: %d then %d", first, second)
	}
}
