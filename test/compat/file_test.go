package compat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/file"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	nsdtest "github.com/etcdsd/etcdsd/internal/nsd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
)

// fileCase is data in etcd and the zone file that means the same, written from the RFCs:
// the file plugin serving the zone file is the oracle for what etcdsd answers.
type fileCase struct {
	name    string
	zone    string // origin
	options []string
	records []record // below the case's path
	zonedb  string   // the zone file's records, after its SOA
	queries []query
}

// The answers where etcdsd follows the RFCs and the etcd plugin does not
// (docs/differences.md), asked of etcdsd and of the file plugin serving the equivalent zone file.
// Where the file plugin departs from the RFCs itself, NSD (Debian's) serving the same zone
// file is the referee: the file plugin gives CNAMEs that end in NODATA no SOA (RFC 2308
// section 2.2), follows a CNAME loop round and round, and fails a CNAME to itself. An
// answer that differs from the file plugin's must then be NSD's (NS records in its
// authority section aside, which NSD adds to answers and RFC 1034 leaves optional).
func TestAgainstFile(t *testing.T) {
	for i, fc := range fileCases {
		t.Run(fc.name, func(t *testing.T) {
			soa := fmt.Sprintf("%[1]s 30 IN SOA ns.dns.%[1]s hostmaster.%[1]s 1 7200 1800 86400 30\n", fc.zone)
			zonefile := "$ORIGIN " + fc.zone + "\n" + soa + fc.zonedb
			ports, stop := startFileOracle(t, fmt.Sprintf("/file-%d", i), fc.zone, fc.records, zonefile, fc.options)
			defer stop()
			referee := startReferee(t, fc.zone, zonefile)
			for _, q := range fc.queries {
				ours, file := askBoth(t, q, ports)
				if d := judge(t, q, ours, file, referee); d != "" {
					t.Errorf("%s %s: %s", q.name, dns.TypeToString[q.qtype], d)
				}
			}
		})
	}
}

// startReferee starts NSD serving zonefile (with an NS record added) for zone.
func startReferee(t *testing.T, zone, zonefile string) string {
	t.Helper()
	return nsdtest.Start(t, devetcd.FreePortFor(t), nsdtest.Zone{Name: strings.TrimSuffix(zone, "."),
		File: zonefile + fmt.Sprintf("%[1]s 30 IN NS ns.dns.%[1]s\n", zone)})
}

// judge returns how etcdsd's answer to q differs from the file plugin's, and from NSD's
// at referee where the two differ, with the three answers; "" when it is the file
// plugin's, or NSD's (logged).
func judge(t *testing.T, q query, ours, file *dns.Msg, referee string) string {
	t.Helper()
	d := fileDiff(q, ours, file)
	if d == "" {
		return ""
	}
	ref, err := exchangeAt(q, referee)
	if err != nil {
		t.Fatal(err)
	}
	ref.Ns = slices.DeleteFunc(ref.Ns, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeNS })
	if fileDiff(q, ours, ref) != "" {
		return fmt.Sprintf("%s\n--- etcdsd:\n%s\n--- file:\n%s\n--- nsd:\n%s", d, ours, file, ref)
	}
	t.Logf("%s %s: the file plugin's answer differs (%s); NSD's is etcdsd's", q.name, dns.TypeToString[q.qtype], d)
	return ""
}

// startFileOracle puts records under path and starts CoreDNS with two server blocks for
// zone: etcdsd (with options) serving them, and the file plugin serving zonefile. It
// returns their ports, once etcdsd holds the records, and a func that stops both.
func startFileOracle(t *testing.T, path, zone string, records []record, zonefile string, options []string) ([]int, func()) {
	t.Helper()
	var rev int64
	for _, r := range records {
		resp, err := testEtcd.Client().Put(context.Background(), path+"/"+r.key, r.value)
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	// Not t.TempDir: a '#' in a test's name would start a Corefile comment.
	dir, err := os.MkdirTemp("", "etcdsd-file")
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	if err := os.WriteFile(db, []byte(zonefile), 0o600); err != nil {
		t.Fatal(err)
	}
	inst, ports := testserver.Start(t, 2, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n etcdsd %s {\n  path %s\n  endpoint %s\n  %s\n }\n}\n.:%d {\n bind 127.0.0.1\n file %s %s\n}\n",
			p[0], zone, path, testEtcd.Server().Endpoint, strings.Join(options, "\n  "), p[1], db, zone)
	})
	waitIndexed(t, path, rev)
	return ports, func() {
		testserver.Stop(inst)
		os.RemoveAll(dir)
	}
}

