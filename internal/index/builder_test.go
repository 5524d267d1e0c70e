package index

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const bRoot = "/skydns/local/example"

func kv(key string, rev int64, value string, lease int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(bRoot + key), ModRevision: rev, Value: []byte(value), Lease: lease}
}

func putEv(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypePut, Kv: kv(key, rev, `{"host":"10.0.0.1"}`, 0)}
}

func leasedPut(key string, rev, lease int64) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypePut, Kv: kv(key, rev, `{"host":"10.0.0.2"}`, lease)}
}

func badPut(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypePut, Kv: kv(key, rev, `{"host":`, 0)}
}

func delEv(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypeDelete, Kv: kv(key, rev, "", 0)}
}

// many returns n events of one revision, as one transaction or prefix delete delivers them.
func many(n int, rev int64, ev func(string, int64) *clientv3.Event, format string) []*clientv3.Event {
	var out []*clientv3.Event
	for i := range n {
		out = append(out, ev(fmt.Sprintf(format, i), rev))
	}
	return out
}

// state is the index as "key@modrev" below the root, in key order.
func state(b *Builder) string {
	var out []string
	b.tree.Ascend(func(e *entry) bool {
		s := fmt.Sprintf("%s@%d", e.key, e.modRev)
		if e.bad {
			s += "!"
		}
		out = append(out, s)
		return true
	})
	return strings.Join(out, " ")
}

