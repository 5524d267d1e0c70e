package etcdsd

import (
	"context"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/etcdsd/etcdsd/internal/index/indextest"
	"github.com/miekg/dns"
)

// fixturePlugin returns a plugin whose index holds kvs, loaded without etcd.
func fixturePlugin(tb testing.TB, stanza string, kvs [][2]string) *Etcdsd {
	tb.Helper()
	stanzas, err := parse(caddy.NewTestController("dns", stanza))
	if err != nil {
		tb.Fatal(err)
	}
	e := stanzas[0]
	f := indextest.New(kvs)
	for _, w := range e.watchers {
		if _, err := w.b.List(context.Background(), f, w.paging, w.now); err != nil {
			tb.Fatal(err)
		}
		w.publish(w.b, nil, true)
	}
	e.Next = test.NextHandler(dns.RcodeRefused, nil)
	return e
}

// Any packet, however malformed its question, gets an answer that packs, or none, and
// never a panic.
func FuzzServeDNS(f *testing.F) {
	e := fixturePlugin(f, "etcdsd example.local 10.0.0.0/8 {\n path /h\n}", indextest.Records)
	for _, tc := range indextest.Cases {
		if b, err := tc.Msg().Pack(); err == nil {
			f.Add(b)
		}
	}
	for _, name := range []string{"a/b.example.local.", `\000.example.local.`, `..\..example.local.`, "*.*.example.local.", "any.example.local."} {
		m := new(dns.Msg).SetQuestion(name, dns.TypeSRV)
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		m := new(dns.Msg)
		if m.Unpack(packet) != nil || len(m.Question) != 1 {
			return // the server drops these before any plugin sees them
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		e.ServeDNS(context.Background(), rec, m)
		if rec.Msg != nil {
			if _, err := rec.Msg.Pack(); err != nil {
				t.Fatalf("answer to %s does not pack: %v\n%s", m.Question[0].String(), err, rec.Msg)
			}
		}
	})
}

// No Corefile stanza makes the parser panic; a rejected one says why.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "example.local", "{\n path /x\n}", "{\n tls a b c d\n}", "{\n max_stale 3s\n max_answers 3\n}", "10.0.0.0/8 {\n fallthrough\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		_, err := parse(caddy.NewTestController("dns", "etcdsd "+rest))
		if err != nil && err.Error() == "" {
			t.Fatal("an error without words")
		}
	})
}
