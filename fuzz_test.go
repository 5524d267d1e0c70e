package etcdsd

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// fixturePlugin returns a plugin whose index holds kvs, loaded without etcd.
func fixturePlugin(tb testing.TB, stanza string, kvs [][2]string) *Etcdsd {
	tb.Helper()
	stanzas, err := parse(caddy.NewTestController("dns", stanza))
	if err != nil {
		tb.Fatal(err)
	}
	e := stanzas[0]
	for _, w := range e.watchers {
		l := w.b.list(int64(len(kvs)))
		for i, kv := range kvs {
			l.page([]*mvccpb.KeyValue{{Key: []byte(kv[0]), Value: []byte(kv[1]), ModRevision: int64(i + 1)}})
		}
		l.done([]span{zoneSpan(w.root)})
		w.publish(nil, true)
	}
	e.Next = test.NextHandler(dns.RcodeRefused, nil)
	return e
}

// Any packet, however malformed its question, gets an answer that packs, or none, and
// never a panic.
func FuzzServeDNS(f *testing.F) {
	e := fixturePlugin(f, "etcdsd example.local 10.0.0.0/8 {\n path /h\n}", handlerData)
	for _, tc := range handlerCases {
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

// A value decodeService accepts gives records that pack.
func FuzzDecodeService(f *testing.F) {
	for _, kv := range handlerData {
		f.Add(kv[0], []byte(kv[1]))
	}
	f.Add("/h/local/example/x", []byte(`{"host":"999.1.1.1","port":70000,"text":"`+strings.Repeat("t", 300)+`"}`))
	f.Add("/h/local/example//x", []byte(`{"host":"10.0.0.1"}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		s, err := decodeService(key, value)
		if err != nil {
			return
		}
		if s.Port < -1 || s.Port > 65535 || s.Priority < 1 || s.Priority > 65535 || s.Weight < 0 || s.Weight > 65535 {
			t.Fatalf("accepted out-of-range numbers: %+v", s)
		}
		owner := "x.example.local."
		rrs := []dns.RR{s.NewTXT(owner), s.NewSRV(owner, 1), s.NewMX(owner)}
		if s.Host != "" {
			rrs = append(rrs, s.NewCNAME(owner, s.Host))
		}
		// With an IP host, the SRV target is the key's name.
		synthesized := s
		synthesized.Host = msg.Domain(s.Key)
		rrs = append(rrs, synthesized.NewSRV(owner, 1))
		for _, rr := range rrs {
			m := new(dns.Msg).SetQuestion(owner, dns.TypeANY)
			m.Answer = []dns.RR{rr}
			if _, err := m.Pack(); err != nil {
				t.Fatalf("record from accepted value %q at %q does not pack: %v", value, key, err)
			}
		}
	})
}

// No Corefile stanza makes the parser panic; a rejected one says why.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "example.local", "{\n path /x\n}", "{\n tls a b c d\n}", "{\n max_stale 1s\n max_answers 3\n}", "10.0.0.0/8 {\n fallthrough\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		_, err := parse(caddy.NewTestController("dns", "etcdsd "+rest))
		if err != nil && err.Error() == "" {
			t.Fatal("an error without words")
		}
	})
}
