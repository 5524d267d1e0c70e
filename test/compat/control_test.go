package compat

import (
	"fmt"
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

// Values that are not valid SkyDNS are an intended difference: the etcd plugin fails
// every query whose range covers one, or serves a wrong record from it; etcdsd skips it
// and answers from its siblings.
func TestDeviationInvalidValues(t *testing.T) {
	for i, bad := range []string{
		`{"host":`,                          // etcd: SERVFAIL
		`{"host":"10.21.0.9","port":"80"}`,  // etcd: SERVFAIL
		`{"host":"999.1.1.1"}`,              // etcd: a CNAME to 999.1.1.1.
		`{"host":"10.21.0.9","port":65616}`, // etcd: SRV port 80 (wrapped); the A record is served
	} {
		ds := dataset{name: "invalid value", zones: "example.local", records: []record{
			rec("local/example/svc/good", `{"host":"10.21.0.1","port":80}`),
			rec("local/example/svc/bad", bad),
		}}
		p := startPair(t, ds, fmt.Sprintf("/deviation-value-%d", i))
		builtinA, oursA := exchangeBoth(t, p, "svc.example.local.", dns.TypeA)
		builtinSRV, oursSRV := exchangeBoth(t, p, "svc.example.local.", dns.TypeSRV)
		if builtinA.Rcode == dns.RcodeSuccess && len(builtinA.Answer) == 1 && len(builtinSRV.Answer) == 1 {
			t.Errorf("%s: the etcd plugin answers as if the value were absent; not a difference", bad)
		}
		if oursA.Rcode != dns.RcodeSuccess || len(oursA.Answer) != 1 || oursA.Answer[0].(*dns.A).A.String() != "10.21.0.1" {
			t.Errorf("%s: etcdsd: want only the good sibling's A, got %v", bad, oursA)
		}
		if len(oursSRV.Answer) != 1 || oursSRV.Answer[0].(*dns.SRV).Port != 80 {
			t.Errorf("%s: etcdsd: want only the good sibling's SRV, got %v", bad, oursSRV)
		}
	}
}

// A text of 255 bytes is one string; the etcd plugin sends it and an empty one.
func TestDeviationTXT255(t *testing.T) {
	ds := dataset{name: "txt 255", zones: "example.local", records: []record{
		rec("local/example/txt", `{"text":"`+strings.Repeat("y", 255)+`"}`),
	}}
	p := startPair(t, ds, "/deviation-txt")
	builtin, ours := exchangeBoth(t, p, "txt.example.local.", dns.TypeTXT)
	if len(builtin.Answer) != 1 || len(builtin.Answer[0].(*dns.TXT).Txt) != 2 {
		t.Errorf("etcd plugin: want one TXT of 255 bytes and an empty string, got %v", builtin.Answer)
	}
	if len(ours.Answer) != 1 || len(ours.Answer[0].(*dns.TXT).Txt) != 1 {
		t.Errorf("etcdsd: want one TXT of one string, got %v", ours.Answer)
	}
}

// A label with a '/' would read the keys of another name in the etcd plugin.
func TestDeviationSlashInLabel(t *testing.T) {
	ds := dataset{name: "slash", zones: "example.local", records: []record{
		rec("local/example/a/b", `{"host":"10.22.0.1"}`),
	}}
	p := startPair(t, ds, "/deviation-slash")
	builtin, ours := exchangeBoth(t, p, "a/b.example.local.", dns.TypeA)
	if len(builtin.Answer) != 1 {
		t.Errorf("etcd plugin: want the A of key a/b, got %v", builtin)
	}
	if ours.Rcode != dns.RcodeNameError {
		t.Errorf("etcdsd: want NXDOMAIN, got %v", ours)
	}
}

// A value with a host name and a text, as external-dns v0.12-v0.17 writes for a CNAME with
// its ownership text: the etcd plugin takes it for a TXT record and answers an A query with
// no data; etcdsd answers the CNAME and its target's addresses, and TXT queries alike.
func TestDeviationAliasWithText(t *testing.T) {
	ds := dataset{name: "alias with text", zones: "example.local", records: []record{
		rec("local/example/app/1a2b3c4d", `{"host":"10.23.0.1","targetstrip":1}`),
		rec("local/example/shop/7a1d03c6", `{"host":"app.example.local","text":"\"heritage=external-dns\"","targetstrip":1}`),
	}}
	p := startPair(t, ds, "/deviation-alias")
	builtin, ours := exchangeBoth(t, p, "shop.example.local.", dns.TypeA)
	if builtin.Rcode != dns.RcodeSuccess || len(builtin.Answer) != 0 {
		t.Errorf("etcd plugin: want no data for the A query, got %v", builtin)
	}
	want := []string{"shop.example.local.\t300\tIN\tCNAME\tapp.example.local.", "app.example.local.\t300\tIN\tA\t10.23.0.1"}
	if len(ours.Answer) != 2 || ours.Answer[0].String() != want[0] || ours.Answer[1].String() != want[1] {
		t.Errorf("etcdsd: want %q, got %v", want, ours.Answer)
	}
	builtin, ours = exchangeBoth(t, p, "shop.example.local.", dns.TypeTXT)
	if d := sectionDiff(builtin.Answer, ours.Answer, 0); d != "" || len(ours.Answer) != 1 {
		t.Errorf("TXT: want the same one text from both, got etcd %v, etcdsd %v", builtin.Answer, ours.Answer)
	}
}

func exchangeBoth(t *testing.T, p *pair, name string, qtype uint16) (builtin, ours *dns.Msg) {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.SetEdns0(4096, false)
	var err error
	if builtin, err = dns.Exchange(m, p.builtin); err != nil {
		t.Fatal(err)
	}
	if ours, err = dns.Exchange(m, p.ours); err != nil {
		t.Fatal(err)
	}
	return builtin, ours
}
