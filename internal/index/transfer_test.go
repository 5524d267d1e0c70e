package index

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// transferData is a zone with one name of each kind a transfer carries.
var transferData = [][2]string{
	{"/h/local/example/dns/apex/x1", `{"host":"10.9.9.9"}`},
	{"/h/local/example/www", `{"host":"10.0.0.2","ttl":60}`},
	{"/h/local/example/www/v6", `{"host":"2001:db8::2","ttl":30}`},
	{"/h/local/example/alias", `{"host":"www.example.local"}`},
	{"/h/local/example/txt", `{"text":"hello"}`},
	{"/h/local/example/mail/mx1", `{"host":"www.example.local","priority":20,"mail":true}`},
	{"/h/local/example/_tcp/_web/a", `{"host":"10.1.0.1","port":80}`},
	{"/h/local/example/Upper", `{"host":"10.2.0.1"}`},
	{"/h/local/example/no..name", `{"host":"10.3.0.1"}`},
	{"/h/local/example/sub/x", `{"host":"10.4.0.1"}`},
	{"/h/local/example/bad", `{"host":`},
}

// zoneText returns the records of a transfer of zone from s, one per line, TTLs and
// all, as a secondary would write its zone file.
func zoneText(x *Transfer, s *Snapshot) string {
	var b strings.Builder
	for _, rr := range x.SOA(s) {
		b.WriteString(rr.String() + "\n")
	}
	x.Zone(s, func(rrs []dns.RR) {
		for _, rr := range rrs {
			b.WriteString(rr.String() + "\n")
		}
	})
	return b.String()
}

// TestTransferZone is what an AXFR of a zone carries: every name once, in canonical
// order, each RRset at its lowest TTL, the apex's NS made from the SOA when the zone has
// no dns/ns keys, an alias's CNAME alone, and names that are no DNS name left out.
func TestTransferZone(t *testing.T) {
	const zone = "example.local."
	s := memoryBuilder(t, zone, transferData).Snapshot(1, nil)
	got := zoneText(NewTransfer(testOptions(), []string{zone}, zone), s)
	want := `example.local.	30	IN	SOA	ns.dns.example.local. hostmaster.example.local. 11 7200 1800 86400 30
example.local.	30	IN	NS	ns.dns.example.local.
example.local.	30	IN	SRV	10 14 0 Upper.example.local.
example.local.	30	IN	SRV	10 14 80 a._web._tcp.example.local.
example.local.	30	IN	SRV	10 14 0 www.example.local.
example.local.	30	IN	SRV	10 14 0 x1.apex.dns.example.local.
example.local.	30	IN	SRV	20 100 0 www.example.local.
example.local.	30	IN	SRV	10 14 0 x.sub.example.local.
example.local.	30	IN	SRV	10 14 0 v6.www.example.local.
example.local.	300	IN	A	10.9.9.9
example.local.	300	IN	TXT	"hello"
example.local.	300	IN	MX	20 www.example.local.
_tcp.example.local.	300	IN	SRV	10 100 80 a._web._tcp.example.local.
_tcp.example.local.	300	IN	A	10.1.0.1
_web._tcp.example.local.	300	IN	SRV	10 100 80 a._web._tcp.example.local.
_web._tcp.example.local.	300	IN	A	10.1.0.1
a._web._tcp.example.local.	300	IN	SRV	10 100 80 a._web._tcp.example.local.
a._web._tcp.example.local.	300	IN	A	10.1.0.1
alias.example.local.	300	IN	CNAME	www.example.local.
dns.example.local.	300	IN	SRV	10 100 0 x1.apex.dns.example.local.
dns.example.local.	300	IN	A	10.9.9.9
apex.dns.example.local.	300	IN	SRV	10 100 0 x1.apex.dns.example.local.
apex.dns.example.local.	300	IN	A	10.9.9.9
x1.apex.dns.example.local.	300	IN	SRV	10 100 0 x1.apex.dns.example.local.
x1.apex.dns.example.local.	300	IN	A	10.9.9.9
mail.example.local.	300	IN	SRV	20 100 0 www.example.local.
mail.example.local.	300	IN	MX	20 www.example.local.
mx1.mail.example.local.	300	IN	SRV	20 100 0 www.example.local.
mx1.mail.example.local.	300	IN	MX	20 www.example.local.
sub.example.local.	300	IN	SRV	10 100 0 x.sub.example.local.
sub.example.local.	300	IN	A	10.4.0.1
x.sub.example.local.	300	IN	SRV	10 100 0 x.sub.example.local.
x.sub.example.local.	300	IN	A	10.4.0.1
txt.example.local.	300	IN	TXT	"hello"
upper.example.local.	300	IN	SRV	10 100 0 Upper.example.local.
upper.example.local.	300	IN	A	10.2.0.1
www.example.local.	30	IN	SRV	10 50 0 www.example.local.
www.example.local.	30	IN	SRV	10 50 0 v6.www.example.local.
www.example.local.	60	IN	A	10.0.0.2
www.example.local.	30	IN	AAAA	2001:db8::2
v6.www.example.local.	30	IN	SRV	10 100 0 v6.www.example.local.
v6.www.example.local.	30	IN	AAAA	2001:db8::2
`
	if got != want {
		t.Errorf("the zone:\n%s\nwant:\n%s", got, want)
	}
}

// TestTransferDelta is an IXFR's difference between two snapshots: the old SOA and the
// records that went, the new SOA and those that came, for the names the changed keys
// belong to and the names above them.
func TestTransferDelta(t *testing.T) {
	const zone = "example.local."
	b := memoryBuilder(t, zone, transferData)
	from := b.Snapshot(1, nil)
	ch := b.Apply(0, []*clientv3.Event{
		put("/h/local/example/www", `{"host":"10.0.0.3","ttl":60}`, 20),
		del("/h/local/example/txt", 21),
	})
	to := b.Snapshot(2, nil)
	out := make(chan []dns.RR, 2)
	NewTransfer(testOptions(), []string{zone}, zone).Delta(out, from, to, ch.Keys)
	var got strings.Builder
	for range 2 {
		for _, rr := range <-out {
			got.WriteString(rr.String() + "\n")
		}
	}
	want := `example.local.	30	IN	SOA	ns.dns.example.local. hostmaster.example.local. 11 7200 1800 86400 30
example.local.	300	IN	TXT	"hello"
txt.example.local.	300	IN	TXT	"hello"
www.example.local.	60	IN	A	10.0.0.2
example.local.	30	IN	SOA	ns.dns.example.local. hostmaster.example.local. 21 7200 1800 86400 30
www.example.local.	60	IN	A	10.0.0.3
`
	if got.String() != want {
		t.Errorf("the difference:\n%s\nwant:\n%s", got.String(), want)
	}
}