// askBoth asks q of etcdsd (ports[0]) and of the file plugin (ports[1]).
func askBoth(t *testing.T, q query, ports []int) (ours, file *dns.Msg) {
	t.Helper()
	ours, err := exchange(q, ports[0])
	if err != nil {
		t.Fatal(err)
	}
	file, err = exchange(q, ports[1])
	if err != nil {
		t.Fatal(err)
	}
	return ours, file
}

func exchange(q query, port int) (*dns.Msg, error) {
	return exchangeAt(q, fmt.Sprintf("127.0.0.1:%d", port))
}

func exchangeAt(q query, addr string) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(q.name, q.qtype)
	m.SetEdns0(4096, false)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, addr)
	return r, err
}

// fileDiff compares rcode, answer and authority, and the additional section of SRV and
// MX answers (their glue), owner names without regard to case.
func fileDiff(q query, a, b *dns.Msg) string {
	if a.Rcode != b.Rcode {
		return fmt.Sprintf("rcode %s / %s", dns.RcodeToString[a.Rcode], dns.RcodeToString[b.Rcode])
	}
	lower := func(rrs []dns.RR) []dns.RR {
		var out []dns.RR
		for _, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			c := dns.Copy(rr)
			c.Header().Name = strings.ToLower(c.Header().Name)
			out = append(out, c)
		}
		return out
	}
	sections := [][3]any{{"answer", a.Answer, b.Answer}, {"authority", a.Ns, b.Ns}}
	if q.qtype == dns.TypeSRV || q.qtype == dns.TypeMX {
		sections = append(sections, [3]any{"additional", a.Extra, b.Extra})
	}
	for _, s := range sections {
		if d := sectionDiff(lower(s[1].([]dns.RR)), lower(s[2].([]dns.RR)), 0); d != "" {
			return s[0].(string) + ": " + d
		}
	}
	return ""
}

func qs(name string, types ...uint16) []query {
	var out []query
	for _, t := range types {
		out = append(out, query{name: name, qtype: t})
	}
	return out
}

// fileTypes are the types asked of every name. SRV is asked where the data means one:
// SkyDNS serves every address as an SRV record too, which a zone file would have to
// spell out record by record.
var fileTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypePTR, dns.TypeSOA}

