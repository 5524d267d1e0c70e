// Package xfr tests zone transfer: AXFR and IXFR from etcdsd through CoreDNS's transfer
// plugin, and a real secondary (Debian's nsd) that loads the zone, follows NOTIFY and
// must answer as etcdsd does.
package xfr

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	_ "github.com/coredns/coredns/plugin/transfer"
	_ "github.com/etcdsd/etcdsd"
	"github.com/etcdsd/etcdsd/internal/devetcd"
	nsdtest "github.com/etcdsd/etcdsd/internal/nsd"
	"github.com/etcdsd/etcdsd/internal/testserver"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	testEtcd devetcd.Shared
	changes  = flag.Int("xfr.changes", 20, "changes TestPropagation times from etcd to the secondary (make bench: 1000)")
)

func TestMain(m *testing.M) {
	clog.Discard()
	dnsserver.Quiet = true
	os.Exit(devetcd.RunTests(m, &testEtcd))
}

const zone = "example.local."

// primary loads kvs under path and starts CoreDNS serving example.local through etcdsd
// with transfers to (and NOTIFY for) secondary. It returns its address.
func primary(t *testing.T, path string, kvs [][2]string, secondary string, options ...string) string {
	t.Helper()
	var rev int64
	for _, kv := range kvs {
		resp, err := testEtcd.Client().Put(context.Background(), path+"/local/example/"+kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	var inst *caddy.Instance
	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf("example.local:%d {\n bind 127.0.0.1\n transfer {\n  to %s\n }\n etcdsd {\n  path %s\n  endpoint %s\n  notify_interval 100ms\n  %s\n }\n}\n",
			p[0], secondary, path, testEtcd.Server().Endpoint, strings.Join(options, "\n  "))
	})
	t.Cleanup(func() { testserver.Stop(inst) })
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	waitSerial(t, addr, uint32(rev))
	return addr
}

// waitSerial waits until the SOA of example.local at addr has at least serial.
func waitSerial(t *testing.T, addr string, serial uint32) {
	t.Helper()
	waitSerialOf(t, addr, zone, serial)
}

// waitSerialOf waits until the SOA of zone z at addr has at least serial.
func waitSerialOf(t *testing.T, addr, z string, serial uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := ask(addr, z, dns.TypeSOA); err == nil && len(r.Answer) == 1 {
			if soa, ok := r.Answer[0].(*dns.SOA); ok && soa.Serial >= serial {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not reach serial %d", addr, serial)
}

func ask(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.SetEdns0(4096, false)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, addr)
	return r, err
}

// axfr transfers the zone from addr.
func axfr(t *testing.T, addr string, qtype uint16, serial uint32) []dns.RR {
	t.Helper()
	return transferOf(t, addr, zone, qtype, serial)
}

// transferOf transfers zone z from addr: an AXFR, or an IXFR from serial.
func transferOf(t *testing.T, addr, z string, qtype uint16, serial uint32) []dns.RR {
	t.Helper()
	m := new(dns.Msg).SetQuestion(z, qtype)
	if qtype == dns.TypeIXFR {
		m.SetIxfr(z, serial, "ns.dns."+z, "hostmaster."+z)
	}
	env, err := new(dns.Transfer).In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for e := range env {
		if e.Error != nil {
			t.Fatalf("%s: %v", z, e.Error)
		}
		rrs = append(rrs, e.RR...)
	}
	return rrs
}

// A transfer is the zone between two SOA records at the serial the index holds; an IXFR
// at that serial gets the SOA alone.
func TestAXFR(t *testing.T) {
	addr := primary(t, "/axfr", [][2]string{
		{"www", `{"host":"192.0.2.1"}`},
		{"_tcp/_http/a", `{"host":"192.0.2.2","port":80}`},
		{"alias/0a1b2c3d", `{"host":"www.example.local","targetstrip":1}`},
		{"txt", `{"text":"hello"}`},
		{"dns/ns/ns1", `{"host":"192.0.2.53"}`},
	}, "127.0.0.1")
	rrs := axfr(t, addr, dns.TypeAXFR, 0)
	if len(rrs) < 2 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("a transfer starts and ends with the SOA:\n%v", rrs)
	}
	have := map[string]bool{}
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		have[c.String()] = true
	}
	for _, want := range []string{
		"www.example.local.\t0\tIN\tA\t192.0.2.1",
		"a._http._tcp.example.local.\t0\tIN\tSRV\t10 100 80 a._http._tcp.example.local.",
		"_http._tcp.example.local.\t0\tIN\tSRV\t10 100 80 a._http._tcp.example.local.",
		"alias.example.local.\t0\tIN\tCNAME\twww.example.local.",
		"txt.example.local.\t0\tIN\tTXT\t\"hello\"",
		"example.local.\t0\tIN\tNS\tns1.ns.dns.example.local.",
		"ns1.ns.dns.example.local.\t0\tIN\tA\t192.0.2.53",
	} {
		if !have[want] {
			t.Errorf("the transfer lacks %q", want)
		}
	}
	serial := rrs[0].(*dns.SOA).Serial
	if up := axfr(t, addr, dns.TypeIXFR, serial); len(up) != 1 || up[0].(*dns.SOA).Serial != serial {
		t.Errorf("IXFR at the current serial: want the SOA alone, got %v", up)
	}

	// Only the addresses in transfer's "to" may transfer the zone.
	closed := primary(t, "/axfr-closed", nil, "192.0.2.53")
	m := new(dns.Msg).SetQuestion(zone, dns.TypeAXFR)
	env, err := new(dns.Transfer).In(m, closed)
	if err == nil {
		for e := range env {
			if e.Error != nil {
				err = e.Error
			}
		}
	}
	if err == nil || !strings.Contains(err.Error(), "rcode: 5") {
		t.Errorf("a transfer to an address not in 'to': want REFUSED, got %v", err)
	}
}