// The builder applies every event of every revision, whatever the shape of the write
// that made them, and only events it has not applied before.
func TestBuilderAppliesEveryEvent(t *testing.T) {
	listed := []*mvccpb.KeyValue{
		kv("/_tcp/_web/w1", 5, `{"host":"1.1.1.1","port":80}`, 0),
		kv("/_tcp/_web/w2", 6, `{"host":"1.1.1.2","port":80}`, 0),
		kv("/_tcp/_web/w3", 7, `{"host":"1.1.1.3","port":80}`, 0),
		kv("/_tcp/_db/db1", 8, `{"host":"1.1.3.1","port":5432}`, 0x77),
		kv("/_tcp/_db/db2", 8, `{"host":"1.1.3.2","port":5432}`, 0x77),
		kv("/_tcp/_db/dbinfo", 8, `{"text":"primary db1"}`, 0x77),
	}
	const listRev = 9
	for _, tc := range []struct {
		name      string
		responses [][]*clientv3.Event // on span 0
		want      string              // keys left besides the listed ones untouched
		rev       int64
		leases    int
		witness   string // the key written last, key@revision (Builder.Witness), "" for none
	}{
		{
			name:      "del --prefix of three instances",
			responses: [][]*clientv3.Event{{delEv("/_tcp/_web/w1", 10), delEv("/_tcp/_web/w2", 10), delEv("/_tcp/_web/w3", 10)}},
			want:      "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8",
			rev:       10, leases: 1,
			witness: "/_tcp/_db/db1@8",
		},
		{
			name:      "a lease with three keys expires",
			responses: [][]*clientv3.Event{{delEv("/_tcp/_db/db1", 10), delEv("/_tcp/_db/db2", 10), delEv("/_tcp/_db/dbinfo", 10)}},
			want:      "/_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7",
			rev:       10, leases: 0,
			witness: "",
		},
		{
			name:      "a transaction of 30 puts",
			responses: [][]*clientv3.Event{many(30, 10, putEv, "/churn/k%02d")},
			want:      "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7 " + seq(30, 10, "/churn/k%02d"),
			rev:       10, leases: 1,
			witness: "/churn/k29@10",
		},
		{
			name: "a transaction moving a record, with puts and deletes across names",
			responses: [][]*clientv3.Event{{
				delEv("/_tcp/_web/w1", 10), putEv("/_tcp/_web/w9", 10), delEv("/_tcp/_db/db2", 10), putEv("/other/x", 10), badPut("/other/bad", 10),
			}},
			want: "/_tcp/_db/db1@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w2@6 /_tcp/_web/w3@7 /_tcp/_web/w9@10 /other/bad@10! /other/x@10",
			rev:  10, leases: 1,
			witness: "/other/bad@10",
		},
		{
			name: "several revisions in one response, then the next",
			responses: [][]*clientv3.Event{
				{putEv("/a", 10), putEv("/b", 10), delEv("/a", 11), putEv("/c", 11), putEv("/a", 12)},
				{delEv("/b", 13), delEv("/c", 13)},
			},
			want: "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7 /a@12",
			rev:  13, leases: 1,
			witness: "/a@12",
		},
		{
			name: "the seam: a watch from the list's revision replays what the list holds",
			responses: [][]*clientv3.Event{
				{delEv("/_tcp/_web/w1", 8), putEv("/_tcp/_web/w2", 9), putEv("/x", 10), putEv("/y", 10)},
			},
			want: "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7 /x@10 /y@10",
			rev:  10, leases: 1,
			witness: "/y@10",
		},
		{
			name: "a resumed watch on a lagging member delivers a revision again (etcd-io/etcd#20221)",
			responses: [][]*clientv3.Event{
				{putEv("/x", 10), putEv("/y", 10)},
				{putEv("/x", 10), putEv("/y", 10), delEv("/x", 11)},
			},
			want: "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7 /y@10",
			rev:  11, leases: 1,
			witness: "/y@10",
		},
		{
			name: "a sibling prefix in the watched range changes nothing",
			responses: [][]*clientv3.Event{{
				{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(bRoot + "-old/x"), ModRevision: 10, Value: []byte(`{}`)}},
			}},
			want: "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7",
			rev:  listRev, leases: 1,
			witness: "/_tcp/_db/db1@8",
		},
		{
			name:      "a new lease on two keys, one replaced without it",
			responses: [][]*clientv3.Event{{leasedPut("/l1", 10, 0x99), leasedPut("/l2", 10, 0x99)}, {putEv("/l1", 11)}},
			want:      "/_tcp/_db/db1@8 /_tcp/_db/db2@8 /_tcp/_db/dbinfo@8 /_tcp/_web/w1@5 /_tcp/_web/w2@6 /_tcp/_web/w3@7 /l1@11 /l2@10",
			rev:       11, leases: 2,
			witness: "/l1@11",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(bRoot)
			l := listAt(b, listRev)
			if fresh := l.page(listed); len(fresh) != 1 {
				t.Fatalf("list: %d new leases, want 1", len(fresh))
			}
			l.done([]Span{ZoneSpan(bRoot)})
			for _, r := range tc.responses {
				b.Apply(0, r)
			}
			if got := state(b); got != tc.want {
				t.Errorf("index\n got %s\nwant %s", got, tc.want)
			}
			if b.rev != tc.rev {
				t.Errorf("revision %d, want %d", b.rev, tc.rev)
			}
			if n := len(b.leases.byID); n != tc.leases {
				t.Errorf("%d leases tracked, want %d", n, tc.leases)
			}
			witness := ""
			if key, agrees, ok := b.Witness(b.rev); ok {
				for _, e := range slices.Concat(listed, witnessEvents(tc.responses)) {
					if string(e.Key) == key && agrees([]*mvccpb.KeyValue{e}) {
						witness = fmt.Sprintf("%s@%d", strings.TrimPrefix(key, bRoot), e.ModRevision)
					}
				}
			}
			if witness != tc.witness {
				t.Errorf("witness %q, want %q", witness, tc.witness)
			}
			// What readers see is what the builder holds.
			if s := b.Snapshot(0, nil); s.tree.Len() != b.tree.Len() || s.rev != b.rev {
				t.Errorf("snapshot holds %d keys at %d, builder %d at %d", s.tree.Len(), s.rev, b.tree.Len(), b.rev)
			}
		})
	}
}

// witnessEvents returns the key values of responses' puts.
func witnessEvents(responses [][]*clientv3.Event) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for _, r := range responses {
		for _, ev := range r {
			if ev.Type == clientv3.EventTypePut {
				out = append(out, ev.Kv)
			}
		}
	}
	return out
}

func seq(n int, rev int64, format string) string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(format+"@%d", i, rev))
	}
	return strings.Join(out, " ")
}