func join(lists ...[]query) []query {
	var out []query
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var fileCases = []fileCase{{
	name: "external-dns alias (coredns#2849)",
	zone: "example.local.",
	records: []record{
		{key: "local/example/www/25d8864c", value: `{"host":"10.9.0.1","targetstrip":1}`},
		{key: "local/example/alias/0a1b2c3d", value: `{"host":"www.example.local","text":"","targetstrip":1}`},
	},
	zonedb: "www 300 IN A 10.9.0.1\n25d8864c.www 300 IN A 10.9.0.1\n" +
		"alias 300 IN CNAME www.example.local.\n0a1b2c3d.alias 300 IN CNAME www.example.local.\n",
	queries: join(qs("alias.example.local.", fileTypes...), qs("www.example.local.", fileTypes...),
		qs("nothere.example.local.", fileTypes...), qs("example.local.", dns.TypeSOA, dns.TypeCNAME, dns.TypeTXT),
		qs("x.www.example.local.", dns.TypeA, dns.TypeSOA)),
}, {
	name:    "apex with no_apex_fallback",
	zone:    "myzone.example.com.",
	options: []string{"no_apex_fallback"},
	records: []record{{key: "com/example/myzone/svc1/5d3f0a1b", value: `{"host":"192.0.2.41","targetstrip":1}`}},
	zonedb:  "svc1 300 IN A 192.0.2.41\n5d3f0a1b.svc1 300 IN A 192.0.2.41\n",
	queries: join(qs("myzone.example.com.", dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX),
		qs("svc1.myzone.example.com.", fileTypes...)),
}, {
	name: "a name's own record and its children",
	zone: "example.com.",
	records: []record{
		{key: "com/example/ttdd1", value: `{"host":"192.0.2.101"}`},
		{key: "com/example/ttdd1/t1", value: `{"host":"192.0.2.102"}`},
	},
	zonedb:  "ttdd1 300 IN A 192.0.2.101\nttdd1 300 IN A 192.0.2.102\nt1.ttdd1 300 IN A 192.0.2.102\n",
	queries: join(qs("ttdd1.example.com.", fileTypes...), qs("t1.ttdd1.example.com.", fileTypes...)),
}, {
	name:    "MinIO bucket: a dotted key label",
	zone:    "minio.example.com.",
	records: []record{{key: "com/example/minio/photos/192.0.2.61", value: `{"host":"192.0.2.61","port":9000,"ttl":30}`}},
	zonedb: "photos 30 IN A 192.0.2.61\nphotos 30 IN SRV 10 100 9000 192.0.2.61.photos.minio.example.com.\n" +
		"192.0.2.61.photos 30 IN A 192.0.2.61\n192.0.2.61.photos 30 IN SRV 10 100 9000 192.0.2.61.photos.minio.example.com.\n",
	queries: join(qs("photos.minio.example.com.", append(fileTypes, dns.TypeSRV)...), qs("192.0.2.61.photos.minio.example.com.", fileTypes...),
		qs("61.photos.minio.example.com.", dns.TypeA, dns.TypeSRV), qs("0.2.61.photos.minio.example.com.", dns.TypeA),
		qs("192.0.2.62.photos.minio.example.com.", dns.TypeA)),
}, {
	name: "AAAA glue, dual-stack targets",
	zone: "example.org.",
	records: []record{
		{key: "org/example/v6only/a", value: `{"host":"2001:db8::82"}`},
		{key: "org/example/_tcp/_xmpp-client/a", value: `{"host":"v6only.example.org","port":5222}`},
		{key: "org/example/dual/a", value: `{"host":"192.0.2.83"}`},
		{key: "org/example/dual/b", value: `{"host":"2001:db8::83"}`},
		{key: "org/example/_tcp/_imap/a", value: `{"host":"dual.example.org","port":143}`},
		{key: "org/example/mail/a", value: `{"host":"dual.example.org","mail":true}`},
	},
	zonedb: "v6only 300 IN AAAA 2001:db8::82\na.v6only 300 IN AAAA 2001:db8::82\n" +
		"_xmpp-client._tcp 300 IN SRV 10 100 5222 v6only.example.org.\n" +
		"dual 300 IN A 192.0.2.83\ndual 300 IN AAAA 2001:db8::83\na.dual 300 IN A 192.0.2.83\nb.dual 300 IN AAAA 2001:db8::83\n" +
		"_imap._tcp 300 IN SRV 10 100 143 dual.example.org.\nmail 300 IN MX 10 dual.example.org.\n",
	queries: join(qs("_xmpp-client._tcp.example.org.", dns.TypeSRV), qs("_imap._tcp.example.org.", dns.TypeSRV),
		qs("mail.example.org.", dns.TypeMX), qs("dual.example.org.", dns.TypeA, dns.TypeAAAA)),
}, {
	name:    "RFC 2317 classless reverse zone",
	zone:    "128/27.2.0.192.in-addr.arpa.",
	records: []record{{key: "arpa/in-addr/192/0/2/128/27/130", value: `{"host":"host130.example.org"}`}},
	zonedb:  "130 300 IN PTR host130.example.org.\n",
	queries: join(qs("130.128/27.2.0.192.in-addr.arpa.", dns.TypePTR, dns.TypeMX),
		qs("131.128/27.2.0.192.in-addr.arpa.", dns.TypePTR)),
}, {
	name: "letter case (RFC 4343)",
	zone: "example.org.",
	records: []record{
		{key: "org/example/MixedCase", value: `{"host":"192.0.2.21"}`},
		{key: "org/example/_tcp/_x/Web1", value: `{"host":"192.0.2.22","port":80}`},
	},
	zonedb: "MixedCase 300 IN A 192.0.2.21\n_x._tcp 300 IN A 192.0.2.22\n_x._tcp 300 IN SRV 10 100 80 Web1._x._tcp.example.org.\n" +
		"Web1._x._tcp 300 IN A 192.0.2.22\nWeb1._x._tcp 300 IN SRV 10 100 80 Web1._x._tcp.example.org.\n",
	queries: join(qs("mixedcase.example.org.", fileTypes...), qs("MIXEDCASE.example.org.", dns.TypeA),
		qs("_x._tcp.example.org.", dns.TypeSRV, dns.TypeA), qs("web1._x._tcp.example.org.", dns.TypeA, dns.TypeSRV)),
}, {
	name: "CNAME chains: to a missing name, to NODATA, out of the zone, loops, over the cap",
	zone: "example.net.",
	records: append([]record{
		{key: "net/example/addr/x", value: `{"host":"192.0.2.1"}`},
		{key: "net/example/tomissing/x", value: `{"host":"nothere.example.net"}`},
		{key: "net/example/toaddr/x", value: `{"host":"addr.example.net"}`},
		{key: "net/example/totoaddr/x", value: `{"host":"toaddr.example.net"}`},
		{key: "net/example/out/x", value: `{"host":"www.example.org"}`},
		{key: "net/example/loop1/x", value: `{"host":"loop2.example.net"}`},
		{key: "net/example/loop2/x", value: `{"host":"loop1.example.net"}`},
		{key: "net/example/self/x", value: `{"host":"self.example.net"}`},
	}, []record{
		{key: "net/example/c0/x", value: `{"host":"c1.example.net"}`},
		{key: "net/example/c1/x", value: `{"host":"c2.example.net"}`},
		{key: "net/example/c2/x", value: `{"host":"c3.example.net"}`},
		{key: "net/example/c3/x", value: `{"host":"c4.example.net"}`},
		{key: "net/example/c4/x", value: `{"host":"c5.example.net"}`},
		{key: "net/example/c5/x", value: `{"host":"c6.example.net"}`},
		{key: "net/example/c6/x", value: `{"host":"c7.example.net"}`},
		{key: "net/example/c7/x", value: `{"host":"c8.example.net"}`},
		{key: "net/example/c8/x", value: `{"host":"c9.example.net"}`},
		{key: "net/example/c9/x", value: `{"host":"c10.example.net"}`},
		{key: "net/example/c10/x", value: `{"host":"c11.example.net"}`},
		{key: "net/example/c11/x", value: `{"host":"addr.example.net"}`},
	}...),
	zonedb: "addr 300 IN A 192.0.2.1\nx.addr 300 IN A 192.0.2.1\n" +
		"tomissing 300 IN CNAME nothere.example.net.\nx.tomissing 300 IN CNAME nothere.example.net.\n" +
		"toaddr 300 IN CNAME addr.example.net.\nx.toaddr 300 IN CNAME addr.example.net.\n" +
		"totoaddr 300 IN CNAME toaddr.example.net.\nx.totoaddr 300 IN CNAME toaddr.example.net.\n" +
		"out 300 IN CNAME www.example.org.\nx.out 300 IN CNAME www.example.org.\n" +
		"loop1 300 IN CNAME loop2.example.net.\nx.loop1 300 IN CNAME loop2.example.net.\n" +
		"loop2 300 IN CNAME loop1.example.net.\nx.loop2 300 IN CNAME loop1.example.net.\n" +
		"self 300 IN CNAME self.example.net.\nx.self 300 IN CNAME self.example.net.\n" +
		"c0 300 IN CNAME c1.example.net.\nx.c0 300 IN CNAME c1.example.net.\n" +
		"c1 300 IN CNAME c2.example.net.\nx.c1 300 IN CNAME c2.example.net.\n" +
		"c2 300 IN CNAME c3.example.net.\nx.c2 300 IN CNAME c3.example.net.\n" +
		"c3 300 IN CNAME c4.example.net.\nx.c3 300 IN CNAME c4.example.net.\n" +
		"c4 300 IN CNAME c5.example.net.\nx.c4 300 IN CNAME c5.example.net.\n" +
		"c5 300 IN CNAME c6.example.net.\nx.c5 300 IN CNAME c6.example.net.\n" +
		"c6 300 IN CNAME c7.example.net.\nx.c6 300 IN CNAME c7.example.net.\n" +
		"c7 300 IN CNAME c8.example.net.\nx.c7 300 IN CNAME c8.example.net.\n" +
		"c8 300 IN CNAME c9.example.net.\nx.c8 300 IN CNAME c9.example.net.\n" +
		"c9 300 IN CNAME c10.example.net.\nx.c9 300 IN CNAME c10.example.net.\n" +
		"c10 300 IN CNAME c11.example.net.\nx.c10 300 IN CNAME c11.example.net.\n" +
		"c11 300 IN CNAME addr.example.net.\nx.c11 300 IN CNAME addr.example.net.\n",
	queries: join(qs("tomissing.example.net.", dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeCNAME),
		qs("toaddr.example.net.", dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeCNAME),
		qs("totoaddr.example.net.", dns.TypeA, dns.TypeAAAA, dns.TypeTXT),
		qs("out.example.net.", dns.TypeA, dns.TypeTXT, dns.TypeCNAME),
		qs("loop1.example.net.", dns.TypeA, dns.TypeTXT), qs("self.example.net.", dns.TypeA),
		qs("c0.example.net.", dns.TypeA, dns.TypeTXT), qs("c5.example.net.", dns.TypeA, dns.TypeAAAA)),
}}