// nsd starts NSD as the secondary of example.local, transferring it from master.
func nsd(t *testing.T, port int, master string) string {
	t.Helper()
	return nsdtest.Start(t, port, nsdtest.Zone{Name: "example.local", Primary: master})
}

// generated returns keys of every shape a zone can carry: addresses, texts, SRV instances,
// mail exchangers and aliases to names of the zone.
func generated(seed uint64) [][2]string {
	rng := rand.New(rand.NewPCG(seed, 0x78))
	labels := []string{"a", "b", "web", "db", "x1"}
	var kvs [][2]string
	var names []string
	for i := range 12 + rng.IntN(12) {
		var key []string
		for range 1 + rng.IntN(3) {
			key = append(key, labels[rng.IntN(len(labels))])
		}
		key = append(key, fmt.Sprintf("k%d", i))
		rev := slices.Clone(key)
		slices.Reverse(rev)
		name := strings.Join(rev, ".") + "." + zone
		var v string
		switch rng.IntN(6) {
		case 0:
			v = fmt.Sprintf(`{"host":"2001:db8::%d"}`, i)
		case 1:
			v = fmt.Sprintf(`{"text":"t%d"}`, i)
		case 2:
			v = fmt.Sprintf(`{"host":"192.0.2.%d","port":%d,"priority":%d}`, i, 1000+i, rng.IntN(3))
		case 3:
			if len(names) > 0 {
				v = fmt.Sprintf(`{"host":%q}`, strings.TrimSuffix(names[rng.IntN(len(names))], "."))
				break
			}
			fallthrough
		default:
			v = fmt.Sprintf(`{"host":"192.0.2.%d"}`, i)
		}
		kvs = append(kvs, [2]string{strings.Join(key, "/"), v})
		names = append(names, name)
	}
	kvs = append(kvs, [2]string{"mail/m", `{"host":"192.0.2.250","mail":true}`})
	return kvs
}

