package compat

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func rec(key, value string) record { return record{key: key, value: value} }

// handWritten covers every behaviour of the etcd plugin that etcdsd promises to keep.
var handWritten = []dataset{
	{
		name:  "seed",
		zones: "example.local",
		records: []record{
			rec("local/example/_tcp/_web/web-server01", `{"host":"1.1.1.1","port":80}`),
			rec("local/example/_tcp/_web/web-server02", `{"host":"1.1.1.2","port":80}`),
			rec("local/example/_tcp/_web/web-server03", `{"host":"1.1.1.3","port":80}`),
			rec("local/example/_tcp/_app/app-server01", `{"host":"1.1.2.1","port":8080}`),
			rec("local/example/_tcp/_app/app-server02", `{"host":"1.1.2.2","port":8080}`),
			rec("local/example/_tcp/_app/app-server03", `{"host":"1.1.2.3","port":8080}`),
		},
	},
	{
		name:  "addresses, ttl, txt, priorities and weights",
		zones: "example.local",
		records: []record{
			rec("local/example/v4/a", `{"host":"10.0.0.1","ttl":60}`),
			rec("local/example/v4/b", `{"host":"10.0.0.1"}`), // the same address twice
			rec("local/example/v6/a", `{"host":"2001:db8::1"}`),
			rec("local/example/v6/b", `{"host":"::ffff:10.0.0.9"}`), // IPv4-mapped: an A record
			rec("local/example/txt/a", `{"text":"hello"}`),
			rec("local/example/txt/long", `{"text":"`+strings.Repeat("x", 300)+`"}`),
			rec("local/example/txt/exact", `{"text":"`+strings.Repeat("y", 255)+`"}`),
			rec("local/example/_udp/_w/a", `{"host":"10.1.0.1","port":53,"weight":25}`),
			rec("local/example/_udp/_w/b", `{"host":"10.1.0.2","port":53,"weight":75}`),
			rec("local/example/_udp/_w/c", `{"host":"10.1.0.3","port":53,"priority":20}`),
			rec("local/example/_udp/_w/d", `{"host":"10.1.0.4","port":53,"priority":20,"weight":1}`),
			rec("local/example/_udp/_w/e", `{"host":"10.1.0.5","port":0}`),
			rec("local/example/_udp/_w/f", `{"host":"10.1.0.6","port":-1}`),
			rec("local/example/_tcp/_ts/x1", `{"host":"10.3.0.1","port":80,"targetstrip":1}`),
			rec("local/example/_tcp/_ts/x2", `{"host":"10.3.0.2","port":80,"targetstrip":9}`),
			rec("local/example/empty", `{}`),
			rec("local/example/null", `null`),
			rec("local/example/extra", `{"host":"10.3.0.3","unknown":"field","labels":{"a":"b"}}`),
		},
	},
	{
		// Keys that are no DNS name (coredns#6055, #2982, a label over 63 bytes) name no
		// record, but the names above them answer their records.
		name:  "keys that are no DNS name",
		zones: "machine.local",
		records: []record{
			rec("local/machine/sub/x1", `{"host":"10.7.0.12"}`),
			rec("local/machine/sub/x2.", `{"host":"10.7.0.13"}`),
			rec("local/machine/sub/.x3", `{"host":"2001:db8::13"}`),
			rec("local/machine/a/b/", `{"host":"10.7.0.14"}`),
			rec("local/machine/deep/"+strings.Repeat("k", 64), `{"host":"10.7.0.15","text":"deep"}`),
			rec("local/machine/txt/y..z", `{"text":"between dots"}`),
		},
	},
	{
		// A name with a record and children, and keys with capitals, are answered
		// differently on purpose: TestAnswersFollowTheRFCs and TestAgainstFile.
		name:  "names that are prefixes of each other",
		zones: "example.local",
		records: []record{
			rec("local/example/sib", `{"host":"10.6.0.1"}`),
			rec("local/example/sibling", `{"host":"10.6.0.2"}`),
			rec("local/example/sib-2/x", `{"host":"10.6.0.3"}`),
		},
	},
	{
		name:  "wildcards",
		zones: "example.local",
		records: []record{
			rec("local/example/_tcp/_web/w1", `{"host":"10.7.0.1","port":80}`),
			rec("local/example/_tcp/_web/w2", `{"host":"10.7.0.2","port":81}`),
			rec("local/example/_udp/_web/w1", `{"host":"10.7.1.1","port":80}`),
			rec("local/example/_tcp/_db/d1/x", `{"host":"10.7.2.1","port":5432}`),
			rec("local/example/*/literal", `{"host":"10.7.3.1"}`),
			rec("local/example/any/literal", `{"host":"10.7.3.2"}`),
		},
		queries: []query{
			{name: "*._tcp.example.local.", qtype: dns.TypeSRV, edns: true},
			{name: "w1.*.*.example.local.", qtype: dns.TypeA, edns: true},
			{name: "*.*.*.example.local.", qtype: dns.TypeA, edns: true},
			{name: "any.any.example.local.", qtype: dns.TypeSRV, edns: true},
			{name: "*.example.local.", qtype: dns.TypeA, edns: true},
			{name: "x.*._db._tcp.example.local.", qtype: dns.TypeA, edns: true},
		},
	},
	{
		name:  "groups",
		zones: "example.local",
		records: []record{
			rec("local/example/dom/a", `{"host":"127.0.0.1","group":"g1"}`),
			rec("local/example/dom/sub/b", `{"host":"127.0.0.2","group":"g1"}`),
			rec("local/example/dom2/a", `{"host":"127.0.0.1","group":"g1"}`),
			rec("local/example/dom2/sub/b", `{"host":"127.0.0.2"}`),
			rec("local/example/dom1/a", `{"host":"127.0.0.1","group":"g1"}`),
			rec("local/example/dom1/sub/b", `{"host":"127.0.0.2","group":"g2"}`),
			rec("local/example/dom3/a", `{"text":"foo","group":"g1"}`),
			rec("local/example/dom3/sub/b", `{"text":"bar","group":"g1"}`),
			rec("local/example/dom4/a", `{"host":"127.0.0.1","group":"g1"}`),
			rec("local/example/dom4/b", `{"host":"127.0.0.2","group":"g2"}`),
		},
	},
	{
		name:  "mail",
		zones: "example.local",
		records: []record{
			rec("local/example/mail/mx1", `{"host":"mx1.example.local","priority":20,"mail":true}`),
			rec("local/example/mail/mx2", `{"host":"10.0.0.8","priority":30,"mail":true}`),
			rec("local/example/mail/mx3", `{"host":"ext.example.org","mail":true}`),
			rec("local/example/mail/notmail", `{"host":"10.0.0.9"}`),
			rec("local/example/mx1", `{"host":"10.0.0.3"}`),
		},
	},
	{
		name:  "CNAMEs: in zone, external, loops and long chains",
		zones: "example.local",
		records: []record{
			rec("local/example/alias", `{"host":"www.example.local"}`),
			rec("local/example/www", `{"host":"10.0.0.2"}`),
			rec("local/example/ext", `{"host":"ext.example.org"}`),
			rec("local/example/missing", `{"host":"nothere.example.org"}`),
			rec("local/example/dangling", `{"host":"nothere.example.local"}`),
			rec("local/example/self", `{"host":"self.example.local"}`),
			rec("local/example/loop1", `{"host":"loop2.example.local"}`),
			rec("local/example/loop2", `{"host":"loop1.example.local"}`),
			rec("local/example/parent/child", `{"host":"parent.example.local"}`),
			rec("local/example/txtalias", `{"host":"txt.example.local"}`),
			rec("local/example/txt", `{"text":"via cname"}`),
			rec("local/example/_tcp/_named/n1", `{"host":"www.example.local","port":443}`),
			rec("local/example/_tcp/_named/n2", `{"host":"ext.example.org","port":443}`),
			rec("local/example/_tcp/_named/n3", `{"host":"www.example.local","port":444}`),
			rec("local/example/v6alias", `{"host":"v6.example.local"}`),
			rec("local/example/v6", `{"host":"2001:db8::2"}`),
		},
	},
	{
		name:    "a chain of CNAMEs longer than the limit",
		zones:   "example.local",
		records: chain(14),
	},
	{
		name:  "apex records and name servers",
		zones: "example.local",
		records: []record{
			rec("local/example/dns/apex/a1", `{"host":"10.9.9.9"}`),
			rec("local/example/dns/apex/a2", `{"host":"2001:db8::9"}`),
			rec("local/example/dns/ns/ns1", `{"host":"10.9.0.1"}`),
			rec("local/example/dns/ns/ns2", `{"host":"2001:db8::53"}`),
			rec("local/example/svc", `{"host":"10.9.1.1"}`),
		},
	},
	{
		name:  "apex without dns/apex: the legacy fallback over the zone",
		zones: "example.local",
		records: []record{
			rec("local/example/svc/a", `{"host":"10.9.2.1"}`),
			rec("local/example/other", `{"host":"10.9.2.2","port":8}`),
		},
	},
	{
		name:    "apex without dns/apex, no_apex_fallback",
		zones:   "example.local",
		options: []string{"no_apex_fallback"},
		records: []record{
			rec("local/example/svc/a", `{"host":"10.9.2.1"}`),
		},
	},
	{
		name:     "name server that is a name (an error in both)",
		zones:    "example.local",
		options:  []string{"no_apex_fallback"},
		servfail: true,
		records: []record{
			rec("local/example/dns/ns/ns1", `{"host":"ns.example.org"}`),
		},
	},
	{
		name:  "reverse zones",
		zones: "example.local 10.0.0.0/8 2001:db8::/32",
		records: []record{
			rec("arpa/in-addr/10/0/0/1", `{"host":"reverse.example.local"}`),
			rec("arpa/in-addr/10/0/0/2", `{"host":"10.0.0.2"}`),
			rec("arpa/in-addr/10/0/0/3/x", `{"host":"deeper.example.local"}`),
			rec("arpa/ip6/8/b/d/0/1/0/0/2/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/1", `{"host":"v6.example.local"}`),
			rec("local/example/reverse", `{"host":"10.0.0.1"}`),
		},
	},
	{
		name:  "several zones under one path",
		zones: "a.example.local b.example.local",
		records: []record{
			rec("local/example/a/x", `{"host":"10.10.0.1"}`),
			rec("local/example/b/x", `{"host":"10.10.0.2"}`),
			rec("local/example/c/x", `{"host":"10.10.0.3"}`),
			rec("local/example/a/dns/apex/a", `{"host":"10.10.1.1"}`),
			rec("local/example/b/cname", `{"host":"x.a.example.local"}`),
		},
	},
	{
		name:    "fallthrough",
		zones:   "example.local",
		options: []string{"fallthrough"},
		// The next plugin, erratic, fails every type but A and AAAA.
		servfail: true,
		records: []record{
			rec("local/example/x", `{"host":"10.11.0.1"}`),
		},
	},
	{
		name:  "leases",
		zones: "example.local",
		records: []record{
			{key: "local/example/leased/a", value: `{"host":"10.12.0.1"}`, leaseTTL: 3600},
			{key: "local/example/leased/b", value: `{"host":"10.12.0.2","ttl":20}`, leaseTTL: 3600},
			{key: "local/example/leased/c", value: `{"host":"10.12.0.3","ttl":7200}`, leaseTTL: 600},
			{key: "local/example/leased/d", value: `{"host":"10.12.0.4"}`, leaseTTL: 100000},
			{key: "local/example/leased/e", value: `{"host":"10.12.0.5"}`, leaseTTL: 10},
			{key: "local/example/_tcp/_l/x", value: `{"host":"10.12.0.6","port":80}`, leaseTTL: 3600},
		},
	},
	{
		name:    "lease TTL bounds",
		zones:   "example.local",
		options: []string{"min-lease-ttl 1m", "max-lease-ttl 10m"},
		records: []record{
			{key: "local/example/leased/a", value: `{"host":"10.12.1.1"}`, leaseTTL: 3600},
			{key: "local/example/leased/b", value: `{"host":"10.12.1.2"}`, leaseTTL: 30},
			{key: "local/example/leased/c", value: `{"host":"10.12.1.3"}`, leaseTTL: 300},
		},
	},
	{
		name:  "external-dns style values",
		zones: "example.local",
		records: []record{
			rec("local/example/app/1a2b3c4d", `{"host":"10.13.0.1","text":"\"heritage=external-dns,external-dns/owner=default\"","targetstrip":1}`),
			rec("local/example/app/5e6f7a8b", `{"host":"10.13.0.2","targetstrip":1}`),
		},
	},
}

// chain builds c0 -> c1 -> ... -> cN CNAMEs ending in an address.
func chain(n int) []record {
	var rs []record
	for i := range n {
		rs = append(rs, rec(fmt.Sprintf("local/example/c%d", i), fmt.Sprintf(`{"host":"c%d.example.local"}`, i+1)))
	}
	return append(rs, rec(fmt.Sprintf("local/example/c%d", n), `{"host":"10.14.0.1"}`))
}

func TestHandWritten(t *testing.T) {
	total, answered := 0, 0
	for i, ds := range handWritten {
		t.Run(ds.name, func(t *testing.T) {
			path := fmt.Sprintf("/hand-%d", i)
			p := startPair(t, ds, path)
			qs := derive(ds)
			_, a := check(t, p, ds, qs, "")
			total, answered = total+len(qs), answered+a
			// Then writes of every shape to the data set's first zone.
			zone := strings.Fields(ds.zones)[0]
			q, a := writeAndCheck(t, p, ds, path, zone, uint64(i), "(data set "+ds.name+")")
			total, answered = total+q, answered+a
		})
	}
	t.Logf("%d hand-written data sets: %d queries, %d with answers", len(handWritten), total, answered)
}
