package etcdsd

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fixturePlugin returns a plugin whose index holds kvs, loaded without etcd.
func fixturePlugin(tb testing.TB, stanza string, kvs [][2]string) *Etcdsd {
	tb.Helper()
	stanzas, err := parse(caddy.NewTestController("dns", stanza))
	if err != nil {
		tb.Fatal(err)
	}
	e := stanzas[0]
	f := make(fixture, len(kvs))
	for i, kv := range kvs {
		f[i] = &mvccpb.KeyValue{Key: []byte(kv[0]), Value: []byte(kv[1]), ModRevision: int64(i + 1)}
	}
	slices.SortFunc(f, func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) })
	for _, w := range e.watchers {
		if _, err := w.b.List(context.Background(), f, w.paging, w.now); err != nil {
			tb.Fatal(err)
		}
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

// fixture answers a list as etcd holding its keys, in key order, at the revision of
// their number would: every key of the range asked for in one page, and no lease.
type fixture []*mvccpb.KeyValue

func (f fixture) Get(_ context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	end := string(clientv3.OpGet(key, opts...).RangeBytes())
	var kvs []*mvccpb.KeyValue
	for _, kv := range f {
		if k := string(kv.Key); k == key || end != "" && k > key && k < end {
			kvs = append(kvs, kv)
		}
	}
	return &clientv3.GetResponse{Header: &etcdserverpb.ResponseHeader{Revision: int64(len(f))}, Kvs: kvs, Count: int64(len(kvs))}, nil
}

func (fixture) TimeToLive(context.Context, clientv3.LeaseID, ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	return nil, errors.New("fixture: no leases")
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