// A real secondary loads the zone and answers every name and type of it as etcdsd does,
// then follows a change through NOTIFY and a new transfer.
func TestSecondaryAnswersAsEtcdsd(t *testing.T) {
	for seed := range uint64(3) {
		port := devetcd.FreePortFor(t)
		path := fmt.Sprintf("/sec-%d", seed)
		addr := primary(t, path, generated(seed), fmt.Sprintf("127.0.0.1:%d", port))
		sec := nsd(t, port, addr)
		rrs := axfr(t, addr, dns.TypeAXFR, 0)
		serial := rrs[0].(*dns.SOA).Serial
		waitSerial(t, sec, serial)

		compareSecondary(t, seed, addr, sec, rrs)

		// A change reaches the secondary through NOTIFY.
		start := time.Now()
		resp, err := testEtcd.Client().Put(context.Background(), path+"/local/example/new", `{"host":"192.0.2.99"}`)
		if err != nil {
			t.Fatal(err)
		}
		waitSerial(t, sec, uint32(resp.Header.Revision))
		if r, err := ask(sec, "new."+zone, dns.TypeA); err != nil || len(r.Answer) != 1 {
			t.Errorf("the secondary does not answer the new record: %v %v", r, err)
		}
		t.Logf("seed %d: the secondary served the new record %s after the write", seed, time.Since(start).Round(time.Millisecond))
		// ...by IXFR, which nsd asks for first: it must hold the same zone.
		rrs = axfr(t, addr, dns.TypeAXFR, 0)
		compareSecondary(t, seed, addr, sec, rrs)
	}
}

// compareSecondary asks etcdsd at addr and the secondary at sec every name of the zone rrs
// (and names below them, and one that is not there) with every type, and reports
// differences.
func compareSecondary(t *testing.T, seed uint64, addr, sec string, rrs []dns.RR) {
	t.Helper()
	names := map[string]bool{"nothere." + zone: true}
	cnames := map[string]bool{}
	for _, rr := range rrs {
		n := strings.ToLower(rr.Header().Name)
		names[n], names["zz."+n] = true, true
		if rr.Header().Rrtype == dns.TypeCNAME {
			cnames[n] = true
		}
	}
	asked, skipped := 0, 0
	for n := range names {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSRV, dns.TypeMX, dns.TypeCNAME} {
			ours, err := ask(addr, n, qtype)
			if err != nil {
				t.Fatal(err)
			}
			if !cnames[n] && ownsCNAME(ours, n) || cnames[n] && qtype == dns.TypeSRV {
				// A CNAME beside other data, which no zone holds: an alias's SRV
				// record (SkyDNS makes every record one), or a name with aliases
				// and other records below it.
				skipped++
				continue
			}
			theirs, err := ask(sec, n, qtype)
			if err != nil {
				t.Fatal(err)
			}
			asked++
			if d := differ(ours, theirs); d != "" {
				t.Errorf("seed %d: %s %s: %s\n--- etcdsd:\n%s\n--- nsd:\n%s", seed, n, dns.TypeToString[qtype], d, ours, theirs)
			}
		}
	}
	t.Logf("seed %d: %d records transferred, %d questions asked of both, %d left out (CNAME beside other data)", seed, len(rrs), asked, skipped)

}

func ownsCNAME(m *dns.Msg, name string) bool {
	return slices.ContainsFunc(m.Answer, func(rr dns.RR) bool {
		return rr.Header().Rrtype == dns.TypeCNAME && strings.EqualFold(rr.Header().Name, name)
	})
}

// differ compares rcode and the answer section as sets, with TTLs; for negative
// answers the SOA in the authority section without its serial.
func differ(a, b *dns.Msg) string {
	if a.Rcode != b.Rcode {
		return fmt.Sprintf("rcode %s / %s", dns.RcodeToString[a.Rcode], dns.RcodeToString[b.Rcode])
	}
	if x, y := texts(a.Answer), texts(b.Answer); !slices.Equal(x, y) {
		return fmt.Sprintf("answer %q / %q", x, y)
	}
	if len(a.Answer) == 0 {
		if x, y := texts(a.Ns), texts(b.Ns); !slices.Equal(x, y) {
			return fmt.Sprintf("authority %q / %q", x, y)
		}
	}
	return ""
}

func texts(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = strings.ToLower(c.Header().Name)
		if soa, ok := c.(*dns.SOA); ok {
			soa.Serial = 0
		}
		out = append(out, c.String())
	}
	// As sets: an RRset holds no record twice (RFC 2181 section 5), which the etcd
	// plugin's SRV answers do for two keys with one target.
	slices.Sort(out)
	return slices.Compact(out)
}

