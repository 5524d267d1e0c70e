package index

import (
	"bytes"
	"context"
	"net"
	"slices"
	"time"

	"github.com/etcdsd/etcdsd/skydns"
	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Builder turns what etcd sends, list pages and watch responses, into index snapshots. It
// holds the writer's tree, the revision each followed span has reached and the leases of
// the keys it holds. Only List reads etcd, and reads no clock but the one it is given:
// the watcher moves watch responses to Apply, and tests feed it batches directly. One
// goroutine writes it; readers take Snapshots.
type Builder struct {
	root   string // the zone root's key; held are root itself and the keys below root + "/"
	tree   *btree.BTreeG[*entry]
	names  *btree.BTreeG[*entry] // the entries whose name path is not their key
	leases *leaseTable

	spans   []Span  // the ranges of the last complete list, which the watches follow
	applied []int64 // per span, the revision up to which its events are applied
	// rev is the revision of the last change to the held keys: the snapshot's revision,
	// and so the zone's SOA serial. Writes elsewhere in etcd leave it alone.
	rev int64
	// The history the index was built from, as the headers of etcd's answers tell it: its
	// cluster and the highest raft term heard (Heard).
	cluster, term uint64
	// epoch is added to rev in the SOA serial. It grows by the revision the index had
	// whenever etcd's history is replaced under it (Restored), so that the serial keeps
	// increasing (RFC 1982) although etcd's revision went back.
	epoch int64
	// forget makes the next list decode every key afresh, trusting no entry for having the
	// same revision (Forget); restored also starts a new epoch with it (Restored).
	forget, restored bool
	// witness is the held key written last, as etcd gave it (no value): nil when that key
	// was deleted since. See Witness.
	witness *mvccpb.KeyValue

	// Skipped is told of every value that does not decode; it may be nil.
	Skipped func(key string, rev int64, err error)
}

// NewBuilder returns the builder of the index of the keys at and below root, a key path
// (RootKey).
func NewBuilder(root string) *Builder {
	return &Builder{root: root, tree: newTree(), names: newNameTree(), leases: newLeaseTable()}
}

// Holds reports whether key is the root key or lies below it. A span also takes siblings
// that sort between "root" and "root/", such as "/skydns/local/example-old/x": those
// belong to another zone.
func (b *Builder) Holds(key []byte) bool { return holds(b.root, key) }

func holds(root string, key []byte) bool {
	n := len(root)
	return root == "/" || bytes.HasPrefix(key, []byte(root)) && (len(key) == n || key[n] == '/')
}

// rel returns a held key relative to the root (relKey), in a string of its own.
func (b *Builder) rel(key []byte) string {
	if b.root == "/" {
		return string(key)
	}
	return string(key[len(b.root):])
}

// decode turns kv into an index entry. A value that does not decode becomes a bad entry,
// which still makes its name exist. The lease returned is one seen for the first time,
// whose expiry the caller learns before the entry is served.
func (b *Builder) decode(kv *mvccpb.KeyValue) (*entry, *Lease) {
	key := string(kv.Key)
	e := &entry{key: b.rel(kv.Key), modRev: kv.ModRevision}
	if n := namePath(b.root, key); n != "" {
		e.more = &entryMore{name: n}
	}
	svc, err := decodeService(kv.Value)
	if err == nil {
		// A key that is no DNS name (an empty label, as in coredns#6055's ".../sub/x2." and
		// #2982's ".../a/b/", or too long) names no record of its own; the names above it
		// answer its records, as the etcd plugin's reads of their subtrees do.
		if kerr := skydns.CheckKey(key); kerr != nil {
			e.unnamed = true
			err = kerr
		}
	}
	if err != nil && b.Skipped != nil {
		b.Skipped(key, kv.ModRevision, err)
	}
	if err != nil && !e.unnamed {
		e.bad = true
		return e, nil
	}
	svc.Key = key
	e.setService(svc)
	e.aliasText = svc.Text != "" && svc.Host != "" && net.ParseIP(svc.Host) == nil
	if kv.Lease == 0 {
		return e, nil
	}
	l, first := b.leases.acquire(clientv3.LeaseID(kv.Lease))
	e.lease = l
	if !first {
		return e, nil
	}
	return e, l
}

// listing is a complete read in progress. Its pages go into a tree of its own, which
// replaces the builder's whole when the read is done, so that no snapshot is ever made
// from part of a list.
type listing struct {
	b           *Builder
	rev         int64 // the revision every page is read at; 0 until the first page
	tree, names *btree.BTreeG[*entry]
	kept        int // entries taken over from the builder's tree as they were
	// fresh lists decode every key and learn every lease again (asked holds those asked
	// for); restored, when etcd's history is not the builder's any more, starts a new
	// epoch too. cluster and term are the first page's.
	fresh, restored bool
	asked           map[*Lease]bool
	cluster, term   uint64
	promoted        bool             // a page's header carried a new raft term
	witness         *mvccpb.KeyValue // the held key of the highest revision listed
}

// list starts a complete read.
func (b *Builder) list() *listing {
	return &listing{b: b, tree: newTree(), names: newNameTree()}
}

// begin takes the header of the list's first page, a linearizable read of etcd's current
// revision: when it is behind the builder's history (Heard), or the builder was told so,
// the list is fresh and restored.
func (l *listing) begin(h *etcdserverpb.ResponseHeader) {
	b := l.b
	l.rev, l.cluster, l.term = h.Revision, h.ClusterId, h.RaftTerm
	newTerm, behind := b.Heard(h)
	l.promoted = newTerm
	l.restored = b.restored || behind
	l.fresh = b.forget || l.restored
	if l.fresh {
		l.asked = map[*Lease]bool{}
	}
}

// page adds one page of the read and returns the leases it holds that were not known
// before. An entry indexed at the same revision of its key is taken over as it is, unless
// the list is fresh: a re-list neither decodes nor counts a bad value again.
func (l *listing) page(kvs []*mvccpb.KeyValue) (fresh []*Lease) {
	for _, kv := range kvs {
		if !l.b.Holds(kv.Key) {
			continue
		}
		if l.witness == nil || kv.ModRevision > l.witness.ModRevision {
			l.witness = witnessOf(kv)
		}
		if old, ok := l.b.tree.Get(&entry{key: relKey(l.b.root, string(kv.Key))}); ok && !l.fresh && old.modRev == kv.ModRevision {
			if old.lease != nil {
				l.b.leases.acquire(old.lease.id)
			}
			store(l.tree, l.names, old)
			l.kept++
			continue
		}
		e, fl := l.b.decode(kv)
		if l.fresh && e.lease != nil && !l.asked[e.lease] {
			fl = e.lease // known from before, perhaps from another history: ask again
			l.asked[fl] = true
		}
		if fl != nil {
			fresh = append(fresh, fl)
		}
		store(l.tree, l.names, e)
	}
	return fresh
}

// abort drops the listing; the builder keeps what it had.
func (l *listing) abort() {
	releaseAll(l.b.leases, l.tree)
}

// done swaps the listed tree in. The spans read are followed by watches from the revision
// after the listing's. The revision of the data moves only when the list found a change.
// A restored list starts a new epoch from the builder's revision, and takes the history
// of its first page.
func (l *listing) done(spans []Span) {
	b := l.b
	first := b.spans == nil
	changed := l.fresh || l.kept != b.tree.Len() || l.tree.Len() != b.tree.Len()
	releaseAll(b.leases, b.tree)
	if l.restored && !first {
		b.epoch += b.rev
		b.term = l.term
	}
	b.tree, b.names = l.tree, l.names
	b.spans, b.cluster, b.witness = spans, l.cluster, l.witness
	b.forget, b.restored = false, false
	b.applied = make([]int64, len(spans))
	for i := range b.applied {
		b.applied[i] = l.rev
	}
	if first || changed {
		b.rev = l.rev
	}
}

// store puts e in tree, and in names when its name path is not its key, and returns the
// entry it replaced.
func store(tree, names *btree.BTreeG[*entry], e *entry) (old *entry) {
	old, _ = tree.ReplaceOrInsert(e)
	unname(names, old)
	if e.name() != "" {
		names.ReplaceOrInsert(e)
	}
	return old
}

// unname takes e, when there is one, out of names.
func unname(names *btree.BTreeG[*entry], e *entry) {
	if e != nil && e.name() != "" {
		names.Delete(e)
	}
}

func releaseAll(t *leaseTable, tree *btree.BTreeG[*entry]) {
	tree.Ascend(func(e *entry) bool {
		t.release(e.lease)
		return true
	})
}

// Change is what one watch response did to the index.
type Change struct {
	Puts, Deletes int      // events applied to held keys
	Keys          []string // the held keys they touched, for the IXFR journal
	Fresh         []*Lease // leases seen for the first time, to resolve (ResolveLeases)
}

// Apply applies one watch response of span i: every event after the revision the span
// had reached before the response, in order. All events of one revision (a transaction,
// a prefix delete, a lease expiry removing every key attached to it) arrive in one
// response, as the watch is not fragmented; so the revision reached before the response
// tells events already applied (a watch resumed on a member that lags,
// etcd-io/etcd#20221) from new ones, never a revision advanced within it.
func (b *Builder) Apply(i int, events []*clientv3.Event) Change {
	var c Change
	before := b.applied[i]
	for _, ev := range events {
		kv := ev.Kv
		if kv.ModRevision <= before {
			continue
		}
		b.applied[i] = max(b.applied[i], kv.ModRevision)
		if !b.Holds(kv.Key) {
			continue
		}
		c.Keys = append(c.Keys, string(kv.Key))
		var old *entry
		switch ev.Type {
		case clientv3.EventTypePut:
			e, fl := b.decode(kv)
			if fl != nil {
				c.Fresh = append(c.Fresh, fl)
			}
			old = store(b.tree, b.names, e)
			b.witness = witnessOf(kv)
			c.Puts++
		case clientv3.EventTypeDelete:
			if b.witness != nil && bytes.Equal(b.witness.Key, kv.Key) {
				b.witness = nil
			}
			old, _ = b.tree.Delete(&entry{key: relKey(b.root, string(kv.Key))})
			unname(b.names, old)
			c.Deletes++
		}
		if old != nil {
			b.leases.release(old.lease)
		}
		b.rev = max(b.rev, kv.ModRevision)
	}
	return c
}

// Changed reports whether c touched a held key.
func (c Change) Changed() bool { return c.Puts+c.Deletes > 0 }

// Snapshot returns the index as it stands, for readers: the tree is cloned lazily, so
// that later changes copy only the nodes they touch. seq numbers it among the index's
// snapshots, whose prepared answers it shares (AnswerCache.Touch); answers may be nil.
func (b *Builder) Snapshot(seq uint64, answers *AnswerCache) *Snapshot {
	return &Snapshot{tree: b.tree.Clone(), names: b.names.Clone(), root: b.root, rev: b.rev, epoch: b.epoch,
		spans: b.spans, applied: slices.Clone(b.applied), seq: seq, answers: answers}
}

// Spans returns the ranges of the last complete list, which watches follow.
func (b *Builder) Spans() []Span { return b.spans }

// Applied returns, per span, the revision up to which its events are applied.
func (b *Builder) Applied() []int64 { return b.applied }

// Reached returns the highest revision the index has applied: while etcd's history is
// the one the index was built from, etcd's revision is at least this.
func (b *Builder) Reached() int64 {
	if len(b.applied) == 0 {
		return 0
	}
	return slices.Max(b.applied)
}

// Heard notes the header of an answer of etcd's current term: a linearizable read, or a
// watch response (watches require a leader). It reports whether the header carries a
// new raft term, a new leader having extended every lease (PromoteLeases), and whether it
// is behind the index's history: another cluster, a revision below the one the index has
// reached, or a lower term (fields a gRPC proxy leaves at 0 are not compared). From a
// linearizable read, behind means etcd's history is not the index's any more: etcd was
// restored from a snapshot (etcd-io/etcd#16028) or started on empty data (Restored);
// from a watch it may also be a member that lags (etcd-io/etcd#20221), which such a read
// tells.
func (b *Builder) Heard(h *etcdserverpb.ResponseHeader) (newTerm, behind bool) {
	if h == nil {
		return false, false
	}
	behind = b.spans != nil && (h.ClusterId != 0 && h.ClusterId != b.cluster ||
		h.Revision != 0 && h.Revision < b.Reached() || h.RaftTerm != 0 && h.RaftTerm < b.term)
	if !behind && h.RaftTerm > b.term {
		newTerm = b.term != 0
		b.term = h.RaftTerm
	}
	return newTerm, behind
}

// Witness returns the key to read at rev, a revision every span has reached, to tell
// whether etcd still has the index's history, and judges what a keys-only read of it at
// rev returned: the key of the index written last, which etcd at rev holds with the
// same create and mod revision and version while the history is the same. An etcd that
// started empty, or from an old snapshot, with its cluster ID and raft term as before,
// and whose revision writes took past the index's before it heard from it again, shows
// nothing else: every header looks as it would (docs/etcd-bugs.md).
// ok is false when there is no such key (it was deleted since, or written after rev).
func (b *Builder) Witness(rev int64) (key string, agrees func(kvs []*mvccpb.KeyValue) bool, ok bool) {
	w := b.witness
	if w == nil || w.ModRevision > rev {
		return "", nil, false
	}
	return string(w.Key), func(kvs []*mvccpb.KeyValue) bool {
		return len(kvs) == 1 && kvs[0].CreateRevision == w.CreateRevision && kvs[0].ModRevision == w.ModRevision && kvs[0].Version == w.Version
	}, true
}

// witnessOf returns kv without its value and lease, as Witness compares it.
func witnessOf(kv *mvccpb.KeyValue) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
}