// What apply reports: the events applied to held keys and the leases to resolve.
func TestBuilderReportsChanges(t *testing.T) {
	b := NewBuilder(bRoot)
	var skipped []string
	b.Skipped = func(key string, rev int64, err error) { skipped = append(skipped, fmt.Sprintf("%s@%d", key, rev)) }
	l := listAt(b, 4)
	l.done([]Span{ZoneSpan(bRoot)})
	c := b.Apply(0, []*clientv3.Event{leasedPut("/a", 5, 1), leasedPut("/b", 5, 1), badPut("/c", 5), delEv("/d", 5)})
	if c.Puts != 3 || c.Deletes != 1 || len(c.Fresh) != 1 || !c.Changed() {
		t.Errorf("got %+v, want 3 puts, 1 delete, 1 new lease", c)
	}
	if !slices.Equal(skipped, []string{bRoot + "/c@5"}) {
		t.Errorf("skipped %v, want the bad value once", skipped)
	}
	if c := b.Apply(0, []*clientv3.Event{leasedPut("/a", 5, 1)}); c.Changed() || c.Puts != 0 {
		t.Errorf("a revision applied before: %+v", c)
	}
}

// A re-list takes over unchanged entries as they are and moves the revision only when
// the keys changed; a list that fails leaves the index as it was.
func TestBuilderRelist(t *testing.T) {
	b := NewBuilder(bRoot)
	l := listAt(b, 10)
	l.page([]*mvccpb.KeyValue{kv("/a", 3, `{"host":"10.0.0.1"}`, 7), kv("/b", 4, `{"host":`, 0)})
	l.done([]Span{ZoneSpan(bRoot)})
	a, _ := b.tree.Min()

	l = listAt(b, 20)
	l.page([]*mvccpb.KeyValue{kv("/a", 3, `{"host":"10.0.0.1"}`, 7), kv("/b", 4, `{"host":`, 0)})
	l.done([]Span{ZoneSpan(bRoot)})
	if a2, _ := b.tree.Min(); b.rev != 10 || a2 != a || len(b.leases.byID) != 1 || b.leases.byID[7].refs != 1 {
		t.Errorf("unchanged re-list: revision %d (want 10), entry kept %v, %d leases", b.rev, a2 == a, len(b.leases.byID))
	}

	l = listAt(b, 30)
	l.page([]*mvccpb.KeyValue{kv("/a", 3, `{"host":"10.0.0.1"}`, 7)})
	l.abort()
	if b.rev != 10 || b.tree.Len() != 2 || b.leases.byID[7].refs != 1 {
		t.Errorf("aborted list changed the index: revision %d, %d keys", b.rev, b.tree.Len())
	}

	l = listAt(b, 40)
	l.page([]*mvccpb.KeyValue{kv("/b", 35, `{"host":"10.0.0.2"}`, 0)})
	l.done([]Span{ZoneSpan(bRoot)})
	if b.rev != 40 || state(b) != "/b@35" || len(b.leases.byID) != 0 {
		t.Errorf("changed re-list: revision %d (want 40), index %s, %d leases", b.rev, state(b), len(b.leases.byID))
	}
	if !slices.Equal(b.applied, []int64{40}) {
		t.Errorf("applied %v, want the list's revision", b.applied)
	}
}

// With a role that may read only "ZONE/", the zone is followed in two spans, each from its
// own revision.
func TestBuilderTwoSpans(t *testing.T) {
	b := NewBuilder(bRoot)
	below, apex := BelowSpans(bRoot)
	l := listAt(b, 10)
	l.page([]*mvccpb.KeyValue{kv("/a", 3, `{"host":"10.0.0.1"}`, 0)})
	l.page([]*mvccpb.KeyValue{kv("", 4, `{"host":"10.0.0.9"}`, 0)})
	l.done([]Span{below, apex})
	b.Apply(0, []*clientv3.Event{putEv("/b", 12)})
	b.Apply(1, []*clientv3.Event{delEv("", 11)})
	if c := b.Apply(1, []*clientv3.Event{delEv("", 11)}); c.Changed() {
		t.Error("span 1 applied its revision 11 twice")
	}
	if got := state(b); got != "/a@3 /b@12" {
		t.Errorf("index %s", got)
	}
	if !slices.Equal(b.applied, []int64{12, 11}) || b.rev != 12 {
		t.Errorf("applied %v, revision %d", b.applied, b.rev)
	}
}

// listAt starts a list whose first page etcd answered at rev, of cluster 1 in term 1.
func listAt(b *Builder, rev int64) *listing {
	l := b.list()
	l.begin(&etcdserverpb.ResponseHeader{Revision: rev, ClusterId: 1, RaftTerm: 1})
	return l
}