// Every IXFR delta the journal answers turns the zone at its serial into the zone at the
// newest serial, as two AXFRs show them, whatever the writes were: single puts, a
// transaction of puts and deletes, a prefix delete, a lease with several keys revoked,
// keys under other names (capitals, dotted labels). Past the journal, an IXFR gets the
// whole zone.
func TestIXFRDeltas(t *testing.T) {
	const path = "/ixfr"
	addr := primary(t, path, generated(7), "127.0.0.1", "ixfr_journal 10")
	ctx := context.Background()
	key := func(k string) string { return path + "/local/example/" + k }
	lease, err := testEtcd.Client().Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	writes := []func() (*clientv3.PutResponse, error){
		func() (*clientv3.PutResponse, error) {
			return testEtcd.Client().Put(ctx, key("web/n1"), `{"host":"192.0.2.201"}`)
		},
		func() (*clientv3.PutResponse, error) {
			_, err := testEtcd.Client().Txn(ctx).Then(
				clientv3.OpPut(key("web/n2"), `{"host":"192.0.2.202","port":8080}`),
				clientv3.OpPut(key("alias2/0a1b2c3d"), `{"host":"n1.web.example.local"}`),
				clientv3.OpDelete(key("web/n1")),
				clientv3.OpPut(key("Caps/Photos/192.0.2.9"), `{"host":"192.0.2.9","text":"minio"}`),
			).Commit()
			return nil, err
		},
		func() (*clientv3.PutResponse, error) {
			for _, k := range []string{"leased/a", "leased/b", "leased/c"} {
				if _, err := testEtcd.Client().Put(ctx, key(k), `{"host":"192.0.2.210"}`, clientv3.WithLease(lease.ID)); err != nil {
					return nil, err
				}
			}
			return nil, nil
		},
		func() (*clientv3.PutResponse, error) {
			_, err := testEtcd.Client().Delete(ctx, key("web/"), clientv3.WithPrefix())
			return nil, err
		},
		func() (*clientv3.PutResponse, error) {
			_, err := testEtcd.Client().Revoke(ctx, lease.ID)
			return nil, err
		},
	}
	zones := [][]dns.RR{axfr(t, addr, dns.TypeAXFR, 0)}
	for _, w := range writes {
		if _, err := w(); err != nil {
			t.Fatal(err)
		}
		resp, err := testEtcd.Client().Get(ctx, "/", clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		waitSerial(t, addr, uint32(resp.Header.Revision))
		zones = append(zones, axfr(t, addr, dns.TypeAXFR, 0))
	}
	newest := set(zones[len(zones)-1])
	for i, z := range zones[:len(zones)-1] {
		serial := z[0].(*dns.SOA).Serial
		ixfr := axfr(t, addr, dns.TypeIXFR, serial)
		if len(ixfr) < 2 || ixfr[1].Header().Rrtype != dns.TypeSOA {
			t.Errorf("IXFR from serial %d (zone %d): the whole zone, not the changes", serial, i)
			continue
		}
		if got := apply(t, z, ixfr); !maps.Equal(got, newest) {
			t.Errorf("IXFR from serial %d: the zone with its changes applied differs from the newest AXFR:\nonly after IXFR: %v\nonly in AXFR: %v",
				serial, only(got, newest), only(newest, got))
		}
	}
	// Past the journal (ten changes), an IXFR gets the whole zone.
	var rev int64
	for i := range 11 {
		resp, err := testEtcd.Client().Put(ctx, key(fmt.Sprintf("more/m%d", i)), `{"host":"192.0.2.220"}`)
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	waitSerial(t, addr, uint32(rev))
	for _, serial := range []uint32{zones[0][0].(*dns.SOA).Serial, 1} {
		if old := axfr(t, addr, dns.TypeIXFR, serial); len(old) < 3 || old[1].Header().Rrtype == dns.TypeSOA {
			t.Errorf("IXFR from serial %d, which the journal does not hold: want the whole zone, got %d records", serial, len(old))
		}
	}
}

// set is a zone's records as text without TTL (leased records count down between two
// transfers) and without the SOA.
func set(rrs []dns.RR) map[string]bool {
	out := map[string]bool{}
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeSOA {
			out[noTTL(rr)] = true
		}
	}
	return out
}

func noTTL(rr dns.RR) string {
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	c.Header().Name = strings.ToLower(c.Header().Name)
	return c.String()
}

// apply applies an IXFR response (RFC 1995 section 4) to zone.
func apply(t *testing.T, zone, ixfr []dns.RR) map[string]bool {
	t.Helper()
	z := set(zone)
	adding := true // the first SOA inside starts the deletions of the first difference
	for _, rr := range ixfr[1 : len(ixfr)-1] {
		if rr.Header().Rrtype == dns.TypeSOA {
			adding = !adding
			continue
		}
		if adding {
			z[noTTL(rr)] = true
		} else {
			if !z[noTTL(rr)] {
				t.Errorf("IXFR deletes %q, which the zone does not hold", rr)
			}
			delete(z, noTTL(rr))
		}
	}
	return z
}

func only(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// The time from an etcd write's return to the secondary's answer: NOTIFY, IXFR and the
// secondary's reload, one change at a time. It reports; it asserts nothing about time.
func TestPropagation(t *testing.T) {
	port := devetcd.FreePortFor(t)
	addr := primary(t, "/prop", generated(1), fmt.Sprintf("127.0.0.1:%d", port), "notify_interval 0s")
	sec := nsd(t, port, addr)
	waitSerial(t, sec, axfr(t, addr, dns.TypeAXFR, 0)[0].(*dns.SOA).Serial)
	lat := make([]time.Duration, 0, *changes)
	for i := range *changes {
		name := fmt.Sprintf("n%d.prop.%s", i, zone)
		start := time.Now()
		if _, err := testEtcd.Client().Put(context.Background(), fmt.Sprintf("/prop/local/example/prop/n%d", i), `{"host":"192.0.2.77"}`); err != nil {
			t.Fatal(err)
		}
		for {
			if r, err := ask(sec, name, dns.TypeA); err == nil && len(r.Answer) == 1 {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("change %d: the secondary does not answer %s after 10 s", i, name)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond) }
	t.Logf("propagation to nsd over %d changes (put, NOTIFY, IXFR, nsd's reload, answer): p50 %v p99 %v max %v",
		len(lat), q(0.5), q(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
}

// What breaks secondaries stays out of transfers: a reverse zone holds PTR records, not
// CNAMEs; an RRset holds no record twice and has one TTL (RFC 2181 section 5); a leased
// record's TTL does not count down between a transfer and the IXFR that deletes it; a
// key with capitals gives one lower-case owner; a zone always has NS records; a "*" key
// is no wildcard without the wildcards option. An IXFR from a newer serial gets the SOA
// alone (RFC 1995 section 2), and a second etcdsd stanza's zone transfers too.
func TestTransferShapes(t *testing.T) {
	ctx := context.Background()
	lease, err := testEtcd.Client().Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"/shapes/arpa/in-addr/10/0/0/5":  `{"host":"web.example.local"}`,
		"/shapes/local/example/s/a":      `{"host":"target.example.org","ttl":60}`,
		"/shapes/local/example/s/b":      `{"host":"target.example.org"}`,
		"/shapes/local/example/s/c":      `{"host":"192.0.2.99"}`,
		"/shapes/local/example/Mixed/Up": `{"host":"192.0.2.3"}`,
		"/shapes/local/example/apps/*":   `{"host":"192.0.2.4"}`,
		"/shapes/local/other/www":        `{"host":"192.0.2.5"}`,
	} {
		if _, err := testEtcd.Client().Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := testEtcd.Client().Put(ctx, "/shapes/local/example/leased/h1", `{"host":"192.0.2.6"}`, clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	inst, ports := testserver.Start(t, 1, func(p []int) string {
		return fmt.Sprintf(".:%d {\n bind 127.0.0.1\n transfer {\n  to 127.0.0.1\n }\n etcdsd example.local 10.0.0.0/24 {\n  path /shapes\n  endpoint %[2]s\n }\n etcdsd other.local {\n  path /shapes\n  endpoint %[2]s\n }\n etcdsd wild.local {\n  path /shapes\n  endpoint %[2]s\n  wildcards\n }\n}\n",
			p[0], testEtcd.Server().Endpoint)
	})
	t.Cleanup(func() { testserver.Stop(inst) })
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	waitSerial(t, addr, uint32(resp.Header.Revision))

	zoneOf := func(z string, qtype uint16, serial uint32) []dns.RR { return transferOf(t, addr, z, qtype, serial) }
	reverse := zoneOf("0.0.10.in-addr.arpa.", dns.TypeAXFR, 0)
	if !slices.ContainsFunc(reverse, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypePTR }) ||
		slices.ContainsFunc(reverse, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeCNAME }) {
		t.Errorf("the reverse zone must hold the PTR record and no CNAME:\n%v", reverse)
	}
	forward := zoneOf(zone, dns.TypeAXFR, 0)
	sets := map[string][]dns.RR{}
	for _, rr := range forward[1 : len(forward)-1] {
		h := rr.Header()
		if h.Name != strings.ToLower(h.Name) || slices.Contains(dns.SplitDomainName(h.Name), "*") {
			t.Errorf("owner %q: want lower case and no \"*\" label", h.Name)
		}
		k := h.Name + " " + dns.TypeToString[h.Rrtype]
		for _, o := range sets[k] {
			if dns.IsDuplicate(o, rr) || o.Header().Ttl != h.Ttl {
				t.Errorf("RRset %s: %v beside %v", k, rr, o)
			}
		}
		sets[k] = append(sets[k], rr)
	}
	if ns := sets[zone+" NS"]; len(ns) != 1 {
		t.Errorf("the apex has no NS record: %v", ns)
	}
	if h1 := sets["h1.leased."+zone+" A"]; len(h1) != 1 || h1[0].Header().Ttl != 100 {
		t.Errorf("a leased record carries its lease's granted TTL: %v", h1)
	}
	serial := forward[0].(*dns.SOA).Serial
	if _, err := testEtcd.Client().Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, addr, serial+1)
	ixfr := zoneOf(zone, dns.TypeIXFR, serial)
	if len(ixfr) < 2 || ixfr[1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("IXFR after the revoke: want changes, got %d records", len(ixfr))
	}
	for _, rr := range ixfr {
		if rr.Header().Name == "h1.leased."+zone && rr.Header().Rrtype == dns.TypeA && rr.Header().Ttl != 100 {
			t.Errorf("the IXFR deletes %v with another TTL than the transfer gave it", rr)
		}
	}
	if newer := zoneOf(zone, dns.TypeIXFR, serial+1000); len(newer) != 1 {
		t.Errorf("IXFR from a newer serial: want the SOA alone, got %d records", len(newer))
	}
	if other := zoneOf("other.local.", dns.TypeAXFR, 0); !slices.ContainsFunc(other, func(rr dns.RR) bool { return rr.Header().Name == "www.other.local." }) {
		t.Errorf("the second stanza's zone does not transfer: %v", other)
	}

	// An IXFR holds the names an AXFR holds: with wildcards, never a name a wildcard
	// answers; without, no "*" name.
	for _, step := range []struct {
		zone, key, value string // value "": delete
	}{
		{"wild.local.", "/shapes/local/wild/w/*", `{"host":"192.0.2.12"}`},
		{"wild.local.", "/shapes/local/wild/w/x", `{"host":"192.0.2.14"}`},
		{"wild.local.", "/shapes/local/wild/w/x", ""},
		{"wild.local.", "/shapes/local/wild/w/*", `{"host":"192.0.2.99"}`},
		{zone, "/shapes/local/example/apps/*", `{"host":"192.0.2.62"}`},
		{zone, "/shapes/local/example/ns2/*", `{"host":"192.0.2.70"}`},
	} {
		before := zoneOf(step.zone, dns.TypeAXFR, 0)
		var rev int64
		if step.value == "" {
			resp, err := testEtcd.Client().Delete(ctx, step.key)
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		} else {
			resp, err := testEtcd.Client().Put(ctx, step.key, step.value)
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		waitSerialOf(t, addr, step.zone, uint32(rev))
		after := set(zoneOf(step.zone, dns.TypeAXFR, 0))
		ixfr := zoneOf(step.zone, dns.TypeIXFR, before[0].(*dns.SOA).Serial)
		if got := apply(t, before, ixfr); !maps.Equal(got, after) {
			t.Errorf("%s %q: the IXFR applied differs from the AXFR:\nonly after IXFR: %v\nonly in AXFR: %v",
				step.key, step.value, only(got, after), only(after, got))
		}
	}
}