// Forget makes the next List decode every key afresh, as after a divergence, when an
// entry at the same revision of its key may hold another value.
func (b *Builder) Forget() { b.forget = true }

// Restored tells the builder that etcd's history is not the one its index was built
// from: the next List decodes every key afresh, learns every lease again and starts a
// new epoch of the SOA serial, which then goes on from the revision the index had
// (Snapshot.Serial).
func (b *Builder) Restored() { b.restored = true }

// Follow makes b's SOA serials go on from those of s, an index of the same zone and etcd
// that b's replaces (a reload), whatever epochs s's history went through.
func (b *Builder) Follow(s *Snapshot) { b.epoch = s.epoch }

// Len returns the number of keys held.
func (b *Builder) Len() int { return b.tree.Len() }

// Leases returns the number of leases the held keys hold.
func (b *Builder) Leases() int { return b.leases.len() }

// DueLeases returns the leases of held keys to resolve again at now: those whose expiry
// is unknown, and those whose recheck time has come (Lease).
func (b *Builder) DueLeases(now time.Time) []*Lease { return b.leases.due(now) }

// PromoteLeases sets every lease's expiry as a new leader has set it (leaseTable.promote).
func (b *Builder) PromoteLeases(ctx context.Context, cli LeaseReader, now func() time.Time) {
	b.leases.promote(ctx, cli, now)
}
