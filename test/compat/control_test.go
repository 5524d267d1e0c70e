package compat

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// The harness must see a difference where there is one: two pairs over data that differs
// in one record, crossed over.
func TestHarnessSeesDifferences(t *testing.T) {
	a := dataset{name: "control a", zones: "example.local", records: []record{rec("local/example/x", `{"host":"10.20.0.1"}`)}}
	b := dataset{name: "control b", zones: "example.local", records: []record{rec("local/example/x", `{"host":"10.20.0.2"}`)}}
	pa, pb := startPair(t, a, "/control-a"), startPair(t, b, "/control-b")
	crossed := &pair{builtin: pa.builtin, ours: pb.ours}

	for _, tc := range []struct {
		q    query
		want string
	}{
		{query{name: "x.example.local.", qtype: dns.TypeA, edns: true}, "answer"},
		{query{name: "y.example.local.", qtype: dns.TypeA, edns: true}, ""}, // both NXDOMAIN
	} {
		d, _, err := crossed.compare(tc.q, false)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" && d != "" || tc.want != "" && !strings.Contains(d, tc.want) {
			t.Errorf("%s: want a difference in %q, got %q", tc.q.name, tc.want, d)
		}
	}
}

func TestSectionDiffNormalizes(t *testing.T) {
	soa1 := test.SOA("example.local. 30 IN SOA ns.dns.example.local. hostmaster.example.local. 1700000000 7200 1800 86400 30")
	soa2 := test.SOA("example.local. 30 IN SOA ns.dns.example.local. hostmaster.example.local. 42 7200 1800 86400 30")
	a300, a301 := test.A("x.example.local. 300 IN A 10.0.0.1"), test.A("x.example.local. 301 IN A 10.0.0.1")
	b := test.A("x.example.local. 300 IN A 10.0.0.2")

	for i, tc := range []struct {
		a, b      []dns.RR
		tolerance uint32
		differ    bool
	}{
		{[]dns.RR{soa1}, []dns.RR{soa2}, 0, false},       // serials differ by design
		{[]dns.RR{a300, b}, []dns.RR{b, a300}, 0, false}, // order does not matter
		{[]dns.RR{a300}, []dns.RR{a301}, 0, true},
		{[]dns.RR{a300}, []dns.RR{a301}, 1, false},
		{[]dns.RR{a300}, []dns.RR{b}, 1, true},
		{[]dns.RR{a300, a300}, []dns.RR{a300}, 0, true}, // a multiset: duplicates count
	} {
		if d := sectionDiff(tc.a, tc.b, tc.tolerance); (d != "") != tc.differ {
			t.Errorf("case %d: difference %q, want one: %v", i, d, tc.differ)
		}
	}
}

// A value that is not JSON is the one intended difference in answers: the etcd plugin
// fails every query whose range covers it, etcdsd skips it and answers from its siblings.
func TestDeviationInvalidJSON(t *testing.T) {
	ds := dataset{name: "invalid json", zones: "example.local", records: []record{
		rec("local/example/svc/good", `{"host":"10.21.0.1"}`),
		rec("local/example/svc/bad", `{"host":`),
	}}
	p := startPair(t, ds, "/deviation-json")
	m := new(dns.Msg).SetQuestion("svc.example.local.", dns.TypeA)
	builtin, err := dns.Exchange(m, p.builtin)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := dns.Exchange(m, p.ours)
	if err != nil {
		t.Fatal(err)
	}
	if builtin.Rcode != dns.RcodeServerFailure {
		t.Errorf("etcd plugin: want SERVFAIL, got %s", dns.RcodeToString[builtin.Rcode])
	}
	if ours.Rcode != dns.RcodeSuccess || len(ours.Answer) != 1 || ours.Answer[0].(*dns.A).A.String() != "10.21.0.1" {
		t.Errorf("etcdsd: want the good sibling's A, got %v", ours)
	}
}
