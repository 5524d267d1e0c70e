package etcdsd

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/etcdsd/etcdsd/internal/index"
	"github.com/etcdsd/etcdsd/internal/index/indextest"

	"github.com/miekg/dns"
)

// index.Read, with which etcdsdctl ls previews answers, answers every name of the handler
// data, and every name above one, as the plugin does from its watched index: same
// rcode, flags and sections, the SOA serial aside (each is the revision its list read).
func TestReadAnswersAsThePlugin(t *testing.T) {
	const p = "/pv"
	kvs := make([][2]string, len(indextest.Records))
	for i, kv := range indextest.Records {
		kvs[i] = [2]string{p + strings.TrimPrefix(kv[0], "/h"), kv[1]}
	}
	putAll(t, kvs)
	ctx := context.Background()
	types := []uint16{dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypePTR, dns.TypeNS, dns.TypeSOA}
	asked := 0
	for _, zone := range []string{"example.local.", "in-addr.arpa."} {
		e := startPlugin(t, "etcdsd "+zone+" {\n path "+p+"\n}")
		o := &index.Options{PathPrefix: p, MaxAnswers: index.DefaultMaxAnswers, Now: time.Now}
		snap, err := index.Read(ctx, lend(testEtcd.Client()), o, zone)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{zone, "missing." + zone}
		for _, kv := range kvs {
			labels := strings.Split(strings.TrimPrefix(kv[0], p+"/"), "/")
			slices.Reverse(labels)
			for i := range labels {
				if name := dns.Fqdn(strings.Join(labels[i:], ".")); dns.IsSubDomain(zone, name) && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		for _, name := range names {
			for _, qt := range types {
				m := new(dns.Msg).SetQuestion(name, qt)
				rec := dnstest.NewRecorder(&test.ResponseWriter{})
				rcode, err := e.ServeDNS(ctx, rec, m)
				want := rec.Msg
				if want == nil {
					t.Fatalf("%s %s: the plugin wrote nothing: %d, %v", name, dns.TypeToString[qt], rcode, err)
				}
				var got *dns.Msg
				if a, err := snap.Build(ctx, o, zone, request.Request{Req: m}); err == nil {
					got = a.Msg(m, snap)
				} else {
					got = new(dns.Msg).SetRcode(m, dns.RcodeServerFailure)
				}
				if w, g := withoutSerial(want), withoutSerial(got); w != g {
					t.Errorf("%s %s:\nthe plugin:\n%s\nindex.Read:\n%s", name, dns.TypeToString[qt], w, g)
				}
				asked++
			}
		}
	}
	if asked < 300 {
		t.Fatalf("only %d questions asked", asked)
	}
}

// withoutSerial returns m as dig shows it, with the serial of every SOA record zeroed.
func withoutSerial(m *dns.Msg) string {
	c := m.Copy()
	for _, rrs := range [][]dns.RR{c.Answer, c.Ns, c.Extra} {
		for _, rr := range rrs {
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = 0
			}
		}
	}
	return c.String()
}
