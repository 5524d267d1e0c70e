package etcdsd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/etcdsd/etcdsd/internal/index/indextest"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestServeDNS answers the shared cases from an index loaded from memory; the answers of
// an index that etcd fills are held to the built-in plugin's by test/compat.
func TestServeDNS(t *testing.T) {
	serve(t, fixturePlugin(t, "etcdsd example.local 10.0.0.0/8 {\n path /h\n}", indextest.Records), indextest.Cases)
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
