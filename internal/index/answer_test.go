package index

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/etcd/msg"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/etcdsd/etcdsd/internal/index/indextest"
	"github.com/miekg/dns"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func testOptions() *Options { return &Options{PathPrefix: indextest.Prefix, Now: time.Now} }

// memoryBuilder returns a builder of zone's index (indextest.Prefix) listed from kvs in
// memory.
func memoryBuilder(t testing.TB, zone string, kvs [][2]string) *Builder {
	t.Helper()
	b := NewBuilder(RootKey(msg.Path(zone, indextest.Prefix)))
	if _, err := b.List(context.Background(), indextest.New(kvs), ListPaging, time.Now); err != nil {
		t.Fatal(err)
	}
	return b
}

// ask answers q in zone from s as the plugin writes it.
func ask(t testing.TB, s *Snapshot, o *Options, zone string, tc test.Case) *dns.Msg {
	t.Helper()
	r := tc.Msg()
	a, err := s.Build(context.Background(), o, zone, request.Request{Req: r, W: &test.ResponseWriter{}})
	if err != nil {
		t.Fatalf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
	}
	return a.Msg(r, s)
}

// TestBuild answers the shared cases (indextest.Cases, which TestServeDNS runs through the
// plugin) from snapshots listed from memory.
func TestBuild(t *testing.T) {
	snaps := map[string]*Snapshot{}
	for _, z := range indextest.Zones {
		snaps[z] = memoryBuilder(t, z, indextest.Records).Snapshot(1, nil)
	}
	o := testOptions()
	for _, tc := range indextest.Cases {
		zone := plugin.Zones(indextest.Zones).Matches(tc.Qname)
		if zone == "" {
			continue // the plugin hands these to the next one
		}
		if err := test.SortAndCheck(ask(t, snaps[zone], o, zone, tc), tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}
}

// put is a watch event that writes key at rev.
func put(key, value string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(value), ModRevision: rev, CreateRevision: rev, Version: 1}}
}

func del(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}
}

// TestPreparedAnswers keeps an answer across changes that do not touch what it read, and
// drops it after one that does: the key itself, a key below the name, or a key above it
// that the name's answer reads (a group, a wildcard's parent).
func TestPreparedAnswers(t *testing.T) {
	const zone = "example.local."
	data := [][2]string{
		{"/h/local/example/a/x1", `{"host":"10.0.0.1"}`},
		{"/h/local/example/b/x1", `{"host":"10.0.0.2"}`},
		{"/h/local/example/a2", `{"host":"10.0.0.3"}`},
	}
	q := test.Case{Qname: "a.example.local.", Qtype: dns.TypeA}
	for _, tc := range []struct {
		name   string
		change *clientv3.Event
		kept   bool
		want   []string // the A records after the change
	}{
		{"another name's key", put("/h/local/example/b/x2", `{"host":"10.0.0.9"}`, 10), true, []string{"10.0.0.1"}},
		{"a sibling whose name extends it", put("/h/local/example/a2", `{"host":"10.0.0.8"}`, 10), true, []string{"10.0.0.1"}},
		{"a key below it", put("/h/local/example/a/x2", `{"host":"10.0.0.7"}`, 10), false, []string{"10.0.0.1", "10.0.0.7"}},
		{"its key changed", put("/h/local/example/a/x1", `{"host":"10.0.0.6"}`, 10), false, []string{"10.0.0.6"}},
		{"its key deleted", del("/h/local/example/a/x1", 10), false, nil},
		{"its own key written", put("/h/local/example/a", `{"host":"10.0.0.5"}`, 10), false, []string{"10.0.0.1", "10.0.0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := memoryBuilder(t, zone, data)
			o := testOptions()
			cache := NewAnswerCache(DefaultAnswerCache)
			s1 := b.Snapshot(1, cache)
			qq := Question{Name: q.Qname, Type: q.Qtype}
			a, err := s1.Build(context.Background(), o, zone, request.Request{Req: q.Msg()})
			if err != nil {
				t.Fatal(err)
			}
			s1.Keep(qq, a)
			if s1.Prepared(qq, o.Now) != a {
				t.Fatal("the answer was not kept")
			}
			ch := b.Apply(0, []*clientv3.Event{tc.change})
			if !cache.Touch(2, b.root, ch.Keys) {
				t.Fatal("the cache asks to be replaced after one change")
			}
			s2 := b.Snapshot(2, cache)
			if kept := s2.Prepared(qq, o.Now) == a; kept != tc.kept {
				t.Errorf("prepared answer kept %v, want %v", kept, tc.kept)
			}
			var got []string
			for _, rr := range ask(t, s2, o, zone, q).Answer {
				got = append(got, rr.(*dns.A).A.String())
			}
			slices.Sort(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("after the change: %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPreparedAnswersNotKept: an answer that looked a name up upstream is not kept, nor is
// any with a cache of no budget.
func TestPreparedAnswersNotKept(t *testing.T) {
	const zone = "example.local."
	b := memoryBuilder(t, zone, [][2]string{{"/h/local/example/out", `{"host":"www.example.org"}`}, {"/h/local/example/in", `{"host":"10.0.0.1"}`}})
	o := testOptions()
	o.Upstream = upstreamOf{test.A("www.example.org. 60 IN A 192.0.2.1")}
	for _, tc := range []struct {
		name   string
		budget uint64
		kept   bool
	}{{"out", DefaultAnswerCache, false}, {"in", DefaultAnswerCache, true}, {"in", 0, false}} {
		s := b.Snapshot(1, NewAnswerCache(tc.budget))
		q := Question{Name: tc.name + "." + zone, Type: dns.TypeA}
		a, err := s.Build(context.Background(), o, zone, request.Request{Req: new(dns.Msg).SetQuestion(q.Name, q.Type)})
		if err != nil {
			t.Fatal(err)
		}
		s.Keep(q, a)
		if kept := s.Prepared(q, o.Now) != nil; kept != tc.kept {
			t.Errorf("%s with a budget of %d: kept %v, want %v", q.Name, tc.budget, kept, tc.kept)
		}
	}
}

// upstreamOf answers every lookup with rrs.
type upstreamOf struct{ rr dns.RR }

func (u upstreamOf) Lookup(_ context.Context, _ request.Request, name string, typ uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, typ)
	m.Answer = []dns.RR{u.rr}
	return m, nil
}
